"""Fast failure signals: which pods count, thresholds, grace periods, and the failure they stand for."""
import datetime as dt

from autorollback import annotations, decision
from autorollback.signals import core
from factories import deployment, pod_hash, replicaset, rs_name

NOW = dt.datetime(2026, 11, 26, 10, 0, 30, tzinfo=dt.timezone.utc)
STARTED = "2026-11-26T10:00:00Z"  # 30 s before NOW


def settings(fail_on: str = "all", **more: str) -> annotations.FailFast:
    config = annotations.parse({"autorollback.io/fail-on": fail_on, **more})
    assert not config.problems
    return config.fail_fast


def pod(image: str = "app:2.0.0", restarts: int = 0, waiting: str | None = None, last: str | None = None,
        phase: str = "Running", conditions: list | None = None, **meta) -> dict:
    state = {"waiting": {"reason": waiting, "message": "because"}} if waiting else {"running": {"startedAt": STARTED}}
    cs = {"name": "app", "restartCount": restarts, "state": state}
    if last:
        cs["lastState"] = {"terminated": {"reason": last, "exitCode": 137 if last == "OOMKilled" else 1,
                                          "message": "line one\nline two"}}
    return {"metadata": {"name": f"web-{pod_hash(image)}-x", "creationTimestamp": STARTED,
                         "labels": {"app": "web", "pod-template-hash": pod_hash(image)}, **meta},
            "status": {"phase": phase, "startTime": STARTED, "containerStatuses": [cs],
                       "conditions": conditions or []}}


def judge(pods: list, fail_fast=None, d=None, replicasets=None, now=NOW) -> core.Verdict:
    d = d or deployment("app:2.0.0")
    replicasets = replicasets or [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0", created=STARTED)]
    return core.judge(fail_fast or settings(), d, replicasets, pods, now)


def test_parsing_the_annotations() -> None:
    assert settings("crashloopbackoff, ImagePullBackOff").signals == {"CrashLoopBackOff", "ImagePullBackOff"}
    assert settings("ALL").signals == set(annotations.SIGNALS)
    c = annotations.parse({"autorollback.io/fail-on": "CrashLoop", "autorollback.io/fail-restarts": "0",
                           "autorollback.io/fail-grace-seconds": "inf"})
    assert c.fail_fast == annotations.FailFast() and len(c.problems) == 3  # nothing used, defaults kept, all told
    assert all("accepted values are" in p.message() for p in c.problems)
    assert annotations.parse({"autorollback.io/fail-grace-seconds": "45s"}).fail_fast.grace == 45


def test_a_crash_loop_of_the_new_pods_fails_the_rollout_once_per_replicaset() -> None:
    v = judge([pod(restarts=3, last="Error")])
    assert v.failure.reason == "CrashLoopBackOff" and v.failure.replicaset == rs_name("app:2.0.0")
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
    assert not core.watched(d, settings())
    assert judge([pod(restarts=9, last="Error")], d=d).failure is None
    assert core.watched(deployment("app:2.0.0"), settings())
    assert not core.watched(deployment("app:2.0.0"), annotations.FailFast())


def test_each_signal() -> None:
    cases = {
        "OOMKilled": pod(restarts=3, last="OOMKilled"),
        "ImagePullBackOff": pod(waiting="ImagePullBackOff", phase="Pending"),
        "CreateContainerConfigError": pod(waiting="CreateContainerConfigError", phase="Pending"),
        "CreateContainerError": pod(waiting="CreateContainerError", phase="Pending"),
        "Unschedulable": pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                                           "reason": "Unschedulable", "lastTransitionTime": STARTED}]),
        "NotReady": pod(conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": STARTED}]),
    }
    for signal, p in cases.items():
        assert judge([p], settings(signal)).failure.reason == signal, signal
        if signal != "OOMKilled":  # counted in restarts, not time
            assert judge([p], settings(signal), now=NOW - dt.timedelta(seconds=5)).failure is None, signal  # in grace
    rs = replicaset(2, "app:2.0.0", created=STARTED)
    rs["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                   "lastTransitionTime": STARTED, "message": 'pods "x" is forbidden: exceeded quota'}]
    v = judge([], settings("FailedCreate"), replicasets=[replicaset(1, "app:1.0.0"), rs])
    assert v.failure.reason == "FailedCreate" and "exceeded quota" in v.failure.message
    rs["status"]["conditions"][0]["reason"] = "FailedDelete"  # the controller's trouble deleting: not a failed release
    assert judge([], settings("FailedCreate"), replicasets=[replicaset(1, "app:1.0.0"), rs]).failure is None


def test_a_fast_failure_goes_through_the_same_decision() -> None:
    replicasets = [replicaset(1, "app:1.0.0", available=3), replicaset(2, "app:2.0.0", created=STARTED)]
    d = deployment("app:2.0.0")
    signal = judge([pod(restarts=3, last="Error")]).failure
    decided = decision.decide(d, replicasets, annotations.parse(d["metadata"]["annotations"]), "2026-11-26T10:00:31Z",
                              signal=signal)
    assert decided.result == decision.SUCCESS and decided.reason == "CrashLoopBackOff"
    assert decided.target.number == 1 and decided.patch


def test_what_a_slow_or_settled_rollout_looks_like_never_triggers() -> None:
    paused = deployment("app:2.0.0", paused=True)
    assert core.watched(paused, settings()) is False
    assert judge([pod(restarts=9, last="Error")], d=paused).failure is None
    unseen = deployment("app:2.0.0", generation=3)
    unseen["status"]["observedGeneration"] = 2  # an HPA scaled it a moment ago: keep what was decided
    assert core.watched(unseen, settings()) is None and judge([pod(restarts=9, last="Error")], d=unseen).failure is None
    ready_again = pod(restarts=9, last="Error")
    ready_again["status"]["containerStatuses"][0]["ready"] = True  # old restarts of a container that is fine now
    assert judge([ready_again]).failure is None
    starting = pod(conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": STARTED}])
    starting["status"]["containerStatuses"][0]["started"] = False  # its startup probe is still running
    assert judge([starting], settings("NotReady")).failure is None
    preempting = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                   "lastTransitionTime": STARTED}])
    preempting["status"]["nominatedNodeName"] = "node-1"
    assert judge([preempting], settings("Unschedulable")).failure is None
    pulled_late = pod(waiting="ErrImagePull", phase="Pending", conditions=[
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-26T10:00:20Z"}])
    assert judge([pulled_late], settings("ImagePullBackOff")).recheck_in > 15  # the grace counts from scheduling
    timed_out = deployment("app:2.0.0", failed=True)  # the deadline path has it
    assert judge([pod(restarts=9, last="Error")], d=timed_out).failure is None


def test_a_reapplied_template_is_a_new_failure() -> None:
    first = judge([pod(restarts=3, last="Error")]).failure
    again = pod(restarts=3, last="Error")
    again["metadata"]["creationTimestamp"] = "2026-11-26T10:00:20Z"  # new pods: a new rollout onto it
    assert judge([again]).failure.id != first.id
