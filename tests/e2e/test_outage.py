"""The API server goes away in the middle of a rollback. Runs alone: it stops kube-apiserver."""

import json
import signal

import pytest

from . import kit
from .test_rollback import ON, V1, V2, available, count

pytestmark = pytest.mark.serial


def test_a_failure_caught_by_an_api_outage_is_rolled_back_once_the_api_returns(
    namespace: str, operator_factory, tmp_path
) -> None:
    ns = namespace
    hold = tmp_path / "hold"
    hold.touch()
    op = operator_factory(
        "-n", ns, extra=("--watch-stale-seconds", "2"), env={"AUTOROLLBACK_TEST_FAULTS": f"before_patch=pause:{hold}"}
    )
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for((tmp_path / "hold.reached").exists, 90, "the operator to be about to patch")
    health = []

    def during() -> None:
        hold.unlink()  # the patch now meets a stopped API server, and so does every retry for a while
        kit.wait_for(lambda: kit.http_get(op.url("/healthz"))[0] == 503, 20, "/healthz to report the outage")
        health.append(json.loads(kit.http_get(op.url("/healthz"))[1])["message"])

    kit.api_outage(25, during)
    assert "cannot list the workloads" in health[0]
    d = available(ns, V1, 3)
    assert "autorollback: rolled back from revision 2" in d["metadata"]["annotations"]["kubernetes.io/change-cause"]
    kit.wait_for(lambda: kit.http_get(op.url("/healthz"))[0] == 200, 60, "/healthz to recover")
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
    assert op.metric("autorollback_api_errors_total", operation="failure", code="0") >= 1
    assert op.proc.poll() is None
    assert [line["result"] for line in op.lines() if line.get("event") == "rollback decision"] == ["success"]


def test_two_replicas_ride_out_an_outage_and_one_handles_what_failed_meanwhile(
    namespace: str, operator_factory
) -> None:
    from .test_leader import FAST, holder

    ns = namespace
    ops = [
        operator_factory(
            "-n",
            ns,
            extra=(*FAST, "--leader-election-namespace", ns, "--watch-stale-seconds", "2"),
            env={"POD_NAME": name},
        )
        for name in ("replica-a", "replica-b")
    ]
    kit.wait_for(lambda: holder(ns), 30, "a leader")
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)  # its deadline runs out during the outage

    def reports_outage(op: kit.Operator) -> bool:
        if op.proc.poll() is not None:
            return True  # the leader, which could not renew, exits as kube-controller-manager does
        try:
            return kit.http_get(op.url("/healthz"))[0] == 503
        except OSError:
            return op.proc.poll() is not None

    def during() -> None:
        for op in ops:
            kit.wait_for(lambda: reports_outage(op), 20, "/healthz to report the outage (or the leader to exit)")

    kit.api_outage(25, during)
    available(ns, V1, 3)
    exited = [op for op in ops if op.proc.poll() is not None]
    assert len(exited) <= 1  # at most the leader; the standby rides the outage out
    for op in exited:
        assert op.proc.returncode == 1
        assert [line for line in op.lines() if line.get("event", "").startswith("leader election lost")]
    assert count(ns, "RolledBack") == 1
    decisions = [line for op in ops for line in op.lines() if line.get("event") == "rollback decision"]
    assert [line["result"] for line in decisions] == ["success"]  # handled once, by one of them
    assert sum(op.metric("autorollback_leader") for op in ops if op.proc.poll() is None) == 1


def test_a_failure_while_the_watch_is_gone_is_found_when_the_expired_watch_lists_again(
    namespace: str, operator_factory
) -> None:
    # The operator is frozen while kube-apiserver restarts and the release fails. When it wakes, its
    # watch resumes from a resourceVersion older than the new API server's watch cache: 410 Gone,
    # and the failure is only in the list that follows.
    ns = namespace
    op = operator_factory("-n", ns, extra=("--log-level", "DEBUG"))
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    op.proc.send_signal(signal.SIGSTOP)
    try:
        kit.api_outage(3)
        kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
        kit.wait_for(
            lambda: (
                kit.condition(kit.get_deployment(ns, "web"), "Progressing").get("reason") == "ProgressDeadlineExceeded"
            ),
            90,
            "the release to fail",
        )
    finally:
        op.proc.send_signal(signal.SIGCONT)
    available(ns, V1, 3)
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
    # kopf resumes the watch from its last resourceVersion. Whether the new API server answers 410 Gone
    # (and kopf lists again) depends on its watch cache (the revision it starts at, its initialization):
    # the API server's race, not the operator's; a CI run saw the watch resume without one. Either way
    # the failure must be found.
