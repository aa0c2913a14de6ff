"""Fast failure signals: which pods count, thresholds, grace periods, and the failure they stand for."""

from autorollback import config as annotations, decision, times
from autorollback.signals import core
from autorollback.signals.base import Judged
from autorollback.signals.deadline import ControllerDeadline
from autorollback.vocab import Result
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import deployment, pod_hash, replicaset, rs_name

STARTED = "2026-11-26T10:00:00Z"  # the kubelet's and the API server's times: identities, never compared with a clock
T0 = 5000.0  # this process's monotonic clock when it first sees the pods


def settings(fail_on: str = "all", **more: str) -> annotations.FailFast:
    config = annotations.parse({"autorollback.io/fail-on": fail_on, **more})
    assert not config.problems
    return config.fail_fast


def pod(
    image: str = "app:2.0.0",
    restarts: int = 0,
    waiting: str | None = None,
    last: str | None = None,
    phase: str = "Running",
    conditions: list | None = None,
    **meta,
) -> dict:
    state = {"waiting": {"reason": waiting, "message": "because"}} if waiting else {"running": {"startedAt": STARTED}}
    cs = {"name": "app", "restartCount": restarts, "state": state}
    if last:
        cs["lastState"] = {
            "terminated": {
                "reason": last,
                "exitCode": 137 if last == "OOMKilled" else 1,
                "message": "line one\nline two",
            }
        }
    return {
        "metadata": {
            "name": f"web-{pod_hash(image)}-x",
            "creationTimestamp": STARTED,
            "labels": {"app": "web", "pod-template-hash": pod_hash(image)},
            **meta,
        },
        "status": {"phase": phase, "startTime": STARTED, "containerStatuses": [cs], "conditions": conditions or []},
    }


