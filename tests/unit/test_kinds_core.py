"""The kind-neutral core on StatefulSets and DaemonSets: what each kind's defaults and warnings are,
and the guards that keep a completed rollout of these kinds (whose controllers report no failure and
no lasting completion) from being taken for a failed one."""

import copy

import pytest

from autorollback import config as annotations, decision, ledger, state, times
from autorollback.signals import core as signals
from autorollback.signals.base import Facts, Judged
from autorollback.vocab import Job, Reason, Result
from autorollback.workloads.base import Failure, history_object
from autorollback.workloads.daemonset import DAEMONSETS
from autorollback.workloads.deployment import DEPLOYMENTS
from autorollback.workloads.statefulset import STATEFULSETS

from factories import (
    daemonset,
    deployment,
    ds_hash,
    ds_pod,
    ds_revision,
    replicaset,
    statefulset,
    sts_name,
    sts_pod,
    sts_revision,
)

NOW = "2026-11-26T10:05:00Z"
ENABLED = {"autorollback.io/enabled": "true"}
ROLLBACK = {"autorollback.io/mode": "rollback"}


def test_a_statefulset_is_dry_run_unless_it_says_rollback() -> None:
    assert annotations.parse(ENABLED, "StatefulSet").dry_run
    assert not annotations.parse({**ENABLED, "autorollback.io/mode": "rollback"}, "StatefulSet").dry_run
    assert annotations.parse({**ENABLED, "autorollback.io/mode": "dry-run"}, "StatefulSet").dry_run
    assert not annotations.parse(ENABLED, "DaemonSet").dry_run and not annotations.parse(ENABLED).dry_run


def test_the_progress_deadline_annotation_is_checked_for_the_kinds_whose_deadline_is_measured() -> None:
    bad = {**ENABLED, "autorollback.io/progress-deadline-seconds": "ten"}
    for kind in ("StatefulSet", "DaemonSet"):
        (problem,) = annotations.parse(bad, kind).problems
        assert problem.key == annotations.PROGRESS_DEADLINE and "the default (600) is used" in problem.message()
        assert annotations.parse({**bad, annotations.PROGRESS_DEADLINE: "10"}, kind).problems == ()
    assert annotations.parse(bad).problems == ()  # a Deployment's deadline is its spec's


def measured(workload, history, adapter, seconds=100_000.0, config=None):
    config = config or annotations.parse(workload["metadata"]["annotations"], adapter.kind)
    m = decision.Measured(seconds, "2026-11-26T09:55:00Z")
    return decision.decide(workload, history, config, NOW, m, workload=adapter)


def test_a_daemonset_whose_rollout_completed_in_this_revision_is_never_rolled_back_for_a_node_losing_its_pod() -> None:
    lost = daemonset("agent:2.0.0", desired=2, updated=2, available=1)  # a node's pod not available since
    assert DAEMONSETS.unfinished(lost) == ""  # every node runs the updated pod: no rollout is owed
    healthy = [ds_revision(1, "agent:1.0.0"), ds_revision(2, "agent:2.0.0", healthy_at="revision 2 generation 2")]
    unproven = [ds_revision(1, "agent:1.0.0"), ds_revision(2, "agent:2.0.0")]
    for history in (healthy, unproven):  # never rolled back, even never seen complete (opted in at rest)
        d = measured(lost, history, DAEMONSETS)
        assert (d.result, d.reason, d.undo) == (Result.NOTHING, Reason.NO_FAILURE, None)
    # a node added while the revision was healthy owes it the pod: healthy in this revision, no failure
    added = daemonset("agent:2.0.0", desired=3, updated=2, available=2)
    assert DAEMONSETS.unfinished(added)
    d = measured(added, healthy, DAEMONSETS)
    assert (d.result, d.reason, d.undo) == (Result.NOTHING, Reason.NO_FAILURE, None)
    earlier = [ds_revision(1, "agent:1.0.0"), ds_revision(3, "agent:2.0.0", healthy_at="revision 2 generation 2")]
    assert measured(added, earlier, DAEMONSETS).result == Result.SUCCESS  # healthy in an earlier rollout only


