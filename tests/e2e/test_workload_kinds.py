"""StatefulSets and DaemonSets on the real control plane: their controllers never time a rollout out,
so autorollback measures autorollback.io/progress-deadline-seconds itself, and rolls back exactly as
`kubectl rollout undo` does (a strategic merge patch of the ControllerRevision's data)."""

import json
import time
from typing import Any

import pytest

from . import kit
from .test_skew import keyed

V1, V2 = "registry.example/web:1.0.0", "registry.example/web:2.0.0"
ENABLED = "autorollback.io/enabled"
DEADLINE = "autorollback.io/progress-deadline-seconds"
HEALTHY_AT = "autorollback.io/healthy-at"
NO_PROGRESS = "autorollback.io/no-progress"
FAILURE = "autorollback.test/failure"
# the bad version: another image, and fields the good one did not have (a label that makes KWOK's
# pods never Ready, an annotation): kubectl's undo replaces the template whole, so they must go
BREAK = {
    "spec": {
        "template": {
            "metadata": {"labels": {FAILURE: "not-ready"}, "annotations": {"example.com/added-by-v2": "yes"}},
            "spec": {"containers": [{"name": "app", "image": V2}]},
        }
    }
}
GOOD_V2 = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": V2}]}}}}


def template(image: str = V1, app: str = "web") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}, "annotations": {"example.com/scrape": "true"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def daemonset(ns: str, annotations: dict[str, str], name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": template(app=name),
        },
    }


def statefulset(
    ns: str,
    annotations: dict[str, str],
    replicas: int = 2,
    policy: str = "Parallel",
    strategy: dict[str, Any] | None = None,
    name: str = "web",
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": strategy or {"type": "RollingUpdate"},
            "template": template(app=name),
        },
    }


def get(ns: str, kind: str, name: str = "web") -> dict[str, Any]:
    return kit.kubectl_json("-n", ns, "get", kind, name)


def rolled_out(ns: str, kind: str, image: str, name: str = "web") -> dict[str, Any] | None:
    """The workload once every pod runs `image` and is available (kubectl rollout status's rule)."""
    w = get(ns, kind, name)
    s = w.get("status") or {}
    if s.get("observedGeneration", 0) < w["metadata"]["generation"] or kit.image_of(w) != image:
        return None
    if kind == "daemonset":
        want = s.get("desiredNumberScheduled", 0)
        done = want > 0 and s.get("updatedNumberScheduled") == want and s.get("numberAvailable") == want
    else:
        want = w["spec"]["replicas"]
        done = s.get("updatedReplicas") == want and s.get("availableReplicas") == want
        done = done and s.get("currentRevision") == s.get("updateRevision")
    return w if done else None


def revisions(ns: str, name: str = "web") -> list[dict[str, Any]]:
    return kit.kubectl_json("-n", ns, "get", "controllerrevisions", "-l", f"app={name}")["items"]


def marked_healthy(ns: str, image: str, name: str = "web") -> dict[str, Any] | None:
    """The ControllerRevision of `image` once autorollback marked it healthy (the mark names it)."""
    for cr in revisions(ns, name):
        containers = cr["data"]["spec"]["template"]["spec"]["containers"]
        mark = (cr["metadata"].get("annotations") or {}).get(HEALTHY_AT, "")
        if containers[0]["image"] == image and mark.startswith(cr["metadata"]["name"] + " "):
            return cr
    return None


def event(ns: str, reason: str, timeout: float = 90) -> dict[str, Any]:
    return kit.wait_for(lambda: kit.event(ns, "web", reason), timeout, f"a {reason} Event on web")


def twins(new_namespace, manifest, annotations: dict[str, str]) -> tuple[str, str]:
    """The same workload in two namespaces: ours opted in, theirs for `kubectl rollout undo`."""
    ours, theirs = new_namespace(), new_namespace()
    kit.apply(manifest(ours, annotations))
    kit.apply(manifest(theirs, {}))
    return ours, theirs


