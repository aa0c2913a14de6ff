"""Loop guards: a failure that stands is not rolled back when it was handled already, when rolling
back would repeat a rollback that did not help (a known-bad template re-applied, a restored revision
failing too), or while the Deployment is paused."""

from typing import Any

from autorollback import history, ledger
from autorollback.decision.base import CAPPED_OUTCOME, PAUSED_OUTCOME, Decision, describe, nothing, revert_pr
from autorollback.decision.classify import Standing
from autorollback.decision.reports import seen_before
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import BAKE_FAILURES, Failure, Workload


def already_handled(failing: history.Revision | None, failure: Failure, paused: bool, dry_run: bool) -> bool:
    """Reported and dealt with. A failure deferred because the Deployment was paused or in dry-run
    is due again once that ends: neither change makes the controller report a new failure."""
    if failing is None or not seen_before(failing, failure):
        return False
    previous = failing.mark(history.OUTCOME)
    if previous.startswith(PAUSED_OUTCOME) and not paused:
        return False
    if previous.startswith(CAPPED_OUTCOME) and failure.reason not in BAKE_FAILURES:
        return False  # the cap holds back metric rollbacks only: a deadline or a fast signal still rolls back
    return not (previous.startswith(Result.DRY_RUN) and not dry_run)


def refusal(deployment: dict[str, Any], standing: Standing, dry_run: bool, workload: Workload) -> Decision | None:
    """Why the failure that stands is not rolled back (now); None: nothing stops it."""
    failing, failure = standing.failing, standing.failure
    meta = deployment["metadata"]
    paused = workload.paused(deployment)
    if already_handled(failing, failure, paused, dry_run):
        return nothing(Reason.HANDLED, "this failure was handled already", failure)
    from_text = describe(failing.number, deployment["spec"]["template"])
    if failing.rolled_back_and_unproven:
        return standing.conclude(
            Result.ABANDONED,
            Reason.REAPPLIED,
            (
                f"{from_text} failed again after autorollback already rolled back away from it at "
                f"{_when(failing.last_rolled_back)}: the known-bad template was re-applied (by a person or a "
                "GitOps controller). Not rolling back again to avoid a loop: fix or revert the source of the "
                f"{workload.kind}, then roll out again.{revert_pr(failing)}"
            ),
        )
    if failing.restored_and_unproven:
        return standing.conclude(
            Result.ABANDONED,
            Reason.RESTORED_REVISION_FAILED,
            (
                f"{from_text} was restored by autorollback at {_when(failing.last_restored)} and failed as "
                "well. Not walking further back: manual intervention needed (inspect the pods, then roll out a "
                "fix or `kubectl rollout undo --to-revision=N`)."
            ),
        )
    if paused:
        return standing.conclude(
            Result.SKIPPED,
            Reason.PAUSED,
            (
                f"{from_text} failed but the Deployment is paused, so it is not rolled back. Resume it with "
                f"'kubectl rollout resume deployment/{meta['name']} -n {meta['namespace']}' and autorollback rolls "
                "it back then."
            ),
        )
    return None


def _when(entry: ledger.Entry | None) -> str:
    return entry.at if entry else "an unknown time"
