"""What to do about a failed rollout: the whole decision, as data, with no I/O."""
from dataclasses import dataclass, field
from typing import Any

from autorollback import history, rollout, undo
from autorollback.annotations import Config

# Results, as the metrics and Events name them.
SUCCESS, SKIPPED, IMPOSSIBLE, ABANDONED, FAILED, DRY_RUN = (
    "success", "skipped", "impossible", "abandoned", "failed", "dry_run")


@dataclass(frozen=True)
class Decision:
    result: str
    reason: str  # machine-friendly, the metric's `reason` label
    message: str  # what the Event and the log line say
    failing: history.Revision | None = None
    target: history.Revision | None = None
    patch: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event_reason(self) -> str:
        return {SUCCESS: "RolledBack", SKIPPED: "RollbackSkipped", IMPOSSIBLE: "RollbackImpossible",
                ABANDONED: "RollbackAbandoned", FAILED: "RollbackFailed", DRY_RUN: "RollbackPlanned"}[self.result]

    @property
    def event_type(self) -> str:
        return "Normal" if self.result in (SUCCESS, DRY_RUN) else "Warning"


def describe(revision: int, template: dict[str, Any]) -> str:
    return f"revision {revision} ({rollout.images(template)})"


def change_cause(failing: str, target: str, failure: rollout.Failure) -> str:
    return f"autorollback: rolled back from {failing} to {target}: {failure.reason}"


PAUSED_OUTCOME = f"{SKIPPED} (paused)"


def outcome(d: "Decision", at: str) -> str:
    return f"{d.result} ({d.reason}) at {at}"


def seen_before(failing: history.Revision | None, failure: rollout.Failure) -> bool:
    """This exact failure (same template, same condition transition) was reported before."""
    return failing is not None and bool(failure.since) and failing.mark(history.FAILED_AT) == failure.since


def already_handled(failing: history.Revision | None, failure: rollout.Failure, paused: bool, dry_run: bool) -> bool:
    """Reported and dealt with. A failure deferred because the Deployment was paused or in dry-run
    is due again once that ends: neither change makes the controller report a new failure."""
    if not seen_before(failing, failure):
        return False
    previous = failing.mark(history.OUTCOME)
    if previous.startswith(PAUSED_OUTCOME) and not paused:
        return False
    if previous.startswith(DRY_RUN) and not dry_run:
        return False
    return True


def decide(deployment: dict[str, Any], replicasets: list[dict[str, Any]], config: Config,
           failure: rollout.Failure) -> Decision:
    meta, spec = deployment["metadata"], deployment["spec"]
    name = meta["name"]
    revs = history.revisions(replicasets)
    failing = history.current(revs, spec["template"])
    from_text = describe(failing.number if failing else failure.revision, spec["template"])

    if failing is not None and failing.rolled_back_and_unproven:
        return Decision(ABANDONED, "reapplied", (
            f"{from_text} failed again after autorollback already rolled back away from it at "
            f"{failing.mark(history.ROLLED_BACK_AT)}: the known-bad template was re-applied (by a person or a "
            "GitOps controller). Not rolling back again to avoid a loop: fix or revert the source of the "
            "Deployment, then roll out again."), failing=failing)
    if failing is not None and failing.restored_and_unproven:
        return Decision(ABANDONED, "restored_revision_failed", (
            f"{from_text} was restored by autorollback at {failing.mark(history.RESTORED_AT)} and failed as "
            "well. Not walking further back: manual intervention needed (inspect the pods, then roll out a "
            "fix or `kubectl rollout undo --to-revision=N`)."), failing=failing)
    if rollout.paused(deployment):
        return Decision(SKIPPED, "paused", (
            f"{from_text} failed but the Deployment is paused, so it is not rolled back. Resume it with "
            f"'kubectl rollout resume deployment/{name} -n {meta['namespace']}' and autorollback rolls it back "
            "then."), failing=failing)

    target = history.choose_target(revs, spec["template"], failure.revision)
    if target.revision is None:
        return Decision(IMPOSSIBLE, "no_target", (
            f"{from_text} failed and cannot be rolled back: {target.why}. Roll out a fixed version; keep "
            "spec.revisionHistoryLimit above 0 so autorollback has something to return to."), failing=failing)
    to_text = describe(target.revision.number, target.revision.template)
    if history.same_template(target.revision.template, spec["template"]):
        return Decision(SKIPPED, "template_matches", (
            f"{from_text} failed but its template already matches {to_text}: there is nothing different to "
            "roll back to"), failing=failing, target=target.revision)

    cause = change_cause(from_text, to_text, failure)
    patch = undo.patch(deployment, target.revision, cause)
    if config.dry_run:
        return Decision(DRY_RUN, "dry_run", (
            f"dry-run: would roll back from {from_text} to {to_text} ({target.why}) by setting spec.template "
            f"to ReplicaSet {target.revision.name}'s template and kubernetes.io/change-cause to \"{cause}\"; "
            "nothing was changed"), failing=failing, target=target.revision, patch=patch)
    return Decision(SUCCESS, failure.reason, (
        f"rolled back from {from_text} to {to_text}: {failure.reason} ({target.why})"),
        failing=failing, target=target.revision, patch=patch)


def recheck(deployment: dict[str, Any], failed_template: dict[str, Any], config: Config) -> Decision | None:
    """After a conflicting write: a reason to stop, or None to decide again on the fresh state."""
    if not history.same_template(deployment["spec"]["template"], failed_template):
        return Decision(SKIPPED, "template_changed", (
            "the pod template changed after the failure (someone deployed a new version); leaving the newer "
            "change alone"))
    if not config.enabled:
        return Decision(SKIPPED, "opted_out", "the Deployment opted out of autorollback after the failure")
    if rollout.complete(deployment):
        return Decision(SKIPPED, "recovered", "the rollout completed after all; nothing to do")
    return None


def known_bad(deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> str | None:
    """A warning when a rollout starts on a template autorollback already rolled back away from."""
    revs = history.revisions(replicasets)
    current = history.current(revs, deployment["spec"]["template"])
    if current is None or not current.rolled_back_and_unproven:
        return None
    return (f"the template of revision {current.number} ({rollout.images(current.template)}) is being rolled out "
            f"again, but autorollback rolled back away from it at {current.mark(history.ROLLED_BACK_AT)} after it "
            "failed. If it fails again it will not be rolled back a second time: revert it at its source "
            "(Git, CI) instead of re-applying it.")