def differential(ours: str, theirs: str, kind: str, op: Any) -> None:
    """Both healthy on V1, both broken the same way; theirs undone by kubectl, ours by autorollback:
    the same template, byte for byte, and both healthy on V1 again."""
    for ns in (ours, theirs):
        kit.wait_for(lambda ns=ns: rolled_out(ns, kind, V1), 90, f"{kind} on V1 in {ns}")
    # the good revision is known healthy (a DaemonSet's completion names no ControllerRevision)
    kit.wait_for(lambda: marked_healthy(ours, V1), 60, "the healthy mark on V1's ControllerRevision")
    for ns in (ours, theirs):
        kit.kubectl("-n", ns, "patch", f"{kind}/web", "--type=strategic", "-p", json.dumps(BREAK))
    kit.wait_for(
        lambda: (
            (s := get(theirs, kind)["status"]).get("observedGeneration") == 2
            and s.get("updatedNumberScheduled" if kind == "daemonset" else "updatedReplicas")
        ),
        60,
        "the broken rollout to start in the twin",
    )
    time.sleep(5)  # stuck: not one broken pod becomes Ready
    kit.kubectl("-n", theirs, "rollout", "undo", f"{kind}/web")
    event(ours, "RolledBack", timeout=120)
    results = [
        kit.wait_for(lambda ns=ns: rolled_out(ns, kind, V1), 120, f"{kind} back on V1 in {ns}") for ns in (ours, theirs)
    ]
    assert results[0]["spec"]["template"] == results[1]["spec"]["template"]
    restored = results[0]["spec"]["template"]
    assert restored["metadata"]["labels"] == {"app": "web"}  # v2's failure label is gone
    assert restored["metadata"]["annotations"] == {"example.com/scrape": "true"}  # v2's annotation is gone
    assert results[0]["spec"]["updateStrategy"] == results[1]["spec"]["updateStrategy"]  # only the template
    # the controller took it: the restored revision completed, was marked healthy again, and the
    # recovery was measured (nothing is known from the patch alone)
    kit.wait_for(
        lambda: op.metric("autorollback_recovery_seconds_count", kind=results[0]["kind"], namespace=ours) == 1,
        60,
        "the recovery to be measured",
    )
    restored = marked_healthy(ours, V1)
    assert restored is not None and " generation 3" in restored["metadata"]["annotations"][HEALTHY_AT]


@pytest.mark.slow
def test_a_daemonset_on_both_nodes_is_rolled_back_as_kubectl_rollout_undo_does_and_known_bad_after(
    new_namespace, operator_factory
) -> None:
    ours, theirs = twins(new_namespace, daemonset, {ENABLED: "true", DEADLINE: "10"})
    differential(ours, theirs, "daemonset", operator_factory("-n", ours))
    assert get(ours, "daemonset")["status"]["desiredNumberScheduled"] == 2  # both fake nodes
    assert kit.reasons(ours, "web").count("RolledBack") == 1
    # a GitOps controller re-applies the broken version: its ControllerRevision is reused, and known bad
    kit.kubectl("-n", ours, "patch", "daemonset/web", "--type=strategic", "-p", json.dumps(BREAK))
    early = event(ours, "KnownBadTemplate", timeout=30)  # at once, not after the deadline
    assert early["type"] == "Warning" and "revert it at its source" in early["message"]
    assert "re-applied" in event(ours, "RollbackAbandoned", timeout=60)["message"]
    assert kit.reasons(ours, "web").count("RolledBack") == 1 and kit.image_of(get(ours, "daemonset")) == V2


@pytest.mark.slow
def test_a_parallel_statefulset_with_mode_rollback_is_rolled_back_as_kubectl_rollout_undo_does(
    new_namespace, operator_factory
) -> None:
    ours, theirs = twins(
        new_namespace, statefulset, {ENABLED: "true", DEADLINE: "10", "autorollback.io/mode": "rollback"}
    )
    differential(ours, theirs, "statefulset", operator_factory("-n", ours))
    rolled = kit.event(ours, "web", "RolledBack")
    assert rolled is not None and rolled["involvedObject"]["kind"] == "StatefulSet"


