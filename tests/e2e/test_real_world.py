"""The shapes a production cluster has and the happy path does not: Recreate, a person's
`kubectl rollout undo`, garbage-collected history, hostile annotation values."""

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import kit, test_status
from .test_rollback import ON, V1, V2, V3, V4, available, count, wait_event

HOLD = "autorollback.test/undeletable"


def admission_policy(ns: str, name: str, rule: dict, expression: str) -> None:
    """A real admission denial, in namespace ns only: requests matching rule are refused unless expression holds."""
    kit.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [rule]},
                "validations": [{"expression": expression, "message": "held by the test"}],
            },
        }
    )
    kit.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
            },
        }
    )


@contextlib.contextmanager
def undeletable_pods(ns: str) -> Iterator[None]:
    """While open, pods labelled autorollback.test/undeletable in ns cannot be deleted (a real
    admission denial), so the ReplicaSet controller cannot scale their ReplicaSet down."""
    name = f"undeletable-{ns}"
    admission_policy(
        ns,
        name,
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"], "resources": ["pods"]},
        f"!has(oldObject.metadata.labels) || !('{HOLD}' in oldObject.metadata.labels)",
    )
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": ns, "labels": {HOLD: "x"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    kit.apply(probe)
    kit.wait_for(
        lambda: kit.kubectl("-n", ns, "delete", "pod", "probe", "--dry-run=server", check=False).returncode != 0,
        30,
        "the policy to take effect",
    )
    try:
        yield
    finally:
        kit.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)


@contextlib.contextmanager
def status_writes_refused(ns: str, expression: str) -> Iterator[None]:
    """While open, Deployment status writes in ns are refused unless expression holds (a real
    admission denial, as a conflict or an outage refuses the controller's write); the Deployment
    named probe (not opted in) is always refused, which tells when the policy is in force."""
    name = f"status-{ns}"
    admission_policy(
        ns,
        name,
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["deployments/status"]},
        f"object.metadata.name != 'probe' && ({expression})",
    )
    try:
        kit.release(ns, "probe", V1)  # not opted in: only tells when the policy is in force
        kit.wait_for(
            lambda: (
                kit.kubectl(
                    "-n",
                    ns,
                    "patch",
                    "deployment/probe",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    '{"status":{"observedGeneration":1}}',
                    "--dry-run=server",
                    check=False,
                ).returncode
                != 0
            ),
            30,
            "the policy to take effect",
        )
        yield
    finally:
        kit.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)


def recreate(
    ns: str, name: str, image: str, failure: str | None = None, annotations: dict | None = None, deadline: int = 10
) -> None:
    m = kit.deployment(name, image=image, failure=failure, annotations=annotations or ON, progress_deadline=deadline)
    m["metadata"]["namespace"] = ns
    m["spec"]["strategy"] = {"type": "Recreate"}
    if failure:
        m["spec"]["template"]["metadata"]["labels"][HOLD] = "true"
    kit.apply(m)


def stale(ns: str, name: str) -> dict | None:
    """The state the controller writes right after a template goes back to an existing ReplicaSet:
    the new generation observed, and a leftover condition: the old ProgressDeadlineExceeded naming the
    failed ReplicaSet or, when the controller's status write for the failed revision was lost (it
    happens under load), the restored ReplicaSet's own "successfully progressed" from before, while
    none of its pods is available."""
    d = kit.get_deployment(ns, name)
    c = kit.condition(d, "Progressing")
    current = next(
        (
            rs["metadata"]["name"]
            for rs in kit.replicasets(ns, name)
            if rs["spec"]["template"]["spec"] == d["spec"]["template"]["spec"]
        ),
        None,
    )
    is_stale = (
        current is not None
        and kit.image_of(d) == V1
        and d["status"].get("observedGeneration") == d["metadata"]["generation"]
        and (
            (c.get("reason") == "ProgressDeadlineExceeded" and f'"{current}"' not in c.get("message", ""))
            or (
                c.get("reason") == "NewReplicaSetAvailable"
                and f'"{current}"' in c.get("message", "")
                and not d["status"].get("availableReplicas")
            )
        )
    )
    return d if is_stale else None


