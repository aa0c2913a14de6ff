"""Automatic rollback, end to end on the local control plane: one namespace and operator per test."""

import collections
import json

from . import kit

ON = {"autorollback.io/enabled": "true"}
V1, V2, V3, V4 = (f"registry.example/web:{v}" for v in ("1.0.0", "2.0.0", "3.0.0", "4.0.0"))
CHANGE_CAUSE = "kubernetes.io/change-cause"


def available(ns: str, image: str, revision: int | None = None, name: str = "web") -> dict:
    def check() -> dict | None:
        d = kit.is_available(ns, name)
        if d and kit.image_of(d) == image and (revision is None or kit.revision(d) == revision):
            return d
        return None

    return kit.wait_for(check, 120, f"{name} available on {image} (revision {revision})")


def by_name(ns: str, app: str = "web") -> dict[str, dict[str, str]]:
    """Annotations of the Deployment's ReplicaSets, by ReplicaSet name."""
    return {rs["metadata"]["name"]: rs["metadata"].get("annotations", {}) for rs in kit.replicasets(ns, app)}


def count(ns: str, reason: str, name: str = "web") -> int:
    return collections.Counter(kit.reasons(ns, name))[reason]


def wait_event(ns: str, reason: str, name: str = "web", timeout: float = 90) -> dict:
    return kit.wait_for(lambda: kit.event(ns, name, reason), timeout, f"a {reason} Event on {name}")


def rolled_back_once(ns: str, failure: str) -> dict:
    """v1 becomes healthy, a broken v2 fails and is rolled back: v1's template is revision 3."""
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure=failure, annotations=ON)
    return available(ns, V1, 3)


