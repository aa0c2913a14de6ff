"""The measured deadline: how long a rollout the controller will never time out has made no progress,
on this process's monotonic clock, and the signed checkpoints that let the next process resume it."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from autorollback import decision, kube, state, telemetry, times
from autorollback.reconcile.work import PassResult, Work, log, who

DEADLINES, CHECKPOINTS = "stale", "checkpoints"  # Clocks groups: the deadlines measured, their checkpoints
# (the others: report.RESTORED, state.OBSERVED, signals.GRACES)
ENDED = ""  # in DEADLINES: the last state of no progress this process timed is over (never a stale_key())
CHECKPOINT_EVERY = 30.0  # seconds between checkpoints of a measured deadline (a third of a shorter deadline)


@dataclass(frozen=True)
class Start:
    """A measurement this pass would start (carried out only where the decision finds the state stale)."""

    key: str  # state.stale_key()
    resume: float  # seconds resumed from a genuine checkpoint (0: from now)
    since: str  # the measurement's name (decision.Measured.since)
    clear: (
        decision.Checkpointed | None
    )  # the mark to remove before it starts (an older episode's, or one that does not count)


def elapsed(
    work: Work, deployment: dict[str, Any], replicasets: list[dict[str, Any]]
) -> tuple[decision.Measured, Start | None]:
    """How long this state of no progress has lasted: on this process's monotonic clock from when it
    first saw it, or, on this process's first look only, from a checkpoint a previous process left
    on the ReplicaSet that the operator's key signed for this ReplicaSet and state (later, never
    sooner). Any progress is another state, timed anew: the older state's mark is removed before
    (start), so that no process can resume it should that state come back (another episode).
    No I/O here; a state this process is not timing yet comes back as a Start."""
    key = state.stale_key(deployment, work.workload)
    timing = work.clocks.keys(DEADLINES)
    if key in timing:
        seconds = work.clocks.track(DEADLINES, [key], times.monotonic())[key]
        # a name for this measurement while it lasts (the failure's id if it runs out): its start, on this
        # process's wall clock, written down like every time autorollback records, compared with nothing here
        since = work.clocks.label(
            DEADLINES, key, lambda: times.stamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds))
        )
        return decision.Measured(seconds, since), None
    template = deployment["spec"]["template"]
    holder = decision.checkpoint_holder(replicasets, template, work.workload)
    # resumed only on this process's first look (a restart, a failover in the middle of the
    # measurement); a state it saw begin (progress, or the end of the last one) starts from nothing
    resume = (
        decision.checkpointed(replicasets, template, state.digest(key), work.ctx.checkpoint_key, work.workload)
        if not timing
        else 0.0
    )
    since = times.stamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=resume))
    clear = holder if holder is not None and holder.value and not resume else None
    return decision.Measured(resume, since), Start(key, resume, since, clear)


def keep_timing(
    work: Work,
    result: PassResult,
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    measured: decision.Measured,
    starting: Start | None,
) -> None:
    """The state of no progress stands (decided stale): time it, checkpoint it now and then, and look
    again when the next checkpoint is due or the deadline runs out, even if nothing changes."""
    deadline = float(work.workload.deadline_seconds(deployment))
    every = min(CHECKPOINT_EVERY, deadline / 3)
    start(work, starting)
    checkpoint(work, deployment, replicasets, measured, every)
    result.recheck(max(0.5, min(deadline - measured.seconds + 0.05, every)))


def start(work: Work, new: Start | None) -> None:
    """Start timing a state: first remove a mark that must never be resumed (raises on failure: the
    pass is tried again, and this state is still new to this process then)."""
    if new is None:
        return
    if new.clear is not None:
        work.api.mark_revision(work.namespace, new.clear.name, {decision.NO_PROGRESS: None})
    work.clocks.track(DEADLINES, [new.key], times.monotonic(), resume={new.key: new.resume})
    work.clocks.label(DEADLINES, new.key, lambda: new.since)
    work.clocks.forget(CHECKPOINTS)


def ended(work: Work, replicaset: str, value: str | None) -> None:
    """The state of no progress this process was timing is over (the rollout progressed, completed,
    or was decided about): its mark on that ReplicaSet goes (best effort), and the next state of no
    progress is a new episode to this process (started from nothing, never resumed)."""
    if not work.clocks.keys(DEADLINES):
        return
    if replicaset and value:
        try:
            work.api.mark_revision(work.namespace, replicaset, {decision.NO_PROGRESS: None})
        except kube.ApiError as e:
            telemetry.api_errors.labels("checkpoint", str(e.status)).inc()
            log.warning(
                "cannot remove the no-progress checkpoint (removed when the next measurement starts)",
                replicaset=replicaset,
                error=str(e),
                **who(work),
            )
    work.clocks.track(DEADLINES, [ENDED], times.monotonic())
    work.clocks.forget(CHECKPOINTS)


def checkpoint(
    work: Work,
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    measured: decision.Measured | None,
    every: float,
) -> None:
    """Now and then, the elapsed seconds of a measured deadline go onto the current template's
    ReplicaSet, signed, so that the next process (a restart, another replica) resumes from them
    instead of starting again. Elapsed seconds only: no clock is compared across processes. Best effort."""
    holder = decision.checkpoint_holder(replicasets, deployment["spec"]["template"], work.workload)
    if measured is None or holder is None or measured.seconds < every:
        return
    key = state.stale_key(deployment, work.workload)
    last = work.clocks.since(CHECKPOINTS, key)
    if last is not None and times.monotonic() - last < every:
        return
    try:
        work.api.mark_revision(
            work.namespace,
            holder.name,
            {
                decision.NO_PROGRESS: decision.checkpoint(
                    work.ctx.checkpoint_key, holder, state.digest(key), measured.seconds
                )
            },
        )
    except kube.ApiError as e:
        telemetry.api_errors.labels("checkpoint", str(e.status)).inc()
        log.warning(
            "cannot record how long the rollout made no progress (measured again after a restart)",
            replicaset=holder.name,
            error=str(e),
            **who(work),
        )
        return
    work.clocks.forget(CHECKPOINTS)
    work.clocks.note(CHECKPOINTS, key, times.monotonic())