def test_a_stale_deadline_condition_is_not_blamed_on_the_restored_revision(namespace: str, operator_factory) -> None:
    ns = namespace
    dry = {**ON, "autorollback.io/mode": "dry-run"}
    op = operator_factory("-n", ns)
    with undeletable_pods(ns):
        # a 20 s deadline: the stale state below lasts well within it, however loaded the machine is
        recreate(ns, "web", V1, deadline=20)
        recreate(ns, "manual", V1, annotations=dry, deadline=20)
        available(ns, V1, 1)
        available(ns, V1, 1, name="manual")
        recreate(ns, "web", V2, failure="not-ready", deadline=20)  # rolled back by the operator
        recreate(ns, "manual", V2, failure="not-ready", annotations=dry, deadline=20)  # planned, then undone
        wait_event(ns, "RollbackPlanned", name="manual")
        kit.kubectl("-n", ns, "rollout", "undo", "deployment/manual")
        # The failed pods cannot be deleted, so the controller sees no progress: both Deployments
        # sit in the stale state for as long as this block lasts.
        kit.wait_for(lambda: stale(ns, "web"), 90, "the rollback to leave the stale condition")
        kit.wait_for(lambda: stale(ns, "manual"), 30, "the manual undo to leave the stale condition")
        time.sleep(4)  # watch events and rechecks of the stale state, within the deadline
        assert stale(ns, "web") and stale(ns, "manual")
    available(ns, V1, 3)
    available(ns, V1, 3, name="manual")
    time.sleep(2)
    assert sorted(kit.reasons(ns, "web")) == ["RolledBack", "RolloutFailed"]
    assert sorted(kit.reasons(ns, "manual")) == ["RollbackPlanned", "RolloutFailed"]
    decisions = [line for line in op.lines() if line.get("event") == "rollback decision"]
    assert [(d["deployment"], d["result"]) for d in decisions] in (
        [("web", "success"), ("manual", "dry_run")],
        [("manual", "dry_run"), ("web", "success")],
    )


@pytest.mark.slow
def test_a_restored_revision_that_never_progresses_is_reported_once(
    namespace: str, operator_factory, tmp_path: Path
) -> None:
    # The controller keeps the old timeout until it sees progress, so no condition will ever say
    # that the restored template failed too: the operator measures the deadline itself.
    ns = namespace
    op = operator_factory("-n", ns)
    with undeletable_pods(ns):
        recreate(ns, "web", V1)
        available(ns, V1, 1)
        recreate(ns, "web", V2, failure="not-ready")
        # Usually the controller times revision 2 out and keeps that condition over the restored
        # revision (stale); if its status write for revision 2 was lost, it keeps revision 1's
        # "successfully progressed" instead, and autorollback times both itself
        wait_event(ns, "RolledBack")
        abandoned = wait_event(ns, "RollbackAbandoned", timeout=60)
        assert "made no progress for 10s" in abandoned["message"] or "failed as well" in abandoned["message"]
        reader = test_status.read_only(ns, tmp_path / "reader.kubeconfig")  # autorollback status says so
        row = test_status.rows(reader, ns)["web"]
        assert (row["revision"], row["state"], row["last_rollback"]["from_revision"]) == (3, "abandoned", 2), row
        time.sleep(3)
    available(ns, V1, 3)  # once the old pods can go, the restored revision comes up after all
    time.sleep(2)
    assert sorted(kit.reasons(ns, "web")) == ["RollbackAbandoned", "RolledBack", "RolloutFailed", "RolloutFailed"]
    assert (
        op.metric(
            "autorollback_rollbacks_total",
            kind="Deployment",
            namespace=ns,
            name="web",
            result="abandoned",
            reason="restored_revision_failed",
        )
        == 1
    )


def test_marks_copied_by_a_manual_undo_do_not_poison_later_releases(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    # fail-on: going back to an existing ReplicaSet, the controller can keep the earlier "successfully
    # progressed" condition for good (its first sync saw no progress), and then never times it out.
    on = {**ON, "autorollback.io/fail-on": "CrashLoopBackOff"}
    kit.release(ns, "web", V1, annotations=on)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=on)
    available(ns, V1, 3)  # rolled back away from revision 2
    # A person goes back to the failed revision: kubectl copies its ReplicaSet's annotations,
    # autorollback's marks included, onto the Deployment; the controller copies them onward.
    kit.kubectl("-n", ns, "rollout", "undo", "deployment/web", "--to-revision=2")
    assert "revert it at its source" in wait_event(ns, "KnownBadTemplate")["message"]
    kit.wait_for(
        lambda: (
            not [
                k
                for k in kit.get_deployment(ns, "web")["metadata"]["annotations"]
                if k.endswith(("-at", "outcome", "failed-reason"))
            ]
        ),
        30,
        "the copied marks to go",
    )
    assert "re-applied" in wait_event(ns, "RollbackAbandoned")["message"]  # a person's choice is not fought
    kit.release(ns, "web", V3, annotations=on)  # a brand-new good release
    available(ns, V3, 5)
    kit.release(ns, "web", V4, failure="crash", annotations=on)  # then a bad one
    d = available(ns, V3, 7)
    assert f"from revision 6 ({V4}) to revision 5 ({V3})" in d["metadata"]["annotations"]["kubernetes.io/change-cause"]
    assert count(ns, "KnownBadTemplate") == 1 and count(ns, "RollbackAbandoned") == 1
    assert count(ns, "RolledBack") == 2 and count(ns, "RolloutFailed") == 3


