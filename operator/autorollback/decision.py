"""What to do about a Deployment: the whole decision, as data, with no I/O."""
from dataclasses import dataclass, field
from typing import Any

from autorollback import checkpoints, history, ledger, times
from autorollback.config import PREFIX, Config
from autorollback.gitrevert import core as gitcore
from autorollback.signals.base import Facts
from autorollback.signals.deadline import ControllerDeadline, MeasuredDeadline
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import DEADLINE_EXCEEDED, Failure, Workload, images
from autorollback.workloads.deployment import DEPLOYMENTS

HISTORY_NEEDED = 2  # revisionHistoryLimit below this loses the ReplicaSets a rollback needs


@dataclass(frozen=True)
class Decision:
    result: Result
    reason: str  # machine-friendly, the metric's `reason` label: a Reason, or the failure's own reason
    message: str  # what the Event and the log line say
    failure: Failure | None = None
    failing: history.Revision | None = None
    target: history.Revision | None = None
    patch: list[dict[str, Any]] = field(default_factory=list)
    first_report: bool = False  # this failure was never reported before: say RolloutFailed

    @property
    def event_reason(self) -> str:
        return {Result.SUCCESS: "RolledBack", Result.SKIPPED: "RollbackSkipped",
                Result.IMPOSSIBLE: "RollbackImpossible", Result.ABANDONED: "RollbackAbandoned",
                Result.FAILED: "RollbackFailed", Result.DRY_RUN: "RollbackPlanned"}[self.result]

    @property
    def event_type(self) -> str:
        return "Normal" if self.result in (Result.SUCCESS, Result.DRY_RUN) else "Warning"


def describe(revision: int, template: dict[str, Any]) -> str:
    return f"revision {revision} ({images(template)})"


def change_cause(failing: str, target: str, failure: Failure) -> str:
    return f"autorollback: rolled back from {failing} to {target}: {failure.reason}"


PAUSED_OUTCOME = f"{Result.SKIPPED} ({Reason.PAUSED})"


def outcome(d: Decision, at: str) -> str:
    return f"{d.result} ({d.reason}) at {at}"


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
    return (failed.at(history.FAILED_AT) == times.parse(failure.updated)
            and failed.mark(history.OUTCOME).startswith(Result.SUCCESS))


def already_handled(failing: history.Revision | None, failure: Failure, paused: bool, dry_run: bool) -> bool:
    """Reported and dealt with. A failure deferred because the Deployment was paused or in dry-run
    is due again once that ends: neither change makes the controller report a new failure."""
    if failing is None or not seen_before(failing, failure):
        return False
    previous = failing.mark(history.OUTCOME)
    if previous.startswith(PAUSED_OUTCOME) and not paused:
        return False
    return not (previous.startswith(Result.DRY_RUN) and not dry_run)


def _nothing(reason: Reason, message: str, failure: Failure | None = None) -> Decision:
    return Decision(Result.NOTHING, reason, message, failure=failure)


NO_PROGRESS = PREFIX + "no-progress"  # checkpoint of a deadline autorollback measures (checkpoints.mark)


@dataclass(frozen=True)
class Measured:
    """How long the current template has made no progress under a condition about another one, as
    this process measured it on its monotonic clock (resumed from a checkpoint after a restart)."""
    seconds: float
    since: str  # this process's wall-clock stamp of its start: recorded (marks, ledger) as the failure's id


@dataclass(frozen=True)
class Checkpointed:
    """The current template's ReplicaSet, where a measured deadline is checkpointed, and the
    NO_PROGRESS value it carries now (as written by anyone: verified by checkpoints.resumed)."""
    name: str
    uid: str
    value: str


def checkpoint_holder(replicasets: list[dict[str, Any]], template: dict[str, Any],
        workload: Workload = DEPLOYMENTS) -> Checkpointed | None:
    """Where the measurement of the current template's lack of progress is checkpointed (None: no
    ReplicaSet of that template yet)."""
    rs = workload.current(workload.revisions(replicasets), template)
    raw = next((r for r in replicasets if rs is not None and r["metadata"]["name"] == rs.name), None)
    if raw is None:
        return None
    meta = raw["metadata"]
    return Checkpointed(meta["name"], meta.get("uid") or "", (meta.get("annotations") or {}).get(NO_PROGRESS, ""))