def test_a_statefulset_without_mode_is_only_planned(namespace: str, operator_factory) -> None:
    ns = namespace
    kit.apply(statefulset(ns, {ENABLED: "true", DEADLINE: "10"}))
    operator_factory("-n", ns)
    kit.wait_for(lambda: rolled_out(ns, "statefulset", V1), 90, "V1")
    kit.kubectl("-n", ns, "patch", "statefulset/web", "--type=strategic", "-p", json.dumps(BREAK))
    planned = event(ns, "RollbackPlanned")
    assert "autorollback.io/mode=rollback" in planned["message"] and "one way" in planned["message"]
    assert planned["involvedObject"]["kind"] == "StatefulSet"
    assert kit.event(ns, "web", "RolloutFailed") is not None
    time.sleep(3)
    sts = get(ns, "statefulset")
    assert kit.image_of(sts) == V2 and sts["metadata"]["generation"] == 2  # nothing changed
    assert "RolledBack" not in kit.reasons(ns, "web")


def test_an_on_delete_statefulset_is_never_rolled_back_and_says_why(namespace: str, operator_factory) -> None:
    ns = namespace
    on = {ENABLED: "true", DEADLINE: "10", "autorollback.io/mode": "rollback"}
    kit.apply(statefulset(ns, on, strategy={"type": "OnDelete"}))
    operator_factory("-n", ns)
    kit.wait_for(lambda: rolled_out(ns, "statefulset", V1), 90, "V1")
    warning = event(ns, "RollbackUnsupported", timeout=30)  # generation 1, as soon as it is seen
    assert warning["type"] == "Warning" and "OnDelete" in warning["message"]
    kit.kubectl("-n", ns, "patch", "statefulset/web", "--type=strategic", "-p", json.dumps(BREAK))
    kit.wait_for(lambda: kit.reasons(ns, "web").count("RollbackUnsupported") == 2, 30, "the Warning for generation 2")
    kit.kubectl("-n", ns, "delete", "pod", "web-1", "--wait=false")  # by hand, as OnDelete means: a broken pod
    time.sleep(20)  # twice the deadline
    sts = get(ns, "statefulset")
    assert kit.image_of(sts) == V2 and sts["metadata"]["generation"] == 2
    assert kit.reasons(ns, "web") == ["RollbackUnsupported"] * 2  # once per generation, nothing else


@pytest.mark.slow
def test_a_statefulset_stopped_at_its_partition_is_complete_and_a_pod_lost_since_is_no_failure(
    namespace: str, operator_factory
) -> None:
    ns = namespace
    on = {ENABLED: "true", DEADLINE: "10", "autorollback.io/mode": "rollback"}
    kit.apply(statefulset(ns, on, replicas=3, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))
    operator_factory("-n", ns)
    kit.wait_for(lambda: rolled_out(ns, "statefulset", V1), 90, "V1")
    kit.kubectl("-n", ns, "patch", "statefulset/web", "--type=strategic", "-p", json.dumps(GOOD_V2))

    def partitioned() -> dict[str, Any] | None:
        s = get(ns, "statefulset")["status"]
        done = s.get("observedGeneration") == 2 and s.get("updatedReplicas") == 1 and s.get("availableReplicas") == 3
        return s if done and s.get("currentRevision") != s.get("updateRevision") else None

    kit.wait_for(partitioned, 90, "the rollout stopped at its partition (ordinal 2 on V2)")
    kit.wait_for(lambda: marked_healthy(ns, V2), 60, "V2's ControllerRevision marked healthy: the rollout is complete")
    # a pod below the partition stops being Ready: the status reads like a rollout under way again
    kit.kubectl("-n", ns, "label", "pod", "web-0", f"{FAILURE}=not-ready")
    kit.wait_for(lambda: get(ns, "statefulset")["status"].get("availableReplicas", 0) < 3, 60, "web-0 not available")
    time.sleep(25)  # more than twice the deadline
    sts = get(ns, "statefulset")
    assert kit.image_of(sts) == V2 and sts["metadata"]["generation"] == 2, kit.reasons(ns, "web")
    assert not {"RolledBack", "RolloutFailed"} & set(kit.reasons(ns, "web"))


