"""Which failure stands against the current template, if any: the one reported (a fast signal of
its pods, else the controller's Progressing condition), or a deadline autorollback measured while the
controller will never time the rollout out (`Workload.unfinished`: a Deployment's condition left over
from another template; a kind whose controller reports no failed rollout at all, while a rollout is
under way). A condition left over from a completed rollout is no failure, one about an earlier
template is stale, and a failure rolled back already is at most reported (when its report was lost)."""

from collections.abc import Sequence
from dataclasses import dataclass

from autorollback import history, ledger
from autorollback.decision import reports
from autorollback.decision.base import Decision, nothing
from autorollback.decision.measured import Measured
from autorollback.signals.base import Facts, Source
from autorollback.signals.deadline import ControllerDeadline, MeasuredDeadline
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import Failure, Undo, history_object, rollout_over


@dataclass(frozen=True)
class WhatIsShown:
    """What the workload shows: the failure reported, and without one the ReplicaSet that a leftover
    condition names (the controller keeps it until it sees progress) or a rollout under way that its
    controller never times out."""

    failure: Failure | None  # the first source's that sees one (a fast signal stands for the controller's condition)
    by_controller: Failure | None  # the controller's condition (what a stale or leftover one still shows)
    left_over: str
    # with neither failure: a rollout under way that the controller never times out (Workload.unfinished)
    unfinished: str = ""


@dataclass(frozen=True)
class Standing:
    """A failure that stands against the current template's revision, and the history it was judged on."""

    failure: Failure
    failing: history.Revision
    revisions: list[history.Revision]
    entries: tuple[ledger.Entry, ...]

    @property
    def first_report(self) -> bool:
        return not reports.seen_before(self.failing, self.failure)

    def conclude(
        self,
        result: Result,
        reason: str,
        message: str,
        target: history.Revision | None = None,
        undo: Undo | None = None,
    ) -> Decision:
        return Decision(
            result,
            reason,
            message,
            failure=self.failure,
            failing=self.failing,
            target=target,
            undo=undo,
            first_report=self.first_report,
        )


def what_is_shown(facts: Facts, sources: Sequence[Source]) -> WhatIsShown:
    """The failure the first of `sources` to see one reports (they are asked in order, until one does)."""
    controller = ControllerDeadline().verdict(facts)
    by_controller = controller.failure if controller else None
    verdicts = (source.verdict(facts) for source in sources)
    failure = next((v.failure for v in verdicts if v is not None and v.failure is not None), None)
    adapter, workload = facts.adapter, facts.workload
    unfinished = "" if failure or by_controller else adapter.unfinished(workload)
    return WhatIsShown(failure, by_controller, "" if failure else adapter.left_over(workload), unfinished)


def standing_failure(facts: Facts, shown: WhatIsShown, measured: Measured | None) -> Decision | Standing:
    """The failure that stands, or the decision that none does."""
    deployment, replicasets, workload = facts.workload, facts.history, facts.adapter
    failure, left_over = shown.failure, shown.left_over
    if failure is None and not left_over and not shown.unfinished:
        return nothing(Reason.NO_FAILURE, "the rollout has not failed")
    entries = ledger.of([deployment, *replicasets])
    revisions = workload.revisions(replicasets, entries)
    failing = workload.update_revision(deployment, revisions)
    if left_over and failing is not None and completed_under(left_over, failing):
        return nothing(Reason.NO_FAILURE, "the rollout completed (some pods are not available now)")
    done = ledger.find(entries, failure.id) if failure is not None else None
    if failure is not None and done is not None:
        lost = reports.lost_report(done, revisions, failure)
        if lost is not None:
            return lost
        if failing is not None and failure.revision_name == failing.name:
            return _rolled_back_already(failure)
        failure = None  # carried over; whether the restored template progresses is decided below
    if failing is None:
        return nothing(Reason.STALE, f"the current template's {history_object(workload.kind)} does not exist yet")
    if failure is None and not left_over and rollout_over(workload, deployment, failing):
        # a rollout seen complete in this revision is over: a pod lost since (a DaemonSet's node, a
        # StatefulSet's pod below its partition) is no failed rollout, and rolling back would not help
        return nothing(
            Reason.NO_FAILURE,
            f"the rollout of {workload.kind} revision {failing.name} completed (some pods are not available now)",
        )
    if failure is not None and failure.revision_name == failing.name:
        return Standing(failure, failing, revisions, entries)
    # no condition shows anything instead: the kind's controller reports no failed rollout at all
    never_timed = failure is None and not left_over and done is None
    instead = "" if never_timed else _shown_instead(failing, failure, left_over, done)
    timed_out = MeasuredDeadline(measured.seconds, measured.since, instead).verdict(facts) if measured else None
    if timed_out is None or timed_out.failure is None:
        if never_timed:
            return nothing(
                Reason.STALE,
                (
                    f"the rollout of {workload.kind} revision {failing.name} is under way: autorollback times it out "
                    f"after {workload.deadline_seconds(deployment)}s without progress (its controller never does)"
                ),
            )
        return nothing(
            Reason.STALE,
            (
                f"the Progressing condition still shows {instead}, not the current template's ReplicaSet "
                f"({failing.name}): it was left over from an earlier template"
            ),
            shown.by_controller,
        )
    if ledger.find(entries, timed_out.failure.id):
        return _rolled_back_already(timed_out.failure)
    return Standing(timed_out.failure, failing, revisions, entries)


def completed_under(left_over: str, current: history.Revision) -> bool:
    """The current template's rollout completed under the leftover condition naming `left_over` (that
    some of its pods are not available now is no failure)."""
    if current.restored_and_unproven:
        return False  # the condition is from before autorollback restored this template
    # the condition is about this rollout, or it names an earlier ReplicaSet and this one was seen
    # complete since it last failed
    return left_over == current.name or current.healthy_in_this_revision


def _shown_instead(
    failing: history.Revision, failure: Failure | None, left_over: str, done: ledger.Entry | None
) -> str:
    """What the controller's condition still shows instead of the current template's rollout."""
    carried = failure.revision_name if failure else (left_over or (done.failed if done else ""))
    if not left_over:
        return f"the earlier timeout of {carried or 'another ReplicaSet'}"
    if left_over != failing.name:
        return f"ReplicaSet {carried}'s completed rollout"
    return f"ReplicaSet {carried}'s completed rollout from before it was rolled back to"


def _rolled_back_already(failure: Failure) -> Decision:
    return nothing(Reason.ROLLED_BACK, "this failure was rolled back already", failure)