def checkpoint(key: bytes, holder: Checkpointed, state_digest: str, seconds: float) -> str:
    """The NO_PROGRESS mark: elapsed seconds of one no-progress state, bound to its ReplicaSet (name
    and uid) and signed with the operator's key."""
    return checkpoints.mark(key, holder.name, holder.uid, state_digest, seconds)


def checkpointed(replicasets: list[dict[str, Any]], template: dict[str, Any], state_digest: str,
                 key: bytes) -> float:
    """Seconds a previous process measured for this state on the current template's ReplicaSet
    (0: none). A mark of another state, one copied from another ReplicaSet, or one not signed with
    this key (a tenant's, another process's without the shared key) counts for nothing."""
    holder = checkpoint_holder(replicasets, template)
    if holder is None:
        return 0.0
    return checkpoints.resumed(key, holder.value, holder.name, holder.uid, state_digest)


def decide(deployment: dict[str, Any], replicasets: list[dict[str, Any]], config: Config, now: str,
           measured: Measured | None = None, signal: Failure | None = None,
        workload: Workload = DEPLOYMENTS) -> Decision:
    """The rollback decision for the Deployment as it is now, with its ReplicaSets.

    now: this process's wall clock, only written down (the ledger's `at`), never compared here.
    measured: how long the operator has seen the current template make no progress under a
    condition carried over from an earlier one (the controller keeps it until it sees progress).
    signal: a fast failure signal of the current template's pods (autorollback.io/fail-on), which
    then stands for the failure instead of the Progressing condition."""
    meta, spec = deployment["metadata"], deployment["spec"]
    name = meta["name"]
    facts = Facts(deployment, replicasets, kind=workload)
    controller = ControllerDeadline().verdict(facts)
    failure = signal if signal is not None else (controller.failure if controller else None)
    left_over = "" if failure else workload.left_over(deployment)
    if not config.enabled:
        return _nothing(Reason.OPTED_OUT, "the Deployment is not opted in", failure)
    if failure is None and not left_over:
        return _nothing(Reason.NO_FAILURE, "the rollout has not failed")
    entries = ledger.of([deployment, *replicasets])
    revs = workload.revisions(replicasets, entries)
    failing = workload.current(revs, spec["template"])
    if left_over and failing is not None and (
            # the condition is about this rollout, unless it is from before autorollback restored this template
            (left_over == failing.name and not failing.restored_and_unproven)
            # or it names an earlier ReplicaSet, and this one was seen complete since it last failed
            or (left_over != failing.name and failing.healthy and not failing.restored_and_unproven)):
        return _nothing(Reason.NO_FAILURE, "the rollout completed (some pods are not available now)")
    done = ledger.find(entries, failure.id) if failure else None
    if done is not None and failure is not None:  # done: failure's own entry
        rolled_from = next((r for r in revs if r.name == done.failed), None)
        if rolled_from is not None and not rollback_reported(rolled_from, failure):
            # the rollback patch went through, but what followed it did not (a crash, a lost answer)
            restored = next((r for r in revs if r.name == done.restored), None)
            return Decision(Result.SUCCESS, failure.reason, (
                f"rolled back from {describe(rolled_from.number, rolled_from.template)} to "
                f"{describe(restored.number, restored.template) if restored else done.restored}: {failure.reason}"),
                failure=failure, failing=rolled_from, target=restored, first_report=True)
        if failing is None or failure.replicaset != failing.name:
            failure = None  # carried over; whether the restored template progresses is decided below
        else:
            return _nothing(Reason.ROLLED_BACK, "this failure was rolled back already", failure)
    if failing is None:
        return _nothing(Reason.STALE, "the current template's ReplicaSet does not exist yet")
    if failure is None or failure.replicaset != failing.name:
        carried = failure.replicaset if failure else (left_over or (done.failed if done else ""))
        shown = (f"the earlier timeout of {carried or 'another ReplicaSet'}" if not left_over
                 else f"ReplicaSet {carried}'s completed rollout" if left_over != failing.name
                 else f"ReplicaSet {carried}'s completed rollout from before it was rolled back to")
        timed_out = MeasuredDeadline(measured.seconds, measured.since, shown).verdict(facts) if measured else None
        if timed_out is None or timed_out.failure is None:  # a MeasuredDeadline verdict always has one
            return _nothing(Reason.STALE, (
                f"the Progressing condition still shows {shown}, not the current template's ReplicaSet "
                f"({failing.name}): it was left over from an earlier template"), controller.failure if controller else None)
        failure = timed_out.failure
        if ledger.find(entries, failure.id):
            return _nothing(Reason.ROLLED_BACK, "this failure was rolled back already", failure)
    if already_handled(failing, failure, workload.paused(deployment), config.dry_run):
        return _nothing(Reason.HANDLED, "this failure was handled already", failure)

    first = not seen_before(failing, failure)
    from_text = describe(failing.number, spec["template"])

    def decision(result: Result, reason: str, message: str, **kw: Any) -> Decision:
        return Decision(result, reason, message, failure=failure, failing=failing, first_report=first, **kw)

    if failing.rolled_back_and_unproven:
        return decision(Result.ABANDONED, Reason.REAPPLIED, (
            f"{from_text} failed again after autorollback already rolled back away from it at "
            f"{_when(failing.last_rolled_back)}: the known-bad template was re-applied (by a person or a "
            "GitOps controller). Not rolling back again to avoid a loop: fix or revert the source of the "
            f"Deployment, then roll out again.{_revert_pr(failing)}"))
    if failing.restored_and_unproven:
        return decision(Result.ABANDONED, Reason.RESTORED_REVISION_FAILED, (
            f"{from_text} was restored by autorollback at {_when(failing.last_restored)} and failed as "
            "well. Not walking further back: manual intervention needed (inspect the pods, then roll out a "
            "fix or `kubectl rollout undo --to-revision=N`)."))
    if workload.paused(deployment):
        return decision(Result.SKIPPED, Reason.PAUSED, (
            f"{from_text} failed but the Deployment is paused, so it is not rolled back. Resume it with "
            f"'kubectl rollout resume deployment/{name} -n {meta['namespace']}' and autorollback rolls it back "
            "then."))

    target = history.choose_target(revs, failing)
    if target.revision is None:
        return decision(Result.IMPOSSIBLE, Reason.NO_TARGET, (
            f"{from_text} failed and cannot be rolled back: {target.why}. Roll out a fixed version; keep "
            f"spec.revisionHistoryLimit at {HISTORY_NEEDED} or more so autorollback has something to return to."))
    to_text = describe(target.revision.number, target.revision.template)
    if workload.same_template(target.revision.template, spec["template"]):
        return decision(Result.SKIPPED, Reason.TEMPLATE_MATCHES, (
            f"{from_text} failed but its template already matches {to_text}: there is nothing different to "
            "roll back to"), target=target.revision)

    cause = change_cause(from_text, to_text, failure)
    entry = ledger.Entry(failed=failing.name, restored=target.revision.name, failure=failure.updated, at=now,
                         reason=failure.reason, revision=failing.number)
    patch = workload.undo_patch(deployment, target.revision, cause, ledger.merge((entry,), entries))
    if config.dry_run:
        return decision(Result.DRY_RUN, Reason.DRY_RUN, (
            f"dry-run: would roll back from {from_text} to {to_text} ({target.why}) by setting spec.template "
            f"to ReplicaSet {target.revision.name}'s template and kubernetes.io/change-cause to \"{cause}\"; "
            "nothing was changed"), target=target.revision, patch=patch)
    return decision(Result.SUCCESS, failure.reason, (
        f"rolled back from {from_text} to {to_text}: {failure.reason} ({target.why})"),
        target=target.revision, patch=patch)