@pytest.mark.slow
def test_a_partition_lowered_after_its_canary_completed_is_a_rollout_judged_anew(
    namespace: str, operator_factory
) -> None:
    ns = namespace
    on = {ENABLED: "true", DEADLINE: "30", "autorollback.io/mode": "rollback"}
    canary = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    kit.apply(statefulset(ns, on, replicas=3, policy="OrderedReady", strategy=canary))
    operator_factory("-n", ns)
    kit.wait_for(lambda: rolled_out(ns, "statefulset", V1), 90, "V1")
    # minReadySeconds (below the deadline, as a Deployment's must be): an OrderedReady rollout waits
    # that long after each updated pod is Ready, time enough to break the next one (the template itself
    # is good: its canary completes)
    slow = {"spec": {"minReadySeconds": 20, **GOOD_V2["spec"]}}
    kit.kubectl("-n", ns, "patch", "statefulset/web", "--type=strategic", "-p", json.dumps(slow))
    kit.wait_for(lambda: marked_healthy(ns, V2), 90, "V2's canary (ordinal 2) complete and marked healthy")
    kit.kubectl(
        "-n",
        ns,
        "patch",
        "statefulset/web",
        "--type=merge",
        "-p",
        '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}',
    )

    def updated_pod() -> str | None:
        pods = kit.kubectl_json("-n", ns, "get", "pods", "-l", "app=web")["items"]
        labels = next((p["metadata"]["labels"] for p in pods if p["metadata"]["name"] == "web-1"), {})
        revision = labels.get("controller-revision-hash")
        return revision if revision == get(ns, "statefulset")["status"].get("updateRevision") else None

    kit.wait_for(updated_pod, 60, "web-1 replaced by a V2 pod")
    kit.kubectl("-n", ns, "label", "pod", "web-1", f"{FAILURE}=not-ready")  # before it is available
    failed = event(ns, "RolloutFailed", timeout=120)
    assert "made no progress for 30s" in failed["message"], failed["message"]
    event(ns, "RolledBack")
    kit.wait_for(lambda: rolled_out(ns, "statefulset", V1), 120, "back on V1 (the stuck pod deleted)")


def checkpoint(ns: str) -> int:
    """The elapsed seconds checkpointed on a ControllerRevision of web (0: none)."""
    for cr in revisions(ns):
        parts = (cr["metadata"].get("annotations") or {}).get(NO_PROGRESS, "").split(" ")
        if len(parts) == 4 and parts[0] == cr["metadata"]["name"] and parts[2].isdigit():
            return int(parts[2])
    return 0


@pytest.mark.slow
def test_a_measured_deadline_of_a_daemonset_resumes_after_a_restart(namespace: str, operator_factory) -> None:
    ns = namespace
    kit.apply(daemonset(ns, {ENABLED: "true", DEADLINE: "45"}))
    first = operator_factory("-n", ns, **keyed(ns))
    kit.wait_for(lambda: rolled_out(ns, "daemonset", V1), 90, "V1")
    kit.kubectl("-n", ns, "patch", "daemonset/web", "--type=strategic", "-p", json.dumps(BREAK))
    kit.wait_for(lambda: checkpoint(ns) >= 15, 90, "a checkpoint of 15 s or more on V2's ControllerRevision")
    first.stop()
    saved = checkpoint(ns)
    assert "RolledBack" not in kit.reasons(ns, "web")
    operator_factory("-n", ns, **keyed(ns))
    started = time.monotonic()
    event(ns, "RolledBack", timeout=60)
    waited = time.monotonic() - started
    assert waited < 45 - 5, f"{waited:.1f}s after the restart: the checkpoint ({saved}s) was not resumed"
    assert waited >= 45 - saved - 3, f"{waited:.1f}s after the restart: sooner than the checkpoint allows"
    kit.wait_for(lambda: rolled_out(ns, "daemonset", V1), 60, "back on V1")


# Every fast signal on each kind: one workload per signal (named after its failure label), all
# broken at once under one operator. "unschedulable" asks more CPU than a node has (the scheduler
# says Unschedulable; a DaemonSet's controller places pods without counting resources).
SIGNALS = {
    "not-ready": "CrashLoopBackOff",  # waiting in CrashLoopBackOff, never Ready
    "crash": "CrashLoopBackOff",  # exit code 1, restarts rising
    "oom": "OOMKilled",
    "image-pull": "ImagePullBackOff",
    "config-error": "CreateContainerConfigError",
    "container-error": "CreateContainerError",
    "unready": "NotReady",
    "unschedulable": "Unschedulable",
}
KINDS = {"daemonset": "DaemonSet", "statefulset": "StatefulSet"}


