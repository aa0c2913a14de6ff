"""What the operator remembers stays bounded by the live Deployments, whatever they go through."""

import copy
import pickle

import pytest

from autorollback import config as annotations, state
from autorollback.vocab import Job
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import deployment, rs_name

ON = annotations.parse({"autorollback.io/enabled": "true"})


def test_a_failure_asks_for_work_once() -> None:
    memo = state.Remembered("ns", "web", adapter=DEPLOYMENTS)
    d = deployment(failed=True)
    assert memo.observe(d, ON) == {Job.FAILURE, Job.KNOWN_BAD}  # a template seen first: is it known bad?
    memo.failure_done, memo.known_bad_done = state.failure_key(d, ON, DEPLOYMENTS), state.rollout_key(d, DEPLOYMENTS)
    assert memo.observe(d, ON) == set()
    resumed_dry = annotations.parse({"autorollback.io/enabled": "true", "autorollback.io/mode": "dry-run"})
    assert Job.FAILURE in memo.observe(d, resumed_dry)  # the settings that defer a failure changed


def test_completion_is_kept_as_evidence_until_marked() -> None:
    memo = state.Remembered("ns", "web", adapter=DEPLOYMENTS)
    done = deployment(complete=True)
    assert Job.HEALTHY in memo.observe(done, ON)
    memo.observe(deployment("app:3.0.0", revision=3), ON)  # the next release began before a worker got to it
    assert memo.healthy_evidence == (rs_name("app:2.0.0"), done)
    memo.healthy_done, memo.healthy_evidence = state.completion_key(done, DEPLOYMENTS), None
    memo.known_bad_done = state.rollout_key(done, DEPLOYMENTS)
    assert memo.observe(done, ON) == set()
    # the next release completes under the same leftover condition (a lost status write, Recreate)
    next_done = deployment("app:3.0.0", revision=3, complete=True, blamed="app:2.0.0")
    assert Job.HEALTHY in memo.observe(next_done, ON)
    assert memo.healthy_evidence == (rs_name("app:2.0.0"), next_done)
    # rolled back to app:2.0.0 (revision 4), which completes under its own condition of revision 2
    memo.healthy_done, memo.healthy_evidence = state.completion_key(done, DEPLOYMENTS), None
    restored = deployment("app:2.0.0", revision=4, complete=True)
    assert Job.HEALTHY in memo.observe(restored, ON)


def test_scaling_a_thousand_times_keeps_one_small_record() -> None:
    def size(m: state.Remembered) -> int:
        return len(pickle.dumps(m))

    memo = state.Remembered("ns", "web", adapter=DEPLOYMENTS)
    memo.observe(deployment(complete=True, generation=1), ON)
    one = size(memo)
    for generation in range(2, 1002):  # what an HPA does all day
        d = deployment(complete=True, generation=generation)
        d["spec"]["replicas"] = 1 + generation % 7
        memo.observe(d, ON)
    assert size(memo) < one + 100  # the latest state and one piece of evidence, whatever happened before
    assert memo.problems_done == {} and len(memo.series) == 0


def test_invalid_values_are_remembered_as_digests() -> None:
    memo = state.Remembered("ns", "web", adapter=DEPLOYMENTS)
    huge = annotations.parse({"autorollback.io/enabled": "y" * 250_000})
    assert Job.PROBLEMS in memo.observe(deployment(), huge)
    memo.problems_done = {p.key: state.digest(p.value) for p in huge.problems}
    assert memo.observe(deployment(), huge) == set()  # reported once
    assert all(len(v) == 16 for v in memo.problems_done.values())


def test_memory_forgets_deleted_deployments() -> None:
    mem = state.Memory()
    for i in range(100):
        mem.get(f"uid-{i}", "ns", f"web-{i}", DEPLOYMENTS).enabled = True
    assert mem.opted_in("Deployment", "ns") == 100
    for i in range(100):
        mem.forget(f"uid-{i}")
    assert mem.memos == {} and mem.opted_in("Deployment", "ns") == 0


def test_a_left_over_complete_condition_is_a_failure_to_time_and_progress_restarts_the_clock() -> None:
    stuck = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    stuck["status"].update(replicas=4, updatedReplicas=1, availableReplicas=3)
    memo = state.Remembered("ns", "web", adapter=DEPLOYMENTS)
    assert Job.FAILURE in memo.observe(stuck, ON)
    moved = {**stuck, "status": {**stuck["status"], "readyReplicas": 1}}
    assert state.failure_key(moved, ON, DEPLOYMENTS) == state.failure_key(
        stuck, ON, DEPLOYMENTS
    )  # decided once per condition
    assert state.stale_key(moved, DEPLOYMENTS) != state.stale_key(stuck, DEPLOYMENTS)  # but progress restarts the clock
    assert state.failure_key(deployment("app:2.0.0", complete=True), ON, DEPLOYMENTS) == ""


def _event(op, raw: dict, type_: str | None = None) -> None:
    import asyncio

    import kopf

    from autorollback import handlers

    asyncio.run(handlers.deployment_event(type=type_, body=kopf.Body(raw), memo=kopf.Memo(operator=op)))


def _operator():
    from autorollback import handlers, health
    from autorollback.context import Context

    ctx = Context(None, None, b"")  # type: ignore[arg-type]  # the handler makes no API call
    return handlers.Operator(ctx, freshness=health.Freshness(stale_after=60))