def judge(
    pods: list, fail_fast=None, d=None, replicasets=None, lasted: float = 30.0, clocks: times.Clocks | None = None
) -> core.Verdict:
    """The verdict once the pods have looked like this for `lasted` seconds, as this process saw them."""
    d = d or deployment("app:2.0.0")
    replicasets = replicasets or [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0", created=STARTED)]
    clocks = clocks or times.Clocks()
    core.judge(fail_fast or settings(), d, replicasets, pods, clocks, T0, DEPLOYMENTS)
    return core.judge(fail_fast or settings(), d, replicasets, pods, clocks, T0 + lasted, DEPLOYMENTS)


def test_parsing_the_annotations() -> None:
    assert settings("crashloopbackoff, ImagePullBackOff").signals == {"CrashLoopBackOff", "ImagePullBackOff"}
    assert settings("ALL").signals == set(annotations.SIGNALS)
    c = annotations.parse(
        {
            "autorollback.io/fail-on": "CrashLoop",
            "autorollback.io/fail-restarts": "0",
            "autorollback.io/fail-grace-seconds": "inf",
        }
    )
    assert c.fail_fast == annotations.FailFast() and len(c.problems) == 3  # nothing used, defaults kept, all told
    assert all("accepted values are" in p.message() for p in c.problems)
    assert annotations.parse({"autorollback.io/fail-grace-seconds": "45s"}).fail_fast.grace == 45


def test_a_crash_loop_of_the_new_pods_fails_the_rollout_once_per_replicaset() -> None:
    v = judge([pod(restarts=3, last="Error")])
    assert v.failure.reason == "CrashLoopBackOff" and v.failure.revision_name == rs_name("app:2.0.0")
    assert v.failure.updated == STARTED  # the same id whichever pod shows it first
    assert "restarted 3 times" in v.failure.message and "\n" not in v.failure.message
    assert judge([pod(restarts=2, last="Error")]).failure is None
    # sitting in CrashLoopBackOff counts once the grace has run out
    waiting = pod(restarts=1, waiting="CrashLoopBackOff", last="Error")
    assert judge([waiting]).failure.reason == "CrashLoopBackOff"
    pending = judge([waiting], settings(**{"autorollback.io/fail-grace-seconds": "40"}))
    assert pending.failure is None and 9 < pending.recheck_in <= 10


def test_only_listed_signals_and_only_the_new_replicasets_pods_count() -> None:
    assert judge([pod(restarts=5, last="Error")], settings("ImagePullBackOff")).failure is None
    assert judge([pod("app:1.0.0", restarts=9, last="Error")]).failure is None  # an old ReplicaSet's pod
    assert judge([pod(restarts=9, last="Error", deletionTimestamp=STARTED)]).failure is None  # going away
    assert judge([pod(restarts=9, last="Error")], annotations.FailFast()).failure is None  # no fail-on


def test_a_completed_rollout_is_never_reopened_by_its_pods() -> None:
    d = deployment("app:2.0.0", complete=True)
    d["status"]["availableReplicas"] = 0  # its pods crash later: not a rollout failing
    assert not core.watched(d, settings(), DEPLOYMENTS)
    assert judge([pod(restarts=9, last="Error")], d=d).failure is None
    assert core.watched(deployment("app:2.0.0"), settings(), DEPLOYMENTS)
    assert not core.watched(deployment("app:2.0.0"), annotations.FailFast(), DEPLOYMENTS)


def test_each_signal() -> None:
    cases = {
        "OOMKilled": pod(restarts=3, last="OOMKilled"),
        "ImagePullBackOff": pod(waiting="ImagePullBackOff", phase="Pending"),
        "CreateContainerConfigError": pod(waiting="CreateContainerConfigError", phase="Pending"),
        "CreateContainerError": pod(waiting="CreateContainerError", phase="Pending"),
        "Unschedulable": pod(
            phase="Pending",
            conditions=[
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": STARTED}
            ],
        ),
        "NotReady": pod(conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": STARTED}]),
    }
    for signal, p in cases.items():
        assert judge([p], settings(signal)).failure.reason == signal, signal
        if signal != "OOMKilled":  # counted in restarts, not time
            assert judge([p], settings(signal), lasted=25).failure is None, signal  # in grace
    rs = replicaset(2, "app:2.0.0", created=STARTED)
    rs["status"]["conditions"] = [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "lastTransitionTime": STARTED,
            "message": 'pods "x" is forbidden: exceeded quota',
        }
    ]
    v = judge([], settings("FailedCreate"), replicasets=[replicaset(1, "app:1.0.0"), rs])
    assert v.failure.reason == "FailedCreate" and "exceeded quota" in v.failure.message
    rs["status"]["conditions"][0]["reason"] = "FailedDelete"  # the controller's trouble deleting: not a failed release
    assert judge([], settings("FailedCreate"), replicasets=[replicaset(1, "app:1.0.0"), rs]).failure is None


def test_a_fast_failure_goes_through_the_same_decision() -> None:
    replicasets = [replicaset(1, "app:1.0.0", available=3), replicaset(2, "app:2.0.0", created=STARTED)]
    d = deployment("app:2.0.0")
    signal = judge([pod(restarts=3, last="Error")]).failure
    decided = decision.decide(
        d,
        replicasets,
        annotations.parse(d["metadata"]["annotations"]),
        "2026-11-26T10:00:31Z",
        sources=(Judged(signal), ControllerDeadline()),
        workload=DEPLOYMENTS,
    )
    assert decided.result == Result.SUCCESS and decided.reason == "CrashLoopBackOff"
    assert decided.target.number == 1 and decided.undo is not None


def test_what_a_slow_or_settled_rollout_looks_like_never_triggers() -> None:
    paused = deployment("app:2.0.0", paused=True)
    assert core.watched(paused, settings(), DEPLOYMENTS) is False
    assert judge([pod(restarts=9, last="Error")], d=paused).failure is None
    unseen = deployment("app:2.0.0", generation=3)
    unseen["status"]["observedGeneration"] = 2  # an HPA scaled it a moment ago: keep what was decided
    assert (
        core.watched(unseen, settings(), DEPLOYMENTS) is None
        and judge([pod(restarts=9, last="Error")], d=unseen).failure is None
    )
    ready_again = pod(restarts=9, last="Error")
    ready_again["status"]["containerStatuses"][0]["ready"] = True  # old restarts of a container that is fine now
    assert judge([ready_again]).failure is None
    starting = pod(conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": STARTED}])
    starting["status"]["containerStatuses"][0]["started"] = False  # its startup probe is still running
    assert judge([starting], settings("NotReady")).failure is None
    preempting = pod(
        phase="Pending",
        conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": STARTED}
        ],
    )
    preempting["status"]["nominatedNodeName"] = "node-1"
    assert judge([preempting], settings("Unschedulable")).failure is None
    pulled_late = pod(
        waiting="ErrImagePull",
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-26T10:00:20Z"}],
    )
    assert judge([pulled_late], settings("ImagePullBackOff"), lasted=10).recheck_in > 15  # seen 10 s: 20 s to go
    timed_out = deployment("app:2.0.0", failed=True)  # the deadline path has it
    assert judge([pod(restarts=9, last="Error")], d=timed_out).failure is None


def test_a_reapplied_template_is_a_new_failure() -> None:
    first = judge([pod(restarts=3, last="Error")]).failure
    again = pod(restarts=3, last="Error")
    again["metadata"]["creationTimestamp"] = "2026-11-26T10:00:20Z"  # new pods: a new rollout onto it
    assert judge([again]).failure.id != first.id


def test_graces_run_on_this_processs_clock_from_when_it_first_saw_the_state() -> None:
    # The kubelet's times say nothing about how long this process has seen a state: a node or an
    # operator with a wrong clock (years off here) neither shortens nor stretches a grace.
    for stamp in ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z", ""):
        p = pod(conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": stamp}])
        p["status"]["startTime"] = p["metadata"]["creationTimestamp"] = stamp
        clocks = times.Clocks()
        first = judge([p], settings("NotReady"), lasted=0, clocks=clocks)
        assert first.failure is None and first.recheck_in == 30, stamp
        assert judge([p], settings("NotReady"), lasted=29.9, clocks=clocks).failure is None, stamp
        assert judge([p], settings("NotReady"), lasted=30, clocks=clocks).failure.reason == "NotReady", stamp


def test_a_state_that_ends_is_timed_anew() -> None:
    clocks = times.Clocks()
    pulling = pod(waiting="ErrImagePull", phase="Pending")
    assert judge([pulling], settings("ImagePullBackOff"), lasted=20, clocks=clocks).failure is None
    backoff = pod(waiting="ImagePullBackOff", phase="Pending")  # the kubelet alternates: still one state
    assert (
        core.judge(
            settings("ImagePullBackOff"),
            deployment("app:2.0.0"),
            [replicaset(2, "app:2.0.0")],
            [backoff],
            clocks,
            T0 + 30,
            DEPLOYMENTS,
        ).failure.reason
        == "ImagePullBackOff"
    )
    clocks = times.Clocks()
    judge([pulling], settings("ImagePullBackOff"), lasted=20, clocks=clocks)
    core.judge(
        settings("ImagePullBackOff"),
        deployment("app:2.0.0"),
        [replicaset(2, "app:2.0.0")],
        [pod()],
        clocks,
        T0 + 25,
        DEPLOYMENTS,
    )  # pulled and running: that state ended
    again = core.judge(
        settings("ImagePullBackOff"),
        deployment("app:2.0.0"),
        [replicaset(2, "app:2.0.0")],
        [pulling],
        clocks,
        T0 + 31,
        DEPLOYMENTS,
    )
    assert again.failure is None and again.recheck_in == 30
    # a container started again (a new startedAt from the kubelet) is a new NotReady episode
    clocks = times.Clocks()
    unready = pod(conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": STARTED}])
    judge([unready], settings("NotReady"), lasted=20, clocks=clocks)
    unready["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] = "2026-11-26T10:00:25Z"
    restarted = core.judge(
        settings("NotReady"),
        deployment("app:2.0.0"),
        [replicaset(2, "app:2.0.0")],
        [unready],
        clocks,
        T0 + 40,
        DEPLOYMENTS,
    )
    assert restarted.failure is None and restarted.recheck_in == 30