def test_a_statefulset_stopped_at_its_partition_that_completed_is_not_failing() -> None:
    sts = statefulset("app:2.0.0", partition=2, updated=1, ready=2, annotations={"autorollback.io/mode": "rollback"})
    assert STATEFULSETS.unfinished(sts)  # a pod below the partition is not Ready: reads like under way
    healthy = [sts_revision(1, "app:1.0.0"), sts_revision(2, "app:2.0.0", healthy_at="revision 2 generation 4")]
    d = measured(sts, healthy, STATEFULSETS)
    assert (d.result, d.reason) == (Result.NOTHING, Reason.NO_FAILURE)
    assert measured(sts, [sts_revision(1, "app:1.0.0"), sts_revision(2, "app:2.0.0")], STATEFULSETS).result == (
        Result.SUCCESS
    )


CANARY = [sts_revision(1, "app:1.0.0"), sts_revision(2, "app:2.0.0", healthy_at="revision 2 generation 4 partition 2")]


def test_a_statefulset_whose_partition_was_lowered_since_its_canary_completed_is_judged_anew() -> None:
    # ordinal 2 completed on V2 at partition 2; the partition lowered to 0 since: ordinal 1 is stuck on
    # V2, not Ready. The completion covered ordinal 2 only
    lowered = statefulset("app:2.0.0", partition=0, updated=2, ready=2, generation=5, annotations=ROLLBACK)
    assert STATEFULSETS.unfinished(lowered)
    d = measured(lowered, CANARY, STATEFULSETS)
    assert (d.result, d.failing.name, d.target.name) == (Result.SUCCESS, sts_name("app:2.0.0"), sts_name("app:1.0.0"))
    # a pod lost at the partition seen complete is no failure, whatever else changed in the spec since
    # (a scale, any field: generation 9); nor once every pod was on V2 (the controller moved
    # currentRevision): the completion then covered them all
    for generation in (4, 9):
        held = statefulset("app:2.0.0", partition=2, updated=1, ready=2, generation=generation, annotations=ROLLBACK)
        assert measured(held, CANARY, STATEFULSETS).reason == Reason.NO_FAILURE
    scaled = statefulset("app:2.0.0", partition=2, replicas=4, updated=2, ready=3, generation=5, annotations=ROLLBACK)
    assert measured(scaled, CANARY, STATEFULSETS).reason == Reason.NO_FAILURE
    whole = statefulset("app:2.0.0", current="app:2.0.0", partition=0, updated=3, ready=2, generation=5)
    assert measured(whole, CANARY, STATEFULSETS).reason == Reason.NO_FAILURE


def test_each_step_of_a_canary_completed_is_marked_with_its_partition() -> None:
    # partition 2 -> 1: ordinal 1 on V2 too, all Ready: complete at partition 1, and the mark of
    # partition 2 is rewritten (else a pod lost below partition 1 later would read as a failed rollout)
    step = statefulset("app:2.0.0", partition=1, updated=2, ready=3, generation=5, annotations=ROLLBACK)
    assert STATEFULSETS.completed(step)
    mark = decision.healthy_mark(step, CANARY[1], STATEFULSETS)
    assert mark == {"autorollback.io/healthy-at": f"{sts_name('app:2.0.0')} revision 2 generation 5 partition 1"}
    marked = [CANARY[0], sts_revision(2, "app:2.0.0", healthy_at="revision 2 generation 5 partition 1")]
    assert decision.healthy_mark(step, marked[1], STATEFULSETS) is None  # covered: nothing to write
    lost = statefulset("app:2.0.0", partition=1, updated=2, ready=2, generation=5, annotations=ROLLBACK)
    assert measured(lost, marked, STATEFULSETS).reason == Reason.NO_FAILURE


def test_a_fast_signal_after_the_partition_was_lowered_counts() -> None:
    ff = annotations.parse({**ENABLED, "autorollback.io/fail-on": "CrashLoopBackOff"}, "StatefulSet").fail_fast
    pods = [crashing(sts_pod(1, "app:2.0.0")), sts_pod(2, "app:2.0.0"), sts_pod(0, "app:1.0.0")]
    for partition, counts in ((0, True), (2, False)):
        sts = statefulset("app:2.0.0", partition=partition, updated=2, ready=2, generation=5, annotations=ROLLBACK)
        v = signals.PodSignals(ff).verdict(Facts(sts, CANARY, pods, times.Clocks(), 0.0, adapter=STATEFULSETS))
        assert (v.failure is not None) == counts, partition