def _when(entry: ledger.Entry | None) -> str:
    return entry.at if entry else "an unknown time"


def _revert_pr(rs: history.Revision) -> str:
    url = rs.mark(gitcore.PR_MARK)
    return f" The revert pull request is open: {url} (merge it)." if url.startswith("http") else ""


def owned_replicaset(deployment: dict[str, Any], replicaset: dict[str, Any] | None) -> bool:
    refs = (replicaset or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == deployment["metadata"]["uid"] for r in refs)


def healthy_mark(deployment: dict[str, Any], replicaset: dict[str, Any] | None,
        workload: Workload = DEPLOYMENTS) -> dict[str, str] | None:
    """The mark to write when the Deployment (as it was seen complete) completed its rollout on this
    ReplicaSet (as it is now); None: nothing to write. The mark names the revision that completed
    (the Deployment's, as seen complete: the ReplicaSet may have been reused by a later rollout
    since) and the failure of that same revision it outlived.
    Before writing one that outlives a failure, the shell checks that the rollout is still complete
    (`outlives_failure`): a failure recorded after the completion was seen must not be outlived."""
    # the counts say the current template's pods are all there and available; the condition may
    # still name an earlier ReplicaSet (complete_left_over): the template tells which one completed
    if not (workload.completed(deployment) and replicaset and owned_replicaset(deployment, replicaset)
            and workload.same_template(replicaset["spec"]["template"], deployment["spec"]["template"])):
        return None
    entries = ledger.parse((deployment["metadata"].get("annotations") or {}).get(ledger.KEY))
    rev = workload.revisions([replicaset], entries)
    if not rev or (rev[0].healthy and not rev[0].restored_and_unproven):
        return None  # known healthy since it last failed or was restored (or no revision number)
    number = workload.revision_of(deployment) or rev[0].number
    outlived = rev[0].failure_id if rev[0].failed_in == number else ""
    return {history.HEALTHY_AT: history.bind(replicaset["metadata"]["name"], history.health_payload(number, outlived))}


