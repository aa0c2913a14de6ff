"""Fast failure signals (autorollback.io/fail-on): a release whose new pods are plainly broken is
rolled back long before its progress deadline (600 s here), through the same decision core."""

import json
import time
from typing import Any

import pytest

from . import kit
from .test_rollback import ON, V1, V2, available, wait_event

CAUSE = "kubernetes.io/change-cause"


def release(
    ns: str,
    image: str,
    fail_on: str | None = None,
    failure: str | None = None,
    name: str = "web",
    extra: dict[str, str] | None = None,
    change: Any = None,
    deadline: int = 600,
) -> None:
    annotations = {**ON, **({"autorollback.io/fail-on": fail_on} if fail_on else {}), **(extra or {})}
    m = kit.deployment(name, image=image, failure=failure, annotations=annotations, progress_deadline=deadline)
    m["metadata"]["namespace"] = ns
    if change:
        change(m)
    kit.apply(m)


# Every signal with its DEFAULT threshold (3 restarts, a 30 s grace): the test pods keep the kubelet's
# times (tests/cluster/stages), so a grace runs out as it does on a real node. One item per signal:
# pytest-xdist runs them side by side.
@pytest.mark.parametrize(
    ("failure", "signal", "extra", "says"),
    [
        ("crash", "CrashLoopBackOff", {}, ["restarted 3 times", "exit code 1", "panic: missing DATABASE_URL"]),
        ("oom", "OOMKilled", {}, ["OOMKilled and restarted 3 times"]),
        ("image-pull", "ImagePullBackOff", {}, ["failed to pull image registry.example/web:2.0.0: not found"]),
        ("config-error", "CreateContainerConfigError", {}, ["couldn't find key LOG_LEVEL"]),
        ("container-error", "CreateContainerError", {}, ["/app/app", "stat: no such file or directory"]),
        ("unready", "NotReady", {}, ["running but not Ready"]),
    ],
)
def test_each_pod_signal_rolls_back_before_the_deadline(
    namespace: str, operator_factory, failure: str, signal: str, extra: dict[str, str], says: list[str]
) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    release(ns, V1, fail_on=signal.lower())  # case-insensitive
    available(ns, V1, 1)
    release(ns, V2, fail_on=signal.lower(), failure=failure, extra=extra)
    d = available(ns, V1, 3)
    assert d["metadata"]["annotations"][CAUSE] == (
        f"autorollback: rolled back from revision 2 ({V2}) to revision 1 ({V1}): {signal}"
    )
    failed = wait_event(ns, "RolloutFailed")["message"]
    assert failed.startswith(f"rollout of revision 2 ({V2}) failed: {signal}: pod web-")
    assert all(s in failed for s in says), failed
    time.sleep(2)  # the old pods keep failing while they go: nothing more happens
    assert sorted(kit.reasons(ns, "web")) == ["RolledBack", "RolloutFailed"]
    assert (
        op.metric(
            "autorollback_rollbacks_total", kind="Deployment", namespace=ns, name="web", result="success", reason=signal
        )
        == 1
    )
    assert op.metric("autorollback_pod_watches") == 0  # the restored rollout completed: no pod is watched