def test_a_deployment_that_does_not_opt_in_leaves_no_record() -> None:
    op = _operator()
    for i in range(1000):
        d = deployment(annotations={"example.com/owner": "team"})
        del d["metadata"]["annotations"]["autorollback.io/enabled"]
        d["metadata"]["uid"] = f"uid-{i}"
        _event(op, d)
    assert op.memory.memos == {} and len(op.queue) == 0


def test_an_opted_in_deployment_is_kept_without_managed_fields_and_forgotten_on_opt_out() -> None:
    op = _operator()
    d = deployment(complete=True)
    d["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]
    _event(op, d)
    kept = op.memory.memos[d["metadata"]["uid"]].body
    assert "managedFields" not in kept["metadata"] and kept["spec"] == d["spec"]
    assert kept["metadata"]["resourceVersion"] == "42"  # what a write's precondition needs stays
    assert "managedFields" in d["metadata"]  # a copy: what kopf delivered is left alone
    out = copy.deepcopy(d)
    del out["metadata"]["annotations"]["autorollback.io/enabled"]  # the latest state no longer opts in
    _event(op, out)
    assert op.memory.memos == {}


def test_the_deployment_keys_are_unchanged_by_the_workload_seam() -> None:
    """failure_key and stale_key are compared with values remembered (Remembered.failure_done, the Clocks'
    stale keys) and digested into checkpoints: a Deployment's must stay byte for byte what they were."""
    dry = annotations.parse({"autorollback.io/enabled": "true", "autorollback.io/mode": "dry-run"})
    stuck = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    stuck["status"].update(replicas=4, updatedReplicas=1, availableReplicas=3)
    paused = deployment(failed=True)
    paused["spec"]["paused"] = True
    failed_at, template = "web-da710bc2 2026-11-26T10:00:00Z", "template=8f03eb36d28111c0"
    left_over = "web-9dd17112 2026-11-26T10:00:00Z NewReplicaSetAvailable"
    cases = [
        (deployment(failed=True), f"{failed_at}|{template}|paused=False", "progress=(1, 3, 0, 0)"),
        (stuck, f"{left_over}|{template}|paused=False", "progress=(1, 4, 0, 3)"),
        (paused, f"{failed_at}|{template}|paused=True", "progress=(1, 3, 0, 0)"),
        (deployment("app:2.0.0", complete=True), "", "progress=(3, 3, 0, 3)"),
        (deployment("app:3.0.0", revision=3), "", "progress=(1, 3, 0, 0)"),
    ]
    for d, failure, progress in cases:
        shown = failure.rsplit("|paused=", 1)[0]
        assert state.failure_key(d, ON, DEPLOYMENTS) == (f"{failure}|dry_run=False|enabled=True" if failure else "")
        assert state.failure_key(d, dry, DEPLOYMENTS) == (f"{failure}|dry_run=True|enabled=True" if failure else "")
        assert state.stale_key(d, DEPLOYMENTS) == f"{shown}|{progress}"


def test_a_pass_updates_only_what_it_did() -> None:
    memo = state.Remembered("ns", "web", adapter=DEPLOYMENTS, failure_done="f", known_bad_done="k", history_done=3)
    evidence = ("web-1", deployment())
    memo.healthy_evidence = evidence
    state.RememberedUpdate(failure_done="", fast_done=(2, "x"), healthy_evidence=("web-1", deployment())).apply(memo)
    assert (memo.failure_done, memo.fast_done, memo.known_bad_done, memo.history_done) == ("", (2, "x"), "k", 3)
    assert memo.healthy_evidence is evidence  # newer evidence came meanwhile: kept
    state.RememberedUpdate(healthy_evidence=evidence).apply(memo)
    assert memo.healthy_evidence is None


def test_a_misspelt_update_is_an_error() -> None:
    with pytest.raises(AttributeError):
        state.RememberedUpdate().failure_dnoe = "f"  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        state.RememberedUpdate(failure_dnoe="f")  # type: ignore[call-arg]


def test_statefulsets_and_daemonsets_feed_the_same_memory_with_their_adapter() -> None:
    import asyncio

    import kopf

    from autorollback import handlers
    from autorollback.workloads.daemonset import DAEMONSETS
    from autorollback.workloads.statefulset import STATEFULSETS

    from factories import daemonset, statefulset

    op = _operator()
    sts, ds = statefulset(), daemonset()
    for obj, handler in ((sts, handlers.statefulset_event), (ds, handlers.daemonset_event)):
        raw = {k: v for k, v in obj.items() if k != "kind"}  # the kind comes from the watch, not the body
        asyncio.run(handler(type=None, body=kopf.Body(raw), memo=kopf.Memo(operator=op)))
    kept_sts, kept_ds = op.memory.memos[sts["metadata"]["uid"]], op.memory.memos[ds["metadata"]["uid"]]
    assert kept_sts.adapter is STATEFULSETS and kept_sts.body["kind"] == "StatefulSet"  # Events name the kind
    assert kept_ds.adapter is DAEMONSETS and kept_ds.body["kind"] == "DaemonSet"
    assert op.memory.opted_in("StatefulSet", "ns") == 1 and op.memory.opted_in("DaemonSet", "ns") == 1
    op.forget_unlisted({sts["metadata"]["uid"]: "1"})  # the health re-list lists every watched kind
    assert list(op.memory.memos) == [sts["metadata"]["uid"]]
    asyncio.run(handlers.statefulset_event(type="DELETED", body=kopf.Body(sts), memo=kopf.Memo(operator=op)))
    assert op.memory.memos == {}