def test_rolls_back_and_tells_everyone(namespace: str, operator_factory) -> None:
    ns = namespace
    bystander = kit.deployment("bystander", image=V1)
    bystander["metadata"]["namespace"] = ns
    kit.apply(bystander)
    kit.release(ns, "web", V1, annotations=ON)
    op = operator_factory("-n", ns)
    available(ns, V1, 1)
    before = kit.wait_for(lambda: kit.is_available(ns, "bystander"), 60, "the bystander to be available")

    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    d = available(ns, V1, 3)  # rolled back: revision 1's template is revision 3 now

    assert d["metadata"]["annotations"][CHANGE_CAUSE] == (
        f"autorollback: rolled back from revision 2 ({V2}) to revision 1 ({V1}): ProgressDeadlineExceeded"
    )
    assert d["metadata"]["annotations"]["autorollback.io/enabled"] == "true"
    assert "pod-template-hash" not in d["spec"]["template"]["metadata"]["labels"]
    assert not [k for k in d["metadata"]["annotations"] if "kopf" in k] and "finalizers" not in d["metadata"]
    assert not any(
        k in d["metadata"]["annotations"] for k in ("autorollback.io/healthy-at", "autorollback.io/failed-at")
    )
    by_revision = {kit.revision(rs): rs for rs in kit.replicasets(ns, "web")}
    bad, good = by_revision[2]["metadata"]["name"], by_revision[3]["metadata"]["name"]
    (entry,) = json.loads(d["metadata"]["annotations"]["autorollback.io/rollbacks"])  # recorded in the rollback
    assert (entry["failed"], entry["restored"], entry["reason"], entry["revision"]) == (
        bad,
        good,
        "ProgressDeadlineExceeded",
        2,
    )

    failed = wait_event(ns, "RolloutFailed")
    assert failed["type"] == "Warning" and "revision 2" in failed["message"] and V2 in failed["message"]
    assert "timed out progressing" in failed["message"]
    rolled = wait_event(ns, "RolledBack")
    assert rolled["type"] == "Normal" and f"from revision 2 ({V2}) to revision 1 ({V1})" in rolled["message"]
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1

    history = kit.kubectl("-n", ns, "rollout", "history", "deployment/web").stdout
    assert "autorollback: rolled back from revision 2" in history

    marks = kit.wait_for(lambda: by_name(ns).get(bad, {}).get("autorollback.io/outcome"), 30, "the outcome mark")
    assert marks.startswith(f"{bad} success")  # every mark names the ReplicaSet it was written for
    assert by_name(ns)[bad]["autorollback.io/failed-at"] == f"{bad} {entry['failure']} revision 2"
    assert "ProgressDeadlineExceeded" in by_name(ns)[bad]["autorollback.io/failed-reason"]
    kit.wait_for(
        lambda: by_name(ns)[good].get("autorollback.io/healthy-at", "").startswith(good + " revision 3"),
        60,
        "revision 3 marked healthy",
    )

    labels = {"kind": "Deployment", "namespace": ns, "name": "web"}
    assert op.metric("autorollback_failed_rollouts_total", **labels) == 1
    assert op.metric("autorollback_rollbacks_total", result="success", **labels) == 1
    assert op.metric("autorollback_reaction_seconds_count", namespace=ns) == 1
    assert op.metric("autorollback_last_rollback_timestamp_seconds", **labels) > 0
    assert op.metric("autorollback_opted_in_workloads", kind="Deployment", namespace=ns) == 1
    kit.wait_for(
        lambda: op.metric("autorollback_recovery_seconds_count", namespace=ns) == 1, 60, "the recovery to be measured"
    )

    decisions = [line for line in op.lines() if line.get("event") == "rollback decision"]
    assert len(decisions) == 1
    line = decisions[0]
    assert (line["namespace"], line["deployment"], line["result"], line["from_revision"], line["to_revision"]) == (
        ns,
        "web",
        "success",
        2,
        1,
    )
    assert line["from_images"] == V2 and line["to_images"] == V1 and line["reason"] == "ProgressDeadlineExceeded"

    kit.kubectl("-n", ns, "delete", "deployment", "web")  # its series go with it: their number follows the live ones
    kit.wait_for(
        lambda: (
            not op.samples("autorollback_rollbacks_total", **labels)
            and not op.samples("autorollback_last_rollback_timestamp_seconds", **labels)
        ),
        30,
        "the series to go",
    )
    assert op.metric("autorollback_opted_in_workloads", kind="Deployment", namespace=ns) == 0

    after = kit.get_deployment(ns, "bystander")  # never touched: same object, same resourceVersion
    assert after["metadata"] == before["metadata"]
    assert not [k for k in after["metadata"]["annotations"] if "kopf" in k or k.startswith("autorollback.io/")]
    assert "finalizers" not in after["metadata"]
    assert kit.events(ns, "bystander") == []


def test_returns_to_the_last_healthy_revision_not_a_known_bad_one(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    rolled_back_once(ns, "crash")
    kit.release(ns, "web", V4, failure="image-pull", annotations=ON)
    d = available(ns, V1, 5)  # back to v1's template again, never to the failed v2
    assert "from revision 4" in d["metadata"]["annotations"][CHANGE_CAUSE]
    assert "to revision 3" in d["metadata"]["annotations"][CHANGE_CAUSE]
    assert count(ns, "RolledBack") == 2


def test_skips_a_revision_that_never_became_healthy(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="oom", annotations=ON, progress_deadline=600)
    kit.wait_for(lambda: len(kit.replicasets(ns, "web")) == 2, 30, "revision 2's ReplicaSet")
    kit.release(ns, "web", V3, failure="not-ready", annotations=ON)  # before v2 could fail
    d = available(ns, V1, 4)
    assert f"from revision 3 ({V3}) to revision 1 ({V1})" in d["metadata"]["annotations"][CHANGE_CAUSE]


def test_dry_run_reports_the_plan_and_changes_nothing(namespace: str, operator_factory) -> None:
    ns = namespace
    dry = {**ON, "autorollback.io/mode": "dry-run"}
    op = operator_factory("-n", ns)
    kit.release(ns, "web", V1, annotations=dry)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=dry)
    planned = wait_event(ns, "RollbackPlanned")
    assert f"would roll back from revision 2 ({V2}) to revision 1 ({V1})" in planned["message"]
    d = kit.get_deployment(ns, "web")
    assert kit.image_of(d) == V2 and kit.revision(d) == 2 and CHANGE_CAUSE not in d["metadata"]["annotations"]
    assert op.metric("autorollback_rollbacks_total", kind="Deployment", namespace=ns, name="web", result="dry_run") == 1
    assert count(ns, "RolledBack") == 0
    kit.kubectl("-n", ns, "annotate", "--overwrite", "deployment/web", "autorollback.io/mode=rollback")
    d = available(ns, V1, 3)  # trusted now: the standing failure is rolled back
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
    assert d["metadata"]["annotations"]["autorollback.io/mode"] == "rollback"


