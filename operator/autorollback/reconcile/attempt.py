"""A rollback attempt: decide on the failure (the Progressing condition's, or a fast signal's), roll
back, and on a conflict read again and decide again, until a decision counts.

The watch's state may be seconds old when a busy operator gets to it, older than the ReplicaSets
listed now (a rollback, or a person's undo, since). So a decision counts only if the Deployment did
not change from the state it was made on until after the list: the rollback PATCH's resourceVersion
precondition proves that for a rollback, a GET for any other outcome before it is told."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autorollback import decision, faults, kube, retry, state, telemetry, times, vocab
from autorollback.checks.cap import Cap
from autorollback.config import parse as parse_config
from autorollback.decision import Decision, Measured
from autorollback.reconcile import measure, reads, report
from autorollback.reconcile.work import PassResult, Work, now
from autorollback.signals.base import Judged
from autorollback.signals.deadline import ControllerDeadline
from autorollback.vocab import Reason
from autorollback.workloads.base import Failure

CONFLICT_ATTEMPTS = 5  # re-reads and re-decisions after a 409

Signal = Callable[[dict[str, Any], list[dict[str, Any]]], Failure | None]  # a fast signal's failure on a state


@dataclass(frozen=True)
class Snapshot:
    """The Deployment and its ReplicaSets, as a decision is made on them."""

    deployment: dict[str, Any]
    replicasets: list[dict[str, Any]]
    fresh: bool = False  # read again after an earlier decision (not the watch's state): nothing to confirm


@dataclass(frozen=True)
class Outcome:
    """The decision that counts, carried out if it is a rollback, and what it was decided on."""

    decision: Decision
    snapshot: Snapshot
    measured: Measured | None  # the measured deadline (None: a fast signal's decision)
    starting: measure.Start | None  # the measurement to start should the state be stale


def rollback(work: Work, result: PassResult, signal: Signal | None, cap: Cap | None = None) -> Outcome | None:
    """The outcome of deciding on the failure, the Progressing condition's (signal None) or the fast
    signal's. None: nothing to decide about (the Deployment is gone, or there is no fast signal)."""
    faults.point("before_read")
    snapshot = Snapshot(work.deployment, work.api.history(work.deployment))
    for _ in range(CONFLICT_ATTEMPTS):
        step = _decide(work, result, snapshot, signal, cap)
        if not isinstance(step, Snapshot):
            return step
        snapshot = step
    raise kube.ApiError(
        0,
        "Conflict",
        f"the {work.workload.kind} kept changing: decided {CONFLICT_ATTEMPTS} times, each time out of date",
    )


def _decide(
    work: Work, result: PassResult, snapshot: Snapshot, signal: Signal | None, cap: Cap | None = None
) -> Outcome | Snapshot | None:
    """One decision, carried out if it is a rollback: its Outcome if it counts, or a newer Snapshot to
    decide on again, or None (nothing to decide about). With `cap` (metric-triggered rollbacks), a
    rollback takes one of its slots, kept only if the patch is accepted; none free: the rollback it
    would have been is reported instead (decision.decide's `capped`)."""
    deployment, replicasets = snapshot.deployment, snapshot.replicasets
    config = parse_config(deployment["metadata"].get("annotations"), work.workload.kind)
    fast = signal(deployment, replicasets) if signal else None
    if signal and fast is None:
        return None  # no fast signal (yet): the deadline path decides about the condition
    measured, starting = (None, None) if signal else measure.elapsed(work, deployment, replicasets)
    # the fast signal, judged here on its clocks, stands for the controller's condition
    sources = (Judged(fast), ControllerDeadline()) if fast is not None else (ControllerDeadline(),)

    def decided(capped: str = "") -> Decision:
        return decision.decide(
            deployment,
            replicasets,
            config,
            now(),
            measured=measured,
            sources=sources,
            workload=work.workload,
            capped=capped,
        )

    d = decided()
    slot = None
    if cap is not None and d.result == vocab.Result.SUCCESS:
        slot = cap.take(times.monotonic())
        if slot is None:
            d = decided(cap.describe())
    if d.result == vocab.Result.SUCCESS and d.undo is not None:
        faults.point("before_patch")
        try:
            work.api.undo(work.namespace, work.name, d.undo)
            faults.point("after_patch")
        except kube.ApiError as e:
            if slot is not None:
                cap.give_back(slot)  # not rolled back (yet): the slot is another's
            if e.status == 409:  # someone wrote in between: decide again on what is there now
                read = reads.read(work, wait_observed=True)
                return None if read is None else Snapshot(*read, fresh=True)
            if e.status == 404:
                return None  # deleted meanwhile
            if retry.retryable(e.status):
                key = state.failure_key(deployment, config, work.workload)
                if (
                    e.status in (401, 403, 429)
                    and key != work.api_failure_reported
                    and reads.unchanged(work, deployment)
                ):
                    report.api_trouble(work, d, e)  # refused, not lost (and about a state still current)
                    result.done.api_failure_reported = key
                raise
            # the API will never take this patch: say so, for good (refused before its
            # precondition was checked, so it is confirmed below like any other outcome)
            telemetry.api_errors.labels("failure", str(e.status)).inc()
            d = Decision(
                vocab.Result.FAILED,
                Reason.API_ERROR,
                (
                    f"rollback to revision {d.target.number} was refused: {e}. Roll back by hand with "
                    "`kubectl rollout undo`."
                ),
                failure=d.failure,
                failing=d.failing,
                target=d.target,
                first_report=d.first_report,
            )
        else:
            result.patched = True
            return Outcome(d, snapshot, measured, starting)
    outcome = Outcome(d, snapshot, measured, starting)
    if d.result != vocab.Result.NOTHING and not snapshot.fresh:  # about to be told on the watched state: confirm
        return _confirm(work, outcome)
    return outcome


def _confirm(work: Work, outcome: Outcome) -> Outcome | Snapshot | None:
    """The outcome if the Deployment is still at the state it was decided on; else the Deployment
    read again, to decide on again (None: it is gone)."""
    unchanged = reads.unchanged(work, outcome.snapshot.deployment)
    if unchanged is None:
        return None
    if unchanged:
        return outcome
    read = reads.read(work)
    return None if read is None else Snapshot(*read, fresh=True)