def broken(failure: str) -> dict[str, Any]:
    """The release that fails with `failure`: V2, and the failure label (or a request no node fits)."""
    container: dict[str, Any] = {"name": "app", "image": V2}
    if failure == "unschedulable":
        container["resources"] = {"requests": {"cpu": "1000"}}
        return {"spec": {"template": {"spec": {"containers": [container]}}}}
    return {"spec": {"template": {"metadata": {"labels": {FAILURE: failure}}, "spec": {"containers": [container]}}}}


def manifest(kind: str, ns: str, annotations: dict[str, str], name: str) -> dict[str, Any]:
    return daemonset(ns, annotations, name) if kind == "daemonset" else statefulset(ns, annotations, name=name)


@pytest.mark.parametrize("kind", ["daemonset", "statefulset"])
def test_each_fast_signal_of_the_update_revisions_pods_rolls_back_before_the_deadline(
    namespace: str, operator_factory, kind: str
) -> None:
    ns = namespace
    on = {ENABLED: "true", "autorollback.io/mode": "rollback", "autorollback.io/fail-grace-seconds": "5"}
    for failure, signal in SIGNALS.items():  # the default deadline: 600 s, the default 3 restarts
        kit.apply(manifest(kind, ns, {**on, "autorollback.io/fail-on": signal}, failure))
    # the old revision's pods fail (crash) while a good release rolls out: they never count (seen red on
    # the StatefulSet counting every pod; a DaemonSet's controller deletes its unavailable old pods at once)
    old = {**on, "autorollback.io/fail-on": "all", "autorollback.io/fail-restarts": "1"}
    bad_v1 = manifest(kind, ns, old, "old")
    bad_v1["spec"]["template"]["metadata"]["labels"][FAILURE] = "crash"
    kit.apply(bad_v1)
    op = operator_factory("-n", ns)
    good = {
        name: kit.wait_for(lambda name=name: rolled_out(ns, kind, V1, name), 90, f"{name} on V1") for name in SIGNALS
    }
    kit.wait_for(lambda: kit.restarted(ns, "old", 1), 60, "the old revision's pods to crash")
    for failure in SIGNALS:
        kit.kubectl("-n", ns, "patch", f"{kind}/{failure}", "--type=strategic", "-p", json.dumps(broken(failure)))
    kit.kubectl("-n", ns, "patch", f"{kind}/old", "--type=json", "-p", json.dumps(
        [{"op": "remove", "path": f"/spec/template/metadata/labels/{FAILURE.replace('/', '~1')}"},
         {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": V2}]
    ))  # fmt: skip
    for failure, signal in SIGNALS.items():
        rolled = kit.wait_for(lambda f=failure: kit.event(ns, f, "RolledBack"), 90, f"{failure} rolled back")
        assert rolled["message"].endswith(signal) or signal in rolled["message"], rolled["message"]
        assert rolled["involvedObject"]["kind"] == KINDS[kind]
        back = kit.wait_for(lambda f=failure: rolled_out(ns, kind, V1, f), 120, f"{failure} back on V1")
        assert back["spec"]["template"] == good[failure]["spec"]["template"], failure  # the good template, whole
    kit.wait_for(lambda: rolled_out(ns, kind, V2, "old"), 120, "the good release of old, rolled out")
    time.sleep(2)  # the broken pods keep failing while they go: nothing more happens
    for failure, signal in SIGNALS.items():
        assert sorted(kit.reasons(ns, failure)) == ["RolledBack", "RolloutFailed"], (failure, kit.reasons(ns, failure))
        assert signal in kit.event(ns, failure, "RolloutFailed")["message"]
        rollbacks = op.metric(
            "autorollback_rollbacks_total",
            kind=KINDS[kind],
            namespace=ns,
            name=failure,
            result="success",
            reason=signal,
        )
        assert rollbacks == 1, failure
    assert kit.reasons(ns, "old") == []