def outlives_failure(mark: dict[str, str]) -> bool:
    health = history.parse_health(mark[history.HEALTHY_AT].partition(" ")[2])
    return bool(health and health.outlived)


def still_complete(seen: dict[str, Any], now: dict[str, Any], workload: Workload = DEPLOYMENTS) -> bool:
    """The rollout seen complete is complete now, in the same revision."""
    return (workload.completed(now) == workload.completed(seen)
            and workload.revision_of(now) == workload.revision_of(seen))


def restoring(deployment: dict[str, Any], replicaset: str) -> ledger.Entry | None:
    """The rollback that restored this ReplicaSet, if any."""
    entries = ledger.parse((deployment["metadata"].get("annotations") or {}).get(ledger.KEY))
    return next((e for e in entries if e.restored == replicaset), None)


def settling(deployment: dict[str, Any], replicaset: dict[str, Any],
        workload: Workload = DEPLOYMENTS) -> ledger.Entry | None:
    """The rollback this completion settles: one that restored the ReplicaSet (as read before its
    healthy mark is written) after it was last healthy. An older one was settled by an earlier
    completion and must not be reported again when the template completes once more."""
    entries = ledger.parse((deployment["metadata"].get("annotations") or {}).get(ledger.KEY))
    rev = workload.revisions([replicaset], entries)
    return rev[0].last_restored if rev and rev[0].restored_and_unproven else None


def recovered_since(deployment: dict[str, Any], replicaset: str) -> str:
    """When autorollback restored this ReplicaSet, if that is the rollback this completion ends."""
    entry = restoring(deployment, replicaset)
    return entry.at if entry else ""


def known_bad(deployment: dict[str, Any], replicasets: list[dict[str, Any]],
        workload: Workload = DEPLOYMENTS) -> str | None:
    """A warning when the template is one autorollback rolled back away from (and not proven since)."""
    entries = ledger.of([deployment, *replicasets])
    revs = workload.revisions(replicasets, entries)
    rs = workload.current(revs, deployment["spec"]["template"])
    if rs is None or not rs.rolled_back_and_unproven or history.newer(revs, rs):
        return None  # (newer: the Deployment was read before the change its ReplicaSets show)
    name = rs.name
    entry = next(e for e in entries if e.failed == name)
    return (f"ReplicaSet {name} ({images(rs.template)}) is being rolled out again, but autorollback "
            f"rolled back away from it at {entry.at} after it failed ({entry.reason or 'failed'}). If it fails "
            "again it will not be rolled back a second time: revert it at its source (Git, CI) instead of "
            f"re-applying it.{_revert_pr(rs)}")


def stray_marks(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch removing ReplicaSet marks from the Deployment (kubectl undo copies them there, and
    the controller would copy them over a reused ReplicaSet's own); each removal guarded by a test
    of its value, so that nothing newer is removed. Empty when there are none."""
    ann = deployment["metadata"].get("annotations") or {}
    ops: list[dict[str, Any]] = []
    for key in (*history.MARKS, gitcore.PR_MARK, NO_PROGRESS):
        if key in ann:
            path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
            ops += [{"op": "test", "path": path, "value": ann[key]}, {"op": "remove", "path": path}]
    return ops


def history_too_short(deployment: dict[str, Any]) -> str | None:
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None or limit >= HISTORY_NEEDED:
        return None
    return (f"spec.revisionHistoryLimit is {limit}: the controller deletes old ReplicaSets as soon as a rollout "
            "completes, so after a completed rollout there may be no revision to roll back to. Set it to "
            f"{HISTORY_NEEDED} or more.")
