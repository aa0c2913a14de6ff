"""The bake of one revision: its checks run while the rollout goes on and for `bake-seconds` after
it completed, then stop. Pure: the shell says when the rollout is complete and how many seconds
passed (this process's monotonic clock), and hands in each evaluation's outcome.

A bake ends one way:

- Failed: a check reached its consecutive failures (at any time, during the rollout too): roll back,
  with the check, its value, the limit, the consecutive count and Prometheus's evaluation time;
- Passed: the bake time ran out after completion and every check passed at least once;
- Unverified: the bake time ran out and some check never passed (only no data, errors, or fewer
  failures than needed): nothing showed it healthy, so the shell says so (a `BakeUnverified` Warning)
  instead of a silent success.

An evaluation that arrives after the end changes nothing: a release that baked is never rolled back
by a late answer. The elapsed seconds count only while the rollout is complete; the checkpoint
(streak.State) keeps them, and a resumed bake goes on from it (later, never sooner: whole seconds).
"""

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from autorollback import times
from autorollback.checks.outcome import Kind, Outcome
from autorollback.checks.streak import State, Streak, counts_as, step
from autorollback.checks.templates import Check
from autorollback.config import shown
from autorollback.history import FAILED_REASON, UNVERIFIED_AT, Revision
from autorollback.workloads.base import BAKE_FAILURES, METRIC_CHECK_FAILED, SHOWN_MESSAGE, Failure


@dataclass(frozen=True)
class Failed:
    check: str
    value: float | None
    bound: float | None
    op: str
    consecutive: int
    at: float | None  # Prometheus's evaluation time of the last failed evaluation
    detail: str = ""
    baseline: float | None = None

    def reason(self) -> str:
        """The failure as the rollback's reason says it."""
        if self.value is not None and self.bound is not None:
            what = f"{self.value:g} {self.op} {self.bound:g}"
            if self.baseline is not None:
                what += f" (previous revision {self.baseline:g})"
        else:
            what = self.detail or "counted as a failure"
        return f"MetricCheckFailed: {self.check} {what} ({self.consecutive} consecutive)"


@dataclass(frozen=True)
class Passed:
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Unverified:
    checks: tuple[str, ...]  # the checks that never passed

    def reason(self) -> str:
        return f"BakeUnverified: no passing evaluation of {', '.join(self.checks)} during the bake"


Result = Failed | Passed | Unverified


@dataclass(frozen=True)
class Bake:
    state: State
    seconds: float = 0.0  # elapsed bake seconds after completion, with fractions (state has whole ones)
    result: Result | None = None

    @property
    def active(self) -> bool:
        """Whether the checks are to be evaluated now."""
        return self.result is None


def begin(checks: Sequence[Check], resumed: State | None = None) -> Bake:
    """A bake of these checks: new, or resumed from a checkpoint (the checks no longer selected are
    forgotten; a check newly selected starts from nothing)."""
    names = frozenset(c.name for c in checks)
    state = resumed.only(names) if resumed is not None else State()
    return Bake(state, float(state.elapsed))


def observe(bake: Bake, check: Check, outcome: Outcome) -> Bake:
    """The bake after one evaluation of one check."""
    if bake.result is not None:
        return bake
    template = check.template
    streak = step(bake.state.streak(check.name), outcome.kind, template.on_no_data, template.on_error)
    state = bake.state.with_streak(check.name, streak)
    result: Result | None = None
    if (
        counts_as(outcome.kind, template.on_no_data, template.on_error) is Kind.FAIL
        and streak.fails >= template.failures
    ):
        result = Failed(
            check.name, outcome.value, outcome.bound, check.limit.op, streak.fails, outcome.at,
            _detail(outcome), outcome.baseline,
        )  # fmt: skip
    return replace(bake, state=state, result=result)


def _detail(outcome: Outcome) -> str:
    if outcome.kind is Kind.FAIL:
        return ""
    label = "no data" if outcome.kind is Kind.NO_DATA else "error"
    return f"{label} counted as a failure: {outcome.detail}" if outcome.detail else f"{label} counted as a failure"


