"""The rollback of a failure that stands: the target revision, and one patch that restores its
template and records the rollback in the ledger in the same write, guarded by the resourceVersion
read. Skipped when the template already matches the target; impossible with no target."""

from typing import Any

from autorollback import history, ledger
from autorollback.config import DRY_RUN_BY_DEFAULT, MODE
from autorollback.decision.base import Decision, as_generation, change_cause, describe
from autorollback.decision.classify import Standing
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import BAKE_FAILURES, Workload, history_object

HISTORY_NEEDED = 2  # revisionHistoryLimit below this loses the ReplicaSets a rollback needs


def rollback(
    deployment: dict[str, Any], standing: Standing, dry_run: bool, now: str, workload: Workload, capped: str = ""
) -> Decision:
    """now: only written down (the ledger's `at`), never compared. capped: why no more metric-triggered
    rollbacks are allowed now (checks.cap), said instead of rolling back."""
    meta, template = deployment["metadata"], deployment["spec"]["template"]
    failing, failure = standing.failing, standing.failure
    from_text = describe(failing.number, template)
    target = history.choose_target(standing.revisions, failing)
    if target.revision is None:
        return standing.conclude(
            Result.IMPOSSIBLE,
            Reason.NO_TARGET,
            (
                f"{from_text} failed and cannot be rolled back: {target.why}. Roll out a fixed version; keep "
                f"spec.revisionHistoryLimit at {HISTORY_NEEDED} or more so autorollback has something to return to."
            ),
        )
    to_text = describe(target.revision.number, target.revision.template)
    if workload.same_template(target.revision.template, template):
        return standing.conclude(
            Result.SKIPPED,
            Reason.TEMPLATE_MATCHES,
            (
                f"{from_text} failed but its template already matches {to_text}: there is nothing different to "
                "roll back to"
            ),
            target=target.revision,
        )

    cause = change_cause(from_text, to_text, failure)
    entry = ledger.Entry(
        failed=failing.name,
        restored=target.revision.name,
        failure=failure.updated,
        at=now,
        reason=failure.reason,
        revision=failing.number,
        generation=as_generation(meta.get("generation")),
    )
    undo = workload.undo_patch(deployment, target.revision, cause, ledger.merge((entry,), standing.entries))
    if dry_run:
        return standing.conclude(
            Result.DRY_RUN,
            Reason.DRY_RUN,
            (
                f"dry-run: would roll back from {from_text} to {to_text} ({target.why}) by setting spec.template "
                f"to {history_object(workload.kind)} {target.revision.name}'s template and kubernetes.io/change-cause "
                f'to "{cause}"; nothing was changed{_why_dry_run(deployment, workload.kind)}'
            ),
            target=target.revision,
            undo=undo,
        )
    if capped and failure.reason in BAKE_FAILURES:
        return standing.conclude(
            Result.SKIPPED,
            Reason.CAPPED,
            (
                f"{from_text} failed ({failure.reason}: {failure.message}) and would be rolled back to {to_text} "
                f"({target.why}), but {capped}. Not rolled back: when many releases fail their checks at once the "
                "cause is usually shared (a database, the network), not the releases. If this release is at fault, "
                f"roll it back by hand: kubectl rollout undo {workload.kind.lower()}/{meta['name']} -n {meta['namespace']}"
            ),
            target=target.revision,
        )
    return standing.conclude(
        Result.SUCCESS,
        failure.reason,
        (f"rolled back from {from_text} to {to_text}: {failure.reason} ({target.why})"),
        target=target.revision,
        undo=undo,
    )


def _why_dry_run(workload: dict[str, Any], kind: str) -> str:
    """Said when dry-run is the kind's default rather than the workload's choice (config.DRY_RUN_BY_DEFAULT)."""
    if kind not in DRY_RUN_BY_DEFAULT or MODE in ((workload.get("metadata") or {}).get("annotations") or {}):
        return ""
    return (
        f". A {kind} is rolled back only with the annotation {MODE}=rollback (dry-run is its default): rolling "
        "back after a release that migrated its data one way (a schema, a file format) can be worse than the "
        "failure. Set it if the previous version can run on what this one wrote."
    )