def test_unschedulable_with_the_default_grace(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    release(ns, V1, fail_on="Unschedulable")
    available(ns, V1, 1)

    def nowhere(m: dict) -> None:
        m["spec"]["template"]["spec"]["nodeSelector"] = {"autorollback.test/no-such-node": "true"}

    release(ns, V2, fail_on="Unschedulable", change=nowhere)
    assert "didn't match Pod's node affinity/selector" in wait_event(ns, "RolloutFailed", timeout=120)["message"]
    d = available(ns, V1, 3)
    assert d["metadata"]["annotations"][CAUSE].endswith(": Unschedulable")


def test_failed_create_with_the_default_grace(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    release(ns, V1, fail_on="FailedCreate", name="quota")
    available(ns, V1, 1, name="quota")
    # A real admission denial of the new pods: the ReplicaSet's ReplicaFailure=True, FailedCreate.
    kit.kubectl("-n", ns, "create", "quota", "pods", "--hard=pods=3")
    release(ns, V2, fail_on="FailedCreate", name="quota")  # the surge pod is one too many
    failed = wait_event(ns, "RolloutFailed", name="quota", timeout=120)["message"]
    assert "FailedCreate: ReplicaSet quota-" in failed and "exceeded quota" in failed
    d = available(ns, V1, 3, name="quota")
    assert d["metadata"]["annotations"][CAUSE].endswith(": FailedCreate")


def test_what_never_triggers(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    # an old ReplicaSet's crashing pods, while a healthy release rolls out
    release(ns, V1, failure="crash", deadline=60)
    kit.wait_for(lambda: kit.get_deployment(ns, "web").get("status", {}).get("replicas") == 3, 60, "v1's pods")
    release(ns, V2, fail_on="all", extra={"autorollback.io/fail-restarts": "1"}, deadline=60)
    available(ns, V2, 2)
    # a completed rollout whose pods start crashing
    for pod in kit.kubectl_json("-n", ns, "get", "pods", "-l", "app=web")["items"]:
        kit.kubectl("-n", ns, "label", "pod", pod["metadata"]["name"], "autorollback.test/failure=crash")
    # a Deployment that did not opt in, with fail-on but without autorollback.io/enabled
    m = kit.deployment(
        "bystander", image=V1, failure="crash", progress_deadline=600, annotations={"autorollback.io/fail-on": "all"}
    )
    m["metadata"]["namespace"] = ns
    kit.apply(m)
    before = kit.get_deployment(ns, "bystander")["metadata"]
    kit.wait_for(lambda: kit.restarted(ns, "bystander", 3), 60, "the bystander's pods to crash three times")
    time.sleep(3)
    assert kit.reasons(ns, "web") == [] and kit.reasons(ns, "bystander") == []
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2
    after = kit.get_deployment(ns, "bystander")["metadata"]
    assert after["annotations"] == before["annotations"] and after["generation"] == before["generation"]
    assert op.metric("autorollback_pod_watches") == 0


def test_a_slow_start_within_the_grace_does_not_trigger(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    slow = {"autorollback.io/fail-grace-seconds": "20"}
    release(ns, V1, fail_on="NotReady", extra=slow)
    available(ns, V1, 1)
    release(ns, V2, fail_on="NotReady", extra=slow, failure="unready")
    kit.wait_for(
        lambda: len(kit.kubectl_json("-n", ns, "get", "pods", "-l", "autorollback.test/failure=unready")["items"]) >= 1,
        30,
        "the new pod",
    )
    time.sleep(6)  # not Ready for a while, as a slow application is
    for pod in kit.kubectl_json("-n", ns, "get", "pods", "-l", "autorollback.test/failure=unready")["items"]:
        ready = [
            {"type": t, "status": "True", "lastTransitionTime": pod["metadata"]["creationTimestamp"]}
            for t in ("Ready", "ContainersReady")
        ]
        kit.kubectl(
            "-n",
            ns,
            "patch",
            "pod",
            pod["metadata"]["name"],
            "--subresource=status",
            "--type=strategic",
            "-p",
            json.dumps({"status": {"conditions": ready}}),
        )
    # its readiness probe passes: the next pods come up the same way until the rollout completes
    deadline = time.monotonic() + 90
    while not kit.is_available(ns, "web") or kit.image_of(kit.get_deployment(ns, "web")) != V2:
        assert time.monotonic() < deadline, "the slow release to complete"
        for pod in kit.kubectl_json("-n", ns, "get", "pods", "-l", "autorollback.test/failure=unready")["items"]:
            if not any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])):
                kit.kubectl(
                    "-n",
                    ns,
                    "patch",
                    "pod",
                    pod["metadata"]["name"],
                    "--subresource=status",
                    "--type=strategic",
                    "-p",
                    json.dumps(
                        {
                            "status": {
                                "conditions": [{"type": t, "status": "True"} for t in ("Ready", "ContainersReady")]
                            }
                        }
                    ),
                    check=False,
                )
        time.sleep(1)
    assert kit.reasons(ns, "web") == []


def test_dry_run_plans_a_fast_rollback_once_even_after_the_deadline(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    dry = {"autorollback.io/mode": "dry-run"}
    release(ns, V1, fail_on="CrashLoopBackOff", extra=dry)
    available(ns, V1, 1)
    release(ns, V2, fail_on="CrashLoopBackOff", extra=dry, failure="crash", deadline=15)
    planned = wait_event(ns, "RollbackPlanned")["message"]
    assert "CrashLoopBackOff" in planned and "revision 1" in planned
    # more restarts, then the controller's deadline runs out on the same rollout: still one failure, one plan
    kit.wait_for(
        lambda: (
            (kit.condition(kit.get_deployment(ns, "web"), "Progressing") or {}).get("reason")
            == "ProgressDeadlineExceeded"
        ),
        60,
        "the progress deadline to run out",
    )
    time.sleep(3)
    assert sorted(kit.reasons(ns, "web")) == ["RollbackPlanned", "RolloutFailed"]
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2
    assert op.metric("autorollback_rollbacks_total", kind="Deployment", namespace=ns, name="web", result="dry_run") == 1