def test_a_daemonset_whose_restored_revision_makes_no_progress_either_is_abandoned() -> None:
    v1, v2 = f"agent-{ds_hash('agent:1.0.0')}", f"agent-{ds_hash('agent:2.0.0')}"
    entry = ledger.Entry(v2, v1, "2026-11-26T10:00:00Z", "2026-11-26T10:00:01Z", "ProgressDeadlineExceeded", 2, 2)
    # restored: V1's revision renumbered 3, its rollout stuck at the first node for the whole deadline
    restored = daemonset(
        "agent:1.0.0", generation=3, template_generation=3, annotations={ledger.KEY: ledger.dump((entry,))}
    )
    history = [ds_revision(3, "agent:1.0.0", healthy_at="revision 1 generation 1"), ds_revision(2, "agent:2.0.0")]
    d = measured(restored, history, DAEMONSETS)
    assert (d.result, d.undo) == (Result.ABANDONED, None), d.message
    assert "restored by autorollback" in d.message


def crashing(pod):
    return {
        **pod,
        "status": {
            "containerStatuses": [
                {
                    "name": "agent",
                    "ready": False,
                    "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-11-26T10:00Z"}},
                }
            ]
        },
    }


def test_a_fast_signal_of_a_revision_healthy_in_this_revision_is_no_failure() -> None:
    ff = annotations.parse({**ENABLED, "autorollback.io/fail-on": "CrashLoopBackOff"}, "DaemonSet").fail_fast
    ds = daemonset("agent:2.0.0", desired=2, updated=1, available=1)  # node-2 still owed the update
    pods = [crashing(ds_pod("node-1", "agent:2.0.0")), ds_pod("node-2", "agent:1.0.0")]
    unproven = [ds_revision(1, "agent:1.0.0"), ds_revision(2, "agent:2.0.0")]
    v = signals.PodSignals(ff).verdict(Facts(ds, unproven, pods, times.Clocks(), 0.0, adapter=DAEMONSETS))
    assert v.failure is not None and v.failure.revision_name == f"agent-{ds_hash('agent:2.0.0')}"
    healthy = [ds_revision(1, "agent:1.0.0"), ds_revision(2, "agent:2.0.0", healthy_at="revision 2 generation 2")]
    v = signals.PodSignals(ff).verdict(Facts(ds, healthy, pods, times.Clocks(), 0.0, adapter=DAEMONSETS))
    assert v.failure is None
    # at rest (every node runs the updated pod), one crashing: no rollout, no signal, marked or not
    rest = daemonset("agent:2.0.0", desired=2, updated=2, available=1)
    both = [crashing(ds_pod("node-1", "agent:2.0.0")), ds_pod("node-2", "agent:2.0.0")]
    assert DAEMONSETS.rollout_in_progress(rest) is False
    v = signals.PodSignals(ff).verdict(Facts(rest, unproven, both, times.Clocks(), 0.0, adapter=DAEMONSETS))
    assert v.failure is None


def test_a_statefulset_in_dry_run_by_default_says_how_to_have_it_rolled_back() -> None:
    sts = statefulset("app:2.0.0")
    history = [sts_revision(1, "app:1.0.0"), sts_revision(2, "app:2.0.0")]
    d = measured(sts, history, STATEFULSETS)
    assert d.result == Result.DRY_RUN and d.undo is not None
    assert f"ControllerRevision {sts_name('app:1.0.0')}'s template" in d.message
    assert "autorollback.io/mode=rollback" in d.message and "migrated its data one way" in d.message
    chosen = copy.deepcopy(sts)
    chosen["metadata"]["annotations"]["autorollback.io/mode"] = "dry-run"
    d = measured(chosen, history, STATEFULSETS)
    assert d.result == Result.DRY_RUN and "autorollback.io/mode=rollback" not in d.message  # its own choice
    chosen["metadata"]["annotations"]["autorollback.io/mode"] = "rollback"
    assert measured(chosen, history, STATEFULSETS).result == Result.SUCCESS
    assert (history_object("Deployment"), history_object("DaemonSet")) == ("ReplicaSet", "ControllerRevision")