def test_invalid_annotations_are_reported_once_and_fall_to_the_safe_side(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    kit.release(ns, "maybe", V1, annotations={"autorollback.io/enabled": "yes"})
    kit.release(ns, "bogus", V1, annotations={**ON, "autorollback.io/mode": "yolo"})
    available(ns, V1, 1, name="maybe")
    available(ns, V1, 1, name="bogus")
    kit.release(ns, "maybe", V2, failure="not-ready", annotations={"autorollback.io/enabled": "yes"})
    kit.release(ns, "bogus", V2, failure="not-ready", annotations={**ON, "autorollback.io/mode": "yolo"})

    planned = wait_event(ns, "RollbackPlanned", name="bogus")  # invalid mode: dry-run
    assert "would roll back" in planned["message"]
    kit.wait_for(lambda: kit.is_failed(ns, "maybe"), 60, "maybe to fail")
    invalid = kit.event(ns, "maybe", "InvalidAnnotation")
    assert invalid["type"] == "Warning"
    assert (
        'autorollback.io/enabled="yes" is invalid' in invalid["message"] and '"true" or "false"' in invalid["message"]
    )
    assert 'autorollback.io/mode="yolo"' in kit.event(ns, "bogus", "InvalidAnnotation")["message"]
    # many watch events later, still one Event per distinct bad value, and nothing rolled back
    assert kit.reasons(ns, "maybe") == ["InvalidAnnotation"]
    assert count(ns, "InvalidAnnotation", name="bogus") == 1
    assert kit.image_of(kit.get_deployment(ns, "maybe")) == V2
    assert kit.image_of(kit.get_deployment(ns, "bogus")) == V2
    assert op.metric("autorollback_opted_in_workloads", kind="Deployment", namespace=ns) == 1  # only bogus is opted in


def test_paused_deployment_is_skipped_with_the_resume_command(namespace: str, operator_factory) -> None:
    ns = namespace
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for(lambda: kit.is_failed(ns, "web"), 60, "the rollout to fail")
    kit.kubectl("-n", ns, "rollout", "pause", "deployment/web")
    op = operator_factory("-n", ns)  # started after the failure: acts on what it finds
    skipped = wait_event(ns, "RollbackSkipped")
    assert skipped["type"] == "Warning" and f"kubectl rollout resume deployment/web -n {ns}" in skipped["message"]
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2
    assert (
        op.metric(
            "autorollback_rollbacks_total",
            kind="Deployment",
            namespace=ns,
            name="web",
            result="skipped",
            reason="paused",
        )
        == 1
    )
    kit.kubectl("-n", ns, "rollout", "resume", "deployment/web")  # as the Event says
    available(ns, V1, 3)
    assert count(ns, "RolledBack") == 1 and count(ns, "RollbackSkipped") == 1 and count(ns, "RolloutFailed") == 1


def test_first_revision_failing_is_impossible(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    kit.release(ns, "web", V1, failure="not-ready", annotations=ON)
    impossible = wait_event(ns, "RollbackImpossible")
    assert impossible["type"] == "Warning" and "no older revision" in impossible["message"]
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for(lambda: count(ns, "RollbackImpossible") == 2, 90, "a second RollbackImpossible")
    assert any(
        "every older revision (1) is known to have failed" in e["message"]
        for e in kit.events(ns, "web")
        if e["reason"] == "RollbackImpossible"
    )
    assert (
        op.metric(
            "autorollback_rollbacks_total",
            kind="Deployment",
            namespace=ns,
            name="web",
            result="impossible",
            reason="no_target",
        )
        == 2
    )
    assert count(ns, "RolledBack") == 0


def test_restored_revision_failing_too_is_abandoned(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    # v1 never becomes ready but has a long deadline, so it is never known to have failed.
    kit.release(ns, "web", V1, failure="not-ready", annotations=ON, progress_deadline=600)
    kit.wait_for(lambda: len(kit.replicasets(ns, "web")) == 1, 30, "revision 1's ReplicaSet")
    kit.release(ns, "web", V2, failure="crash", annotations=ON)
    wait_event(ns, "RolledBack")
    abandoned = wait_event(ns, "RollbackAbandoned")
    assert "manual intervention" in abandoned["message"]
    d = kit.get_deployment(ns, "web")
    assert kit.image_of(d) == V1 and kit.revision(d) == 3  # no further walk back, no ping-pong
    assert count(ns, "RolledBack") == 1
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


def test_known_bad_template_reapplied_is_not_rolled_back_again(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    rolled_back_once(ns, "not-ready")
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)  # a GitOps controller re-applies v2
    early = wait_event(ns, "KnownBadTemplate")  # said when the rollout starts, not after the deadline
    assert early["type"] == "Warning" and "revert it at its source" in early["message"]
    abandoned = wait_event(ns, "RollbackAbandoned")
    assert "re-applied" in abandoned["message"]
    assert count(ns, "RolledBack") == 1 and kit.image_of(kit.get_deployment(ns, "web")) == V2


def test_restart_between_failure_and_action_acts_exactly_once(namespace: str, operator_factory) -> None:
    ns = namespace
    first = operator_factory("-n", ns)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    assert first.stop() == 0
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for(lambda: kit.is_failed(ns, "web"), 60, "the rollout to fail while the operator is down")
    second = operator_factory("-n", ns)
    available(ns, V1, 3)
    assert second.stop() == 0
    third = operator_factory("-n", ns)
    kit.wait_for(lambda: kit.is_available(ns, "web"), 30, "the Deployment to stay available")
    assert third.stop() == 0
    d = kit.get_deployment(ns, "web")
    assert kit.revision(d) == 3 and count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
    assert not [line for line in third.lines() if line.get("event") == "rollback decision"]


def test_a_forbidden_rollback_is_told_and_tried_again_until_it_works(
    namespace: str, operator_factory, tmp_path
) -> None:
    ns = namespace
    # The operator runs as a ServiceAccount that may read Deployments but not patch them: a real 403.
    rules = [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "limited", "namespace": ns},
        "rules": rules,
    }
    kit.kubectl("-n", ns, "create", "serviceaccount", "limited")
    kit.apply(role)
    kit.kubectl("-n", ns, "create", "rolebinding", "limited", "--role=limited", f"--serviceaccount={ns}:limited")
    config = kit.token_kubeconfig(ns, "limited", tmp_path / "limited.kubeconfig")
    op = operator_factory("-n", ns, config=str(config))
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    failed = wait_event(ns, "RollbackFailed")
    assert failed["type"] == "Warning"
    assert "403" in failed["message"] and "cannot patch resource" in failed["message"]
    assert "keeps trying" in failed["message"] and "kubectl rollout undo" in failed["message"]
    kit.wait_for(
        lambda: op.metric("autorollback_api_errors_total", operation="failure", code="403") >= 2,
        30,
        "the patch to be tried again",
    )
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2 and op.proc.poll() is None

    rules[0]["verbs"].append("patch")  # the RBAC is fixed: the standing failure is rolled back, not given up
    kit.apply(role)
    available(ns, V1, 3)
    assert count(ns, "RolledBack") == 1 and count(ns, "RollbackFailed") == 1 and count(ns, "RolloutFailed") == 1
