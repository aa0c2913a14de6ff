"""The local control plane behaves like a real cluster: nodes, failure stages, rollouts, undo."""

import pytest

from . import kit


def test_nodes_are_ready() -> None:
    nodes = kit.kubectl_json("get", "nodes")["items"]
    ready = [n for n in nodes if kit.condition(n, "Ready").get("status") == "True"]
    assert len(ready) >= 2, [n["metadata"]["name"] for n in nodes]


def _container(pod: dict) -> dict:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return statuses[0]


def _waiting(pod: dict) -> str:
    return _container(pod).get("state", {}).get("waiting", {}).get("reason", "")


def _restarts(pod: dict) -> int:
    return _container(pod).get("restartCount", 0)


def _terminated(pod: dict) -> dict:
    return _container(pod).get("lastState", {}).get("terminated", {})


FAILURES = {
    # label value -> (what the pod status must show, how to read it)
    "not-ready": lambda p: _waiting(p) == "CrashLoopBackOff" and _restarts(p) >= 2,
    "image-pull": lambda p: (
        _waiting(p) in ("ErrImagePull", "ImagePullBackOff") and p["status"].get("phase") == "Pending"
    ),
    "crash": lambda p: _terminated(p).get("exitCode") == 1 and _restarts(p) >= 2,
    "oom": lambda p: _terminated(p).get("reason") == "OOMKilled" and _restarts(p) >= 2,
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failure_label_gives_promised_pod_status(namespace: str, failure: str) -> None:
    kit.apply(
        {**kit.deployment("app", replicas=1, failure=failure), "metadata": {"name": "app", "namespace": namespace}}
    )

    def pod_shows_failure() -> dict | None:
        pods = kit.kubectl_json("-n", namespace, "get", "pods", "-l", "app=app")["items"]
        return next((p for p in pods if FAILURES[failure](p)), None)

    pod = kit.wait_for(pod_shows_failure, 60, f"a pod showing the {failure} failure")
    assert not _container(pod).get("ready")
    assert kit.condition(pod, "Ready").get("status") == "False"
    if failure == "image-pull":  # both reasons show up in turn, like a real kubelet's back-off
        seen = {_waiting(pod)}
        kit.wait_for(
            lambda: seen.add(_waiting(pod_shows_failure() or {})) or len(seen - {""}) == 2,
            60,
            "ErrImagePull and ImagePullBackOff in turn",
        )


def test_rollout_fails_and_kubectl_undo_restores(namespace: str) -> None:
    ns = namespace
    good = kit.deployment("web", image="registry.example/web:1.0.0", progress_deadline=10)
    good["metadata"]["namespace"] = ns
    kit.apply(good)
    d = kit.wait_for(lambda: kit.is_available(ns, "web"), 90, "revision 1 to become available")
    assert kit.revision(d) == 1 and d["status"]["availableReplicas"] == 3

    bad = kit.deployment("web", image="registry.example/web:2.0.0", failure="not-ready", progress_deadline=10)
    bad["metadata"]["namespace"] = ns
    kit.apply(bad)
    d = kit.wait_for(lambda: kit.is_failed(ns, "web"), 90, "ProgressDeadlineExceeded")
    assert kit.condition(d, "Progressing")["status"] == "False"
    assert kit.revision(d) == 2
    by_revision = {kit.revision(rs): rs for rs in kit.replicasets(ns, "web")}
    assert set(by_revision) == {1, 2}
    rev1_template = by_revision[1]["spec"]["template"]

    kit.kubectl("-n", ns, "rollout", "undo", "deployment/web")
    d = kit.wait_for(lambda: kit.is_available(ns, "web"), 90, "the undo to become available")
    assert kit.revision(d) == 3
    assert d["spec"]["template"]["spec"] == rev1_template["spec"]
    labels = dict(rev1_template["metadata"]["labels"])
    labels.pop("pod-template-hash")
    assert d["spec"]["template"]["metadata"]["labels"] == labels
    reused = {rs["metadata"]["name"]: kit.revision(rs) for rs in kit.replicasets(ns, "web")}
    assert reused[by_revision[1]["metadata"]["name"]] == 3  # the revision-1 ReplicaSet was reused