@pytest.mark.parametrize(
    ("workload", "adapter"),
    [
        (statefulset("app:2.0.0", strategy="OnDelete", updated=0, ready=3), STATEFULSETS),
        (daemonset("agent:2.0.0", strategy="OnDelete", updated=0, available=2), DAEMONSETS),
    ],
    ids=["StatefulSet", "DaemonSet"],
)
def test_an_on_delete_workload_is_warned_about_once_per_generation(workload, adapter) -> None:
    config = annotations.parse(workload["metadata"]["annotations"], adapter.kind)
    memo = state.Remembered("ns", workload["metadata"]["name"], adapter=adapter)
    assert Job.ON_DELETE in memo.observe(workload, config)
    assert Job.FAILURE not in memo.observe(workload, config)  # nothing rolls out: nothing is timed
    memo.on_delete_done = workload["metadata"]["generation"]
    assert Job.ON_DELETE not in memo.observe(workload, config)
    later = copy.deepcopy(workload)
    later["metadata"]["generation"] += 1
    assert Job.ON_DELETE in memo.observe(later, config)
    off = annotations.parse({"autorollback.io/enabled": "false"}, adapter.kind)
    assert Job.ON_DELETE not in state.Remembered("ns", "x", adapter=adapter).observe(later, off)
    message = decision.on_delete_warning(workload, adapter.kind)
    assert f"the {adapter.kind} controller replaces a pod only when someone deletes it" in message
    rolling = copy.deepcopy(workload)
    rolling["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    assert Job.ON_DELETE not in state.Remembered("ns", "x", adapter=adapter).observe(rolling, config)


def test_an_on_delete_workload_is_never_rolled_back_whatever_says_it_failed() -> None:
    # a metric check's (or any source's) failure on an OnDelete DaemonSet whose pods were all replaced by hand
    ds = daemonset("agent:2.0.0", strategy="OnDelete", updated=2, available=2)
    history = [ds_revision(1, "agent:1.0.0"), ds_revision(2, "agent:2.0.0")]
    failure = Failure(f"agent-{ds_hash('agent:2.0.0')}", "MetricCheckFailed", "error-ratio 0.4 > 0.05", "t", 2)
    config = annotations.parse(ds["metadata"]["annotations"], "DaemonSet")
    d = decision.decide(ds, history, config, NOW, sources=[Judged(failure)], workload=DAEMONSETS)
    assert (d.result, d.reason, d.undo) == (Result.NOTHING, Reason.UNSUPPORTED, None)
    rolling = copy.deepcopy(ds)
    rolling["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    assert decision.decide(rolling, history, config, NOW, sources=[Judged(failure)], workload=DAEMONSETS).undo


def test_each_kind_says_what_its_revisions_pods_carry() -> None:
    rs = replicaset(1, "app:1.0.0")
    assert DEPLOYMENTS.pod_label_value(rs) == rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] != ""
    assert STATEFULSETS.pod_label_value(sts_revision(1, "app:1.0.0")) == sts_name("app:1.0.0")  # the full name
    assert DAEMONSETS.pod_label_value(ds_revision(1, "agent:1.0.0")) == ds_hash("agent:1.0.0")  # the hash alone
    assert not DEPLOYMENTS.on_delete(deployment("app:2.0.0"))


def test_the_pods_are_read_for_a_ready_updated_pod_only_when_the_status_allows_one() -> None:
    # the alerts' record waits for a Ready pod of the update revision, read from its pods (a
    # ControllerRevision counts none): never listed while the status rules it out, which may last
    assert not DAEMONSETS.updated_ready(daemonset("agent:2.0.0", desired=0, updated=0, available=0, ready=0))
    assert DAEMONSETS.updated_ready(daemonset("agent:2.0.0", desired=2, updated=1, available=1))
    staged = statefulset("app:2.0.0", partition=3, updated=0, ready=3)  # the partition holds every pod back
    assert not STATEFULSETS.updated_ready(staged)
    assert not STATEFULSETS.updated_ready(statefulset("app:2.0.0", replicas=0, updated=0, ready=0, created=0))
    assert STATEFULSETS.updated_ready(statefulset("app:2.0.0", partition=2, updated=1, ready=2))
    assert DEPLOYMENTS.updated_ready(deployment())  # a ReplicaSet counts its ready pods: never listed