def test_the_loop_guard_outlives_garbage_collected_history(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    kit.release(ns, "web", V1, annotations=ON, history_limit=0)
    assert "revisionHistoryLimit is 0" in wait_event(ns, "RevisionHistoryTooShort")["message"]
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON, history_limit=0)
    available(ns, V1, 3)
    kit.wait_for(lambda: len(kit.replicasets(ns, "web")) == 1, 60, "the failed ReplicaSet to be deleted")
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON, history_limit=0)  # a GitOps re-apply
    wait_event(ns, "KnownBadTemplate")
    assert "re-applied" in wait_event(ns, "RollbackAbandoned")["message"]
    assert count(ns, "RolledBack") == 1 and kit.image_of(kit.get_deployment(ns, "web")) == V2
    assert count(ns, "RevisionHistoryTooShort") == 1


def test_huge_and_hostile_annotation_values(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    hostile = '{"level":"error"}\n' + "\u202e" + "x" * 200_000
    manifest = kit.deployment("web", image=V1, annotations={**ON, "autorollback.io/mode": hostile})
    manifest["metadata"]["namespace"] = ns
    kit.kubectl("create", "-f", "-", input=json.dumps(manifest))  # apply would double it past the size limit
    available(ns, V1, 1)
    for replicas in (2, 3, 4):  # more watch events with the same value
        kit.kubectl("-n", ns, "scale", "deployment/web", f"--replicas={replicas}")
    kit.kubectl("-n", ns, "annotate", "--overwrite", "deployment/web", "autorollback.io/mode=" + "y" * 100_000)
    kit.wait_for(lambda: count(ns, "InvalidAnnotation") == 2, 30, "a Warning for each value")
    time.sleep(2)
    assert count(ns, "InvalidAnnotation") == 2
    for e in kit.events(ns, "web"):
        assert len(e["message"]) < 400 and "\n" not in e["message"] and "characters)" in e["message"]
    lines = op.output().splitlines()
    assert all(len(line) < 4096 for line in lines)
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert op.proc.poll() is None


def test_an_undo_that_takes_the_opt_in_away_says_so(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    kit.release(ns, "web", V1)
    available(ns, V1, 1)
    kit.release(ns, "web", V2)
    available(ns, V2, 2)
    kit.kubectl("-n", ns, "annotate", "deployment/web", "autorollback.io/enabled=true")  # as the README says
    kit.kubectl("-n", ns, "rollout", "undo", "deployment/web")  # revision 1's ReplicaSet predates the opt-in
    lost = wait_event(ns, "OptInLost")
    assert lost["type"] == "Warning" and "autorollback.io/enabled=true" in lost["message"]
    assert "autorollback.io/enabled" not in kit.get_deployment(ns, "web")["metadata"].get("annotations", {})


def test_a_rollout_the_controller_never_times_out_is_timed_by_autorollback(namespace: str, operator_factory) -> None:
    # kube-controller-manager: if its first status write for a new template is refused (a conflict
    # with another writer, an API outage) and the sync that finally writes sees no progress, it keeps
    # the previous "has successfully progressed" condition and never times the rollout out. Here an
    # admission policy refuses the write that says "Created new replica set" and every write before
    # the new ReplicaSet reports its pod, which makes that timing certain.
    ns = namespace
    op = operator_factory("-n", ns)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    with status_writes_refused(
        ns,
        "object.metadata.generation != 2 || (has(object.status.updatedReplicas) && "
        "!object.status.conditions.exists(c, c.reason == 'NewReplicaSetCreated'))",
    ):
        kit.release(ns, "web", V2, failure="not-ready", annotations=ON)

        def stuck() -> dict | None:
            d = kit.get_deployment(ns, "web")
            c = kit.condition(d, "Progressing")
            return (
                d
                if (
                    d["status"].get("observedGeneration") == 2
                    and d["status"].get("updatedReplicas") == 1
                    and c.get("reason") == "NewReplicaSetAvailable"
                )
                else None
            )

        kit.wait_for(stuck, 60, "the controller to keep revision 1's condition for revision 2")
    d = available(ns, V1, 3)  # 10 s without progress, timed by autorollback
    assert (
        "from revision 2 (registry.example/web:2.0.0) to revision 1"
        in d["metadata"]["annotations"]["kubernetes.io/change-cause"]
    )
    failed = wait_event(ns, "RolloutFailed")["message"]
    assert "made no progress for 10s" in failed and "will not time this rollout out" in failed, failed
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
    assert (
        op.metric(
            "autorollback_rollbacks_total",
            kind="Deployment",
            namespace=ns,
            name="web",
            result="success",
            reason="ProgressDeadlineExceeded",
        )
        == 1
    )


def test_a_recreate_rollout_the_controller_never_looks_at_is_timed_and_proven_by_autorollback(
    namespace: str, operator_factory
) -> None:
    # The same lost status write under Recreate: the old pods go first, so replicas == updatedReplicas
    # and syncRolloutStatus never even checks progress under revision 1's condition (seen in CI, where
    # the controller's own write conflicted). No condition will ever say that revision 2 failed, nor
    # that revision 4 completed: the counts do.
    ns = namespace
    operator_factory("-n", ns)
    recreate(ns, "web", V1)
    available(ns, V1, 1)
    with status_writes_refused(
        ns,
        "!(has(object.status.conditions) && object.status.conditions.exists(c, c.reason == 'NewReplicaSetCreated'))",
    ):
        recreate(ns, "web", V2, failure="not-ready")
        d = available(ns, V1, 3)  # 10 s without progress, timed by autorollback
        assert kit.condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"  # never anything else
        failed = wait_event(ns, "RolloutFailed")["message"]
        assert "made no progress for 10s" in failed and "will not time this rollout out" in failed, failed
        recreate(ns, "web", V3)
        d = available(ns, V3, 4)
        good = next(rs["metadata"]["name"] for rs in kit.replicasets(ns, "web") if kit.image_of(rs) == V3)
        assert good not in kit.condition(d, "Progressing")["message"]  # still revision 1's condition
        kit.wait_for(
            lambda: any(
                (rs["metadata"].get("annotations") or {})
                .get("autorollback.io/healthy-at", "")
                .startswith(good + " revision 4")
                for rs in kit.replicasets(ns, "web")
            ),
            30,
            "revision 4 marked healthy",
        )
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1


def test_a_failure_a_person_undid_while_autorollback_was_busy_is_left_alone(
    namespace: str, operator_factory, tmp_path
) -> None:
    # Under load the worker takes up a failure seconds after the watch showed it; meanwhile a person
    # ran `kubectl rollout undo`. Decided on the failure as watched, with the ReplicaSets as they are
    # now, revision 2 has no older revision (revision 1 became 3): a false RollbackImpossible, and
    # its marks overwritten.
    ns = namespace
    hold = tmp_path / "hold"
    hold.touch()
    operator_factory("-n", ns, env={"AUTOROLLBACK_TEST_FAULTS": f"before_read=pause:{hold}"})
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for((tmp_path / "hold.reached").exists, 90, "the operator to take up the failure")
    kit.wait_for(
        lambda: kit.condition(kit.get_deployment(ns, "web"), "Progressing").get("reason") == "ProgressDeadlineExceeded",
        30,
        "the failure to be what the operator holds",
    )
    kit.kubectl("-n", ns, "rollout", "undo", "deployment/web")
    available(ns, V1, 3)
    hold.unlink()
    # The next failure is decided after the held one (one worker per Deployment at a time).
    kit.release(ns, "web", V3, failure="crash", annotations=ON)
    d = available(ns, V1, 5)
    assert f"from revision 4 ({V3}) to revision 3 ({V1})" in d["metadata"]["annotations"]["kubernetes.io/change-cause"]
    wait_event(ns, "RolledBack")
    assert count(ns, "RollbackImpossible") == 0 and count(ns, "RollbackAbandoned") == 0
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
