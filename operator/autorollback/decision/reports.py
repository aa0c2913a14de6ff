"""What was reported, as the failing ReplicaSet's marks record it, and the report of a rollback whose
patch went through but whose report was lost (a crash, a lost answer): made as soon as its failure is
seen again, or when the revision it restored completes."""

from dataclasses import replace
from typing import Any

from autorollback import history, ledger, times
from autorollback.decision.base import Decision, describe
from autorollback.vocab import Result
from autorollback.workloads.base import DEADLINE_EXCEEDED, Failure


def seen_before(failing: history.Revision | None, failure: Failure) -> bool:
    """This failure was reported before: the same condition update, or another failure of the same
    rollout (pods reported broken may still time out later, or show another signal: one rollout, one
    failure). Only two timeouts the controller wrote for one rollout (it progressed in between) are
    two failures."""
    if failing is None:
        return False
    mark = failing.at(history.FAILED_AT)
    if mark == times.NEVER:
        return False
    if mark == times.parse(failure.updated):
        return True
    if not failing.number or failing.failed_in != failing.number:
        return False
    # a deadline autorollback measured has no lasting time of its own (a restart measures again)
    timeouts = failure.reason == failing.failed_reason == DEADLINE_EXCEEDED and not failure.measured
    return not timeouts


def rollback_reported(failed: history.Revision, failure: Failure) -> bool:
    """The rollback of this failure was reported (its marks say so), not merely the failure."""
    return failed.at(history.FAILED_AT) == times.parse(failure.updated) and failed.mark(history.OUTCOME).startswith(
        Result.SUCCESS
    )


def lost_report(done: ledger.Entry, revisions: list[history.Revision], failure: Failure) -> Decision | None:
    """The report of the rollback `done` recorded for this failure, still shown, when the rollback
    patch went through but what followed it did not (a crash, a lost answer); None: it was reported,
    or its failed ReplicaSet is gone."""
    rolled_from = next((r for r in revisions if r.name == done.failed), None)
    if rolled_from is None or rollback_reported(rolled_from, failure):
        return None
    restored = next((r for r in revisions if r.name == done.restored), None)
    return Decision(
        Result.SUCCESS,
        failure.reason,
        (
            f"rolled back from {describe(rolled_from.number, rolled_from.template)} to "
            f"{describe(restored.number, restored.template) if restored else done.restored}: {failure.reason}"
        ),
        failure=failure,
        failing=rolled_from,
        target=restored,
        first_report=True,
    )


def restoring(deployment: dict[str, Any], replicaset: str) -> ledger.Entry | None:
    """The rollback that restored this ReplicaSet, if any."""
    entries = ledger.parse((deployment["metadata"].get("annotations") or {}).get(ledger.KEY))
    return next((e for e in entries if e.restored == replicaset), None)


def ledger_failure(entry: ledger.Entry, failed: history.Revision) -> Failure:
    """The failure a ledger entry rolled back, as far as the ledger tells it."""
    return Failure(
        revision_name=entry.failed,
        reason=entry.reason or DEADLINE_EXCEEDED,
        message="(from the rollback ledger)",
        updated=entry.failure,
        revision=entry.revision or failed.number,
    )


def unreported(failed: history.Revision, entry: ledger.Entry) -> bool:
    """The rollback this entry records was never reported, and the failed ReplicaSet's marks record
    nothing later than its failure, so that reporting it now overwrites no newer record (a re-applied
    template that failed again, in a later revision). Decided from the failed ReplicaSet's marks
    only: state that lasts, the same in every process and on every retry, whatever was written about
    the restored ReplicaSet meanwhile (its healthy mark, say, written before a report that failed).
    An entry or a mark without a revision (earlier versions) is reported only when the marks record
    no failure or this same one."""
    if rollback_reported(failed, ledger_failure(entry, failed)):
        return False
    if not failed.failure_id or failed.failure_id == entry.failure:
        return True
    if not (entry.revision and failed.failed_in is not None and failed.failed_in <= entry.revision):
        return False
    # another failure of the same revision (the template re-applied before the controller saw the
    # rollback): one decided for good came after this rollback; one deferred (dry-run, paused) before it
    decided = failed.mark(history.OUTCOME).partition(" ")[0] in (Result.SUCCESS, Result.ABANDONED)
    return failed.failed_in < entry.revision or not decided


def late_report(entry: ledger.Entry, failed: history.Revision, restored: history.Revision) -> Decision | None:
    """The report of a rollback whose patch went through but whose report was lost (the process that
    rolled back stopped first, or the patch's answer never came), made when the revision it restored
    completes; None when it was reported, when its failed ReplicaSet's marks moved on since, or when
    the restored ReplicaSet (read before this completion's mark: the shell reports first) was proven
    after that rollback already (a template re-applied after garbage collection has no marks). The
    failed revision is the one the entry names, in the report and in the marks (the ReplicaSet may
    carry a later number since: its template re-applied)."""
    if restored.last_restored != entry or not restored.restored_and_unproven:
        return None  # settled by an earlier completion (read before this completion's mark is written)
    if not unreported(failed, entry):
        return None
    if entry.revision:
        failed = replace(failed, number=entry.revision)
    failure = ledger_failure(entry, failed)
    return Decision(
        Result.SUCCESS,
        failure.reason,
        (
            f"rolled back from {describe(failed.number, failed.template)} to {describe(restored.number, restored.template)}"
            f": {failure.reason} (reported late: what follows a rollback patch was lost, as when the operator stops "
            "or the patch's answer never comes)"
        ),
        failure=failure,
        failing=failed,
        target=restored,
        first_report=True,
    )