def advance(bake: Bake, checks: Sequence[Check], complete: bool, seconds: float, bake_seconds: int) -> Bake:
    """The bake after `seconds` more of this process's monotonic time; the rollout `complete` or not.
    Ends it (Passed or Unverified) once complete and the bake time has run out."""
    if bake.result is not None:
        return bake
    total = bake.seconds + max(0.0, seconds) if complete else bake.seconds
    state = bake.state.with_elapsed(total)
    if not complete or total < bake_seconds:
        return replace(bake, state=state, seconds=total)
    unproven = tuple(c.name for c in checks if not bake.state.streak(c.name).passed)
    result: Result = Unverified(unproven) if unproven else Passed(tuple(c.name for c in checks))
    return Bake(state, total, result)


def remaining(bake: Bake, bake_seconds: int) -> float:
    """Seconds of bake left after completion (0 once ended)."""
    return 0.0 if bake.result is not None else max(0.0, bake_seconds - bake.seconds)


def streaks(bake: Bake) -> dict[str, Streak]:
    return dict(bake.state.streaks)


def baseline(revisions: Sequence[Revision], current: Revision, with_pods: Collection[str] = ()) -> Revision | None:
    """The revision the new pods are compared with in relative mode: of the older ones still serving,
    their pods available now (`Revision.serving`) or, for a kind whose history objects count no pods
    (a ControllerRevision has no status), named in `with_pods` (its pods still there, Ready or not),
    the newest known healthy, else the newest not known to have failed. Never one that failed: a
    broken release's pods make any ratio look good."""
    serving = [
        r
        for r in revisions
        if r.number < current.number and r.name != current.name and (r.serving or r.name in with_pods) and not r.failed
    ]
    return next((r for r in serving if r.healthy), serving[0] if serving else None)


def skipped(revision: Revision) -> str:
    """Why this revision is not baked ("": it is). A revision autorollback restored is not judged by
    metrics again (no ping-pong: it was the way back from a failure); one known healthy or unverified
    in its current revision was baked (or completed before checks were asked for); one that failed
    was dealt with."""
    if revision.restored_and_unproven:
        return "autorollback restored it after a failure: metric checks do not roll a restored revision back"
    if revision.healthy_in_this_revision:
        return "it is known healthy in this revision"
    if revision.mark(UNVERIFIED_AT):
        return "its bake ended unverified"
    if revision.failed:
        return "it failed already"
    return ""


def recorded_failure(revision: Revision) -> Failure | None:
    """The bake's failure (a metric check's or an alert's) recorded on this revision in its current
    rollout (failed-at, failed-reason), as the decision takes it: a failure that was not rolled back (paused, dry-run, no target) is
    decided again from what lasts, as a deadline's is from its condition."""
    if revision.failed_reason not in BAKE_FAILURES or revision.failed_in != revision.number:
        return None
    return Failure(
        revision_name=revision.name,
        reason=revision.failed_reason,
        message=revision.mark(FAILED_REASON).partition(": ")[2],
        updated=revision.failure_id,
        revision=revision.number,
    )


def failure(result: Failed, replicaset: str, revision: int, created: str) -> Failure:
    """The failure a bake's Failed stands for, as the decision takes it from any verdict source. Its
    id names the evaluation that completed the streak by Prometheus's own timestamp (never this
    process's clock); a failed evaluation without one (an error counted as a failure) falls back to
    the ReplicaSet's creation."""
    when = (
        times.stamp(dt.datetime.fromtimestamp(result.at, dt.UTC))
        if result.at is not None and 0 < result.at < 2**33
        else created
    )
    return Failure(
        revision_name=replicaset,
        reason=METRIC_CHECK_FAILED,
        message=shown(result.reason().removeprefix(f"{METRIC_CHECK_FAILED}: "), SHOWN_MESSAGE),
        updated=when,
        revision=revision,
    )
