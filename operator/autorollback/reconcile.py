"""Carries out what a Deployment's state asks for, in a worker thread: gathers facts through
`kube`, asks `decision`, applies the answer, and tells everyone (Events, metrics, one log line
per decision). It never touches the shared memory: it returns a Result that the event loop
records, and an API error that is worth another try makes the work go back in the queue.

Order of writes for a rollback, and why a crash anywhere is safe:
1. the rollback PATCH carries the ledger entry (same write): before it, nothing happened and the
   failure is decided again after a restart; after it, the ledger says "rolled back" and no
   replica can roll the same failure back again (the resourceVersion precondition stops a second
   writer that decided on the state before the patch);
2. Events and metrics: lost on a crash in between, never repeated;
3. the failing ReplicaSet's marks (failed-at, outcome): only for people and for the outcomes that
   do not patch the Deployment; a rollback is known from the ledger without them.
"""
import base64
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autorollback import checkpoints, decision, faults, history, kube, logs, retry, state, telemetry, times, vocab
from autorollback.config import Config, parse as parse_config, quote
from autorollback.decision import Decision
from autorollback.events import post
from autorollback.gitrevert import core as gitcore, worker as gitworker
from autorollback.signals import core as signals
from autorollback.signals.base import Facts
from autorollback.vocab import Job, Reason
from autorollback.workloads import deployment as deployments
from autorollback.workloads.base import DEADLINE_EXCEEDED, Failure, images
from autorollback.workloads.deployment import DEPLOYMENTS

log = logs.get(__name__)
CONFLICT_ATTEMPTS = 5  # re-reads and re-decisions after a 409
CONSISTENT_READS = 10  # tries at reading the Deployment unchanged around the list of its ReplicaSets


def now() -> str:
    return times.stamp(dt.datetime.now(dt.UTC))


STALE, CHECKPOINTS, RESTORED = "stale", "checkpoints", "restored"  # Clocks groups (state.OBSERVED, signals.GRACES)
ENDED = ""  # in STALE: the last state of no progress this process timed is over (never a stale_key())
CHECKPOINT_EVERY = 30.0  # seconds between checkpoints of a measured deadline (a third of a shorter deadline)
KEY_ATTEMPTS = 5  # reads of the checkpoint Secret at startup before this process makes do with a key of its own

# The key that signs checkpoints (checkpoints.py): the Secret's, shared by every replica and kept
# across restarts, once configure_checkpoints() loaded it; until then (a developer's laptop, no
# Secret) one of this process's own, so that no other process's checkpoint counts: later, never sooner.
_checkpoint_key: bytes = checkpoints.new_key()


def configure_checkpoints(namespace: str | None, secret: str | None) -> bool:
    """Load (or create) the key that signs checkpoints from the Secret `secret` in the operator's own
    namespace. Without both, or when the Secret cannot be had, this process keeps a key of its own
    (its checkpoints are then not resumed by another process). True: the Secret's key is in use."""
    global _checkpoint_key
    if not namespace or not secret:
        log.info("measured deadlines are checkpointed under a key of this process only (no --checkpoint-secret "
                 "or $POD_NAMESPACE): another process starts them again")
        return False
    for attempt in range(KEY_ATTEMPTS):
        try:
            _checkpoint_key = _checkpoint_secret(namespace, secret)
            log.info("checkpoint key loaded", secret=secret, namespace=namespace)
            return True
        except kube.ApiError as e:
            if not retry.retryable(e.status) or attempt == KEY_ATTEMPTS - 1:
                why = str(e)
                break
            time.sleep(retry.delay(attempt, e.retry_after))
        except ValueError as e:  # a Secret that is not ours to repair
            why = str(e)
            break
    log.error("cannot read or create the checkpoint Secret: measured deadlines are checkpointed under a key "
              "of this process only (after a restart or failover they start again: later, never sooner)",
              secret=secret, namespace=namespace, error=why)
    return False


def _checkpoint_secret(namespace: str, name: str) -> bytes:
    """The Secret's `key`, creating the Secret with a random one if it does not exist (another
    replica creating it at the same time: 409, read it). Its own namespace, by name only."""
    path = f"/api/v1/namespaces/{namespace}/secrets"
    for _ in range(2):
        try:
            found = kube.request("GET", f"{path}/{name}")
        except kube.ApiError as e:
            if e.status != 404:
                raise
        else:
            raw = (found.get("data") or {}).get("key") or ""
            try:
                key = base64.b64decode(raw, validate=True)
            except ValueError:
                key = b""
            if len(key) < checkpoints.MIN_KEY_BYTES:
                raise ValueError(f"Secret {namespace}/{name} has no `key` of {checkpoints.MIN_KEY_BYTES} bytes or more")
            return key
        key = checkpoints.new_key()
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "autorollback"}},
                "data": {"key": base64.b64encode(key).decode()}}
        try:
            kube.request("POST", path, body=body, query={"fieldManager": kube.FIELD_MANAGER}, unguarded=True)
            return key
        except kube.ApiError as e:
            if e.status != 409:
                raise  # 409: another replica created it first: read theirs
    raise kube.ApiError(409, "Conflict", f"Secret {namespace}/{name} was created and then could not be read")


def _since(clocks: times.Clocks, group: str, key: str) -> float | None:
    """Seconds since this process first saw that state, on its monotonic clock (None: it did not)."""
    first = clocks.since(group, key)
    return None if first is None else max(0.0, times.monotonic() - first)


class Unsettled(Exception):
    """No consistent read could be had: the Deployment kept changing. Not an API error."""


@dataclass
class Work:
    uid: str
    namespace: str
    name: str
    deployment: dict[str, Any]  # the latest state the watch delivered
    config: Config
    jobs: set[Job]
    healthy_evidence: tuple[str, dict[str, Any]] | None = None
    api_failure_reported: str = ""
    clocks: times.Clocks = field(default_factory=times.Clocks)  # the memo's timers (monotonic), shared
    problems_done: dict[str, str] = field(default_factory=dict)  # annotation key -> digest already reported
    pods: list[dict[str, Any]] = field(default_factory=list)  # the Deployment's pods, while they are watched
    pods_seen: int = 0


@dataclass
class Result:
    done: dict[str, Any] = field(default_factory=dict)  # Memo field -> new value
    retry: kube.ApiError | None = None  # try again later
    recheck_in: float | None = None  # look again after this many seconds even if nothing changes
    series: set[tuple[str, ...]] = field(default_factory=set)  # metric label values used
    patched: bool = False  # the Deployment was rolled back in this pass

    def recheck(self, seconds: float) -> None:
        self.recheck_in = seconds if self.recheck_in is None else min(self.recheck_in, seconds)


def _who(work: Work) -> dict[str, str]:
    return {"namespace": work.namespace, "deployment": work.name}


def run(work: Work) -> Result:
    result = Result()
    for job, fn in ((Job.PROBLEMS, _problems), (Job.HISTORY_LIMIT, _history), (Job.KNOWN_BAD, _known_bad),
                    (Job.HEALTHY, _healthy), (Job.FAILURE, _failure), (Job.FAST, _fast), (Job.STRAYS, _strays)):
        if job not in work.jobs:
            continue
        try:
            fn(work, result)
        except Unsettled as e:
            log.info("the Deployment kept changing while it was read; looking again shortly", job=job,
                     message=str(e), **_who(work))
            result.recheck(1.0)
        except kube.ApiError as e:
            telemetry.api_errors.labels(job, str(e.status)).inc()
            if retry.retryable(e.status):
                log.warning("API error, will try again", job=job, error=str(e), **_who(work))
                result.retry = e
            else:
                log.error("API error that another try cannot fix; giving up on it", job=job, error=str(e),
                          **_who(work))
    return result


def _problems(work: Work, result: Result) -> None:
    d = work.deployment
    for p in work.config.problems:
        if work.problems_done.get(p.key) == state.digest(p.value):
            continue  # this value was reported already; another key changed
        telemetry.invalid_annotations.labels(telemetry.DEPLOYMENT, work.namespace, work.name, p.key).inc()
        result.series.add(("invalid_annotations", telemetry.DEPLOYMENT, work.namespace, work.name, p.key))
        log.warning("invalid annotation", key=p.key, value=quote(p.value), message=p.message(),
                    **_who(work))
        post(d, "Warning", "InvalidAnnotation", p.message())
    result.done["problems_done"] = {p.key: state.digest(p.value) for p in work.config.problems}


def _history(work: Work, result: Result) -> None:
    message = decision.history_too_short(work.deployment)
    if message:
        log.warning("revision history too short", message=message, **_who(work))
        post(work.deployment, "Warning", "RevisionHistoryTooShort", message)
    result.done["history_done"] = (work.deployment.get("spec") or {}).get("revisionHistoryLimit")


def _known_bad(work: Work, result: Result) -> None:
    message = decision.known_bad(work.deployment, kube.DEPLOYMENTS.history(work.deployment))
    if message:
        log.warning("known-bad template re-applied", message=message, **_who(work))
        post(work.deployment, "Warning", "KnownBadTemplate", message)
    result.done["known_bad_done"] = state.rollout_key(work.deployment)


def _strays(work: Work, result: Result) -> None:
    """Marks copied onto the Deployment (by a kubectl undo) go: they describe another ReplicaSet."""
    ops = decision.stray_marks(work.deployment)
    if not ops:
        return
    try:
        kube.DEPLOYMENTS.patch(work.namespace, work.name, ops)
        log.info("removed ReplicaSet marks copied onto the Deployment", **_who(work))
    except kube.ApiError as e:
        if e.status not in (409, 422):  # changed meanwhile: the next event decides again
            raise


def _healthy(work: Work, result: Result) -> None:
    """Mark the ReplicaSet that a watched state showed complete; measure recovery after a rollback."""
    if work.healthy_evidence is None:
        return
    name, evidence = work.healthy_evidence
    rs = kube.DEPLOYMENTS.get_revision(work.namespace, name)
    template = evidence["spec"]["template"]
    if rs is not None and not DEPLOYMENTS.same_template(rs["spec"]["template"], template):
        # the condition still names an earlier ReplicaSet (complete_left_over); the counts that
        # showed the rollout complete are about the current template's
        history = kube.DEPLOYMENTS.history(evidence)
        current = DEPLOYMENTS.current(DEPLOYMENTS.revisions(history), template)
        rs = next((r for r in history if current is not None and r["metadata"]["name"] == current.name), None)
        name = rs["metadata"]["name"] if rs is not None else name
    mark = decision.healthy_mark(evidence, rs)
    if mark and decision.outlives_failure(mark) and not decision.still_complete(
            evidence, kube.DEPLOYMENTS.get(work.namespace, work.name)):
        mark = None  # not complete any more: whether it failed since is for the next look to say
    if mark:
        # measured only by the process that rolled back (on its monotonic clock), never from the ledger's time
        age = _since(work.clocks, RESTORED, name) if decision.recovered_since(evidence, name) else None
        work.clocks.forget(RESTORED, name)
        if age is not None:
            telemetry.recovery_seconds.labels(telemetry.DEPLOYMENT, work.namespace).observe(age)
            log.info("recovered after rollback", replicaset=name, images=images(rs["spec"]["template"]),
                     seconds=age, **_who(work))
    # progress, to the end: a measured deadline's checkpoint on this ReplicaSet is over (never resumed)
    checkpointed = rs is not None and decision.NO_PROGRESS in (rs["metadata"].get("annotations") or {})
    if mark or checkpointed:
        cleared: dict[str, str | None] = {decision.NO_PROGRESS: None} if checkpointed else {}
        kube.DEPLOYMENTS.mark_revision(work.namespace, name, {**(mark or {}), **cleared})
    _measured_ended(work, "", "")
    _revert_if_lost(work, evidence, rs, result)
    result.done["healthy_done"] = state.completion_key(evidence)
    result.done["healthy_evidence"] = work.healthy_evidence  # cleared unless newer evidence came meanwhile


def _revert_if_lost(work: Work, deployment: dict[str, Any], restored: dict[str, Any] | None,
                    result: Result) -> None:
    """A rollback settled. If what follows its patch was lost (the process that rolled back died
    first), finish it now: the Events, the failed revision's marks, the revert pull request. The
    ledger says it happened; each step is idempotent or guarded by the marks."""
    entry = decision.restoring(deployment, restored["metadata"]["name"]) if restored else None
    if entry is None:
        return
    failed = kube.DEPLOYMENTS.get_revision(work.namespace, entry.failed)
    if failed is None:
        return
    f, r = DEPLOYMENTS.revisions([failed])[0], DEPLOYMENTS.revisions([restored])[0]
    failure = Failure(replicaset=f.name, reason=entry.reason or DEADLINE_EXCEEDED,
                              message="(from the rollback ledger)", updated=entry.failure, revision=f.number)
    if not decision.rollback_reported(f, failure):
        if decision.settling(deployment, restored) != entry:
            return  # settled by an earlier completion; the failed revision's marks moved on since
        d = Decision(vocab.Result.SUCCESS, failure.reason, (
            f"rolled back from {decision.describe(f.number, f.template)} to {decision.describe(r.number, r.template)}"
            f": {failure.reason} (reported late: what follows a rollback patch was lost, as when the operator stops "
            "or the patch's answer never comes)"),
            failure=failure, failing=f, target=r, first_report=True)
        report(work, deployment, d, result)
    elif gitcore.wanted(deployment["metadata"].get("annotations")) and not f.mark(gitcore.PR_MARK):
        gitworker.submit(deployment, f, gitcore.Facts(
            work.namespace, work.name, f.number, images(f.template), r.number, images(r.template),
            failure.reason, failure.message, r.template), None)


def _fast(work: Work, result: Result) -> None:
    """A fast failure signal of the new pods: decided and carried out like a deadline failure."""
    if result.patched:
        return  # the template changed under these pods: the next pass judges the new one
    seen = (work.pods_seen, state.fast_key(work.deployment, work.config))
    grace_running = False

    def signal(deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> Failure | None:
        nonlocal grace_running
        source = signals.PodSignals(parse_config(deployment["metadata"].get("annotations")).fail_fast)
        verdict = source.verdict(Facts(deployment, replicasets, work.pods, work.clocks, times.monotonic()))
        if verdict.recheck_in is not None:
            grace_running = True
            result.recheck(verdict.recheck_in + 0.05)
        return verdict.failure

    _rollback(work, result, signal)
    if not grace_running:
        result.done["fast_done"] = seen


def _failure(work: Work, result: Result) -> None:
    _rollback(work, result, None)


def _rollback(work: Work, result: Result,
              signal: Callable[[dict[str, Any], list[dict[str, Any]]], Failure | None] | None) -> None:
    """Decide on the failure (the Progressing condition's, or the fast signal's) and roll back;
    on a conflict, read again and decide again.

    The watch's state may be seconds old when a busy operator gets to it, older than the ReplicaSets
    listed now (a rollback, or a person's undo, since). So a decision counts only if the Deployment did
    not change from the state it was made on until after the list: the rollback PATCH's resourceVersion
    precondition proves that for a rollback, a GET for any other outcome before it is told."""
    faults.point("before_read")
    deployment, replicasets, confirmed = work.deployment, kube.DEPLOYMENTS.history(work.deployment), False

    def out_of_date() -> bool | None:
        """Read again if the Deployment changed since the state in hand (True); None: it is gone."""
        nonlocal deployment, replicasets, confirmed
        confirmed = True
        unchanged = _unchanged(work, deployment)
        if unchanged is None:
            return None
        if unchanged:
            return False
        read = _read(work)
        if read is None:
            return None
        deployment, replicasets = read
        return True

    for _ in range(CONFLICT_ATTEMPTS):
        config = parse_config(deployment["metadata"].get("annotations"))
        fast = signal(deployment, replicasets) if signal else None
        if signal and fast is None:
            return  # no fast signal (yet): the deadline path decides about the condition
        measured, starting = (None, None) if signal else _measure(work, deployment, replicasets)
        d = decision.decide(deployment, replicasets, config, now(), measured=measured, signal=fast)
        if d.result == vocab.Result.SUCCESS and d.patch:
            faults.point("before_patch")
            try:
                kube.DEPLOYMENTS.undo(work.namespace, work.name, d.patch)
                faults.point("after_patch")
            except kube.ApiError as e:
                if e.status == 409:  # someone wrote in between: decide again on what is there now
                    read = _read(work, wait_observed=True)
                    if read is None:
                        return
                    deployment, replicasets, confirmed = (*read, True)
                    continue
                if e.status == 404:
                    return  # deleted meanwhile
                if retry.retryable(e.status):
                    key = state.failure_key(deployment, config)
                    if e.status in (401, 403, 429) and key != work.api_failure_reported and _unchanged(work, deployment):
                        _tell_api_trouble(work, d, e)  # refused, not lost (and about a state still current)
                        result.done["api_failure_reported"] = key
                    raise
                # the API will never take this patch: say so, for good (refused before its
                # precondition was checked, so it is confirmed below like any other outcome)
                telemetry.api_errors.labels("failure", str(e.status)).inc()
                d = Decision(vocab.Result.FAILED, Reason.API_ERROR, (
                    f"rollback to revision {d.target.number} was refused: {e}. Roll back by hand with "
                    "`kubectl rollout undo`."), failure=d.failure, failing=d.failing, target=d.target,
                    first_report=d.first_report)
            else:
                result.patched = True
                break
        if d.result != vocab.Result.NOTHING and not confirmed:  # about to be told on the watched state: confirm
            changed = out_of_date()
            if changed is None:
                return
            if changed:  # decide again on what is there now
                continue
        break
    else:
        raise kube.ApiError(0, "Conflict", f"the Deployment kept changing: decided {CONFLICT_ATTEMPTS} times, each time out of date")
    if d.result != vocab.Result.NOTHING:
        report(work, deployment, d, result)
    else:
        log.debug("nothing to do about the failure", reason=d.reason, message=d.message, **_who(work))
    if signal:
        return  # the bookkeeping below is the Progressing condition's
    if d.reason == Reason.STALE:  # the restored template may never progress: look again until it does
        deadline = float(deployment["spec"].get("progressDeadlineSeconds") or 600)
        every = min(CHECKPOINT_EVERY, deadline / 3)
        _start(work, starting)
        _checkpoint(work, deployment, replicasets, measured, every)
        result.recheck(max(0.5, min(deadline - measured.seconds + 0.05, every)))
        return
    holder = decision.checkpoint_holder(replicasets, deployment["spec"]["template"])
    _measured_ended(work, holder.name if holder else "", holder.value if holder else "")
    result.done["failure_done"] = state.failure_key(deployment, parse_config(
        deployment["metadata"].get("annotations")))


@dataclass(frozen=True)
class _Start:
    """A measurement this pass would start (carried out only where the decision finds the state stale)."""
    key: str  # state.stale_key()
    resume: float  # seconds resumed from a genuine checkpoint (0: from now)
    since: str  # the measurement's name (decision.Measured.since)
    clear: decision.Checkpointed | None  # the mark to remove before it starts (an older episode's, or one that does not count)


def _measure(work: Work, deployment: dict[str, Any],
             replicasets: list[dict[str, Any]]) -> tuple[decision.Measured, _Start | None]:
    """How long this state of no progress has lasted: on this process's monotonic clock from when it
    first saw it, or, on this process's first look only, from a checkpoint a previous process left
    on the ReplicaSet that the operator's key signed for this ReplicaSet and state (later, never
    sooner). Any progress is another state, timed anew: the older state's mark is removed before
    (_start), so that no process can resume it should that state come back (another episode).
    No I/O here; a state this process is not timing yet comes back as a _Start."""
    key = state.stale_key(deployment)
    timing = work.clocks.keys(STALE)
    if key in timing:
        seconds = work.clocks.track(STALE, [key], times.monotonic())[key]
        # a name for this measurement while it lasts (the failure's id if it runs out): its start, on this
        # process's wall clock, written down like every time autorollback records, compared with nothing here
        since = work.clocks.label(STALE, key, lambda: times.stamp(
            dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)))
        return decision.Measured(seconds, since), None
    template = deployment["spec"]["template"]
    holder = decision.checkpoint_holder(replicasets, template)
    # resumed only on this process's first look (a restart, a failover in the middle of the
    # measurement); a state it saw begin (progress, or the end of the last one) starts from nothing
    resume = decision.checkpointed(replicasets, template, state.digest(key), _checkpoint_key) if not timing else 0.0
    since = times.stamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=resume))
    clear = holder if holder is not None and holder.value and not resume else None
    return decision.Measured(resume, since), _Start(key, resume, since, clear)


def _start(work: Work, start: _Start | None) -> None:
    """Start timing a state: first remove a mark that must never be resumed (raises on failure: the
    pass is tried again, and this state is still new to this process then)."""
    if start is None:
        return
    if start.clear is not None:
        kube.DEPLOYMENTS.mark_revision(work.namespace, start.clear.name, {decision.NO_PROGRESS: None})
    work.clocks.track(STALE, [start.key], times.monotonic(), resume={start.key: start.resume})
    work.clocks.label(STALE, start.key, lambda: start.since)
    work.clocks.forget(CHECKPOINTS)


def _measured_ended(work: Work, replicaset: str, value: str | None) -> None:
    """The state of no progress this process was timing is over (the rollout progressed, completed,
    or was decided about): its mark on that ReplicaSet goes (best effort), and the next state of no
    progress is a new episode to this process (started from nothing, never resumed)."""
    if not work.clocks.keys(STALE):
        return
    if replicaset and value:
        try:
            kube.DEPLOYMENTS.mark_revision(work.namespace, replicaset, {decision.NO_PROGRESS: None})
        except kube.ApiError as e:
            telemetry.api_errors.labels("checkpoint", str(e.status)).inc()
            log.warning("cannot remove the no-progress checkpoint (removed when the next measurement starts)",
                        replicaset=replicaset, error=str(e), **_who(work))
    work.clocks.track(STALE, [ENDED], times.monotonic())
    work.clocks.forget(CHECKPOINTS)


def _checkpoint(work: Work, deployment: dict[str, Any], replicasets: list[dict[str, Any]],
                measured: decision.Measured | None, every: float) -> None:
    """Now and then, the elapsed seconds of a measured deadline go onto the current template's
    ReplicaSet, signed, so that the next process (a restart, another replica) resumes from them
    instead of starting again. Elapsed seconds only: no clock is compared across processes. Best effort."""
    holder = decision.checkpoint_holder(replicasets, deployment["spec"]["template"])
    if measured is None or holder is None or measured.seconds < every:
        return
    key = state.stale_key(deployment)
    last = work.clocks.since(CHECKPOINTS, key)
    if last is not None and times.monotonic() - last < every:
        return
    try:
        kube.DEPLOYMENTS.mark_revision(work.namespace, holder.name, {
            decision.NO_PROGRESS: decision.checkpoint(_checkpoint_key, holder, state.digest(key), measured.seconds)})
    except kube.ApiError as e:
        telemetry.api_errors.labels("checkpoint", str(e.status)).inc()
        log.warning("cannot record how long the rollout made no progress (measured again after a restart)",
                    replicaset=holder.name, error=str(e), **_who(work))
        return
    work.clocks.forget(CHECKPOINTS)
    work.clocks.note(CHECKPOINTS, key, times.monotonic())


def _read(work: Work, wait_observed: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The Deployment and its ReplicaSets as they were at one moment (None: deleted): the Deployment
    read before and after the list of ReplicaSets, unchanged in between.

    wait_observed: first give the controller a moment to look at the latest generation (it does
    within milliseconds): before that, the status does not say whether a failure stands."""
    waits, reads = (20 if wait_observed else 0), 0
    while reads < CONSISTENT_READS:
        before = _get(work)
        if before is None:
            return None
        if waits and not deployments.observed(before):
            waits -= 1
            time.sleep(0.1)
            continue
        replicasets = kube.DEPLOYMENTS.history(before)
        after = _get(work)
        if after is None:
            return None
        if _version(after) == _version(before):
            return after, replicasets
        reads += 1
    raise Unsettled(f"the Deployment changed during each of {CONSISTENT_READS} reads")


def _unchanged(work: Work, deployment: dict[str, Any]) -> bool | None:
    """Whether the Deployment is still at this state (None: it is gone)."""
    current = _get(work)
    return None if current is None else _version(current) == _version(deployment)


def _version(deployment: dict[str, Any]) -> str:
    return deployment["metadata"]["resourceVersion"]


def _get(work: Work) -> dict[str, Any] | None:
    """The Deployment now (None: deleted, or replaced by another of the same name)."""
    try:
        deployment = kube.DEPLOYMENTS.get(work.namespace, work.name)
    except kube.ApiError as e:
        if e.status == 404:
            return None
        raise
    return deployment if deployment["metadata"].get("uid") == work.uid else None


def _tell_api_trouble(work: Work, d: Decision, e: kube.ApiError) -> None:
    message = (f"rollback to revision {d.target.number} failed: {e}. autorollback keeps trying with backoff; "
               "check its RBAC and the API server, or roll back by hand with `kubectl rollout undo`.")
    log.error("rollback failed, will try again", error=str(e), **_who(work))
    post(work.deployment, "Warning", "RollbackFailed", message)


def report(work: Work, deployment: dict[str, Any], d: Decision, result: Result) -> None:
    """After the decision took effect: metrics, Events, the log line, and the failing ReplicaSet's marks."""
    ns, name, failure = work.namespace, work.name, d.failure
    if d.result != vocab.Result.SUCCESS:
        _mark_failing(ns, d)  # first: if it fails, the work is retried before anyone was told
    if d.result == vocab.Result.SUCCESS:
        # from the watch event that first showed this process the controller's timeout, on its monotonic clock
        age = _since(work.clocks, state.OBSERVED, failure.id) if (
            failure.reason == DEADLINE_EXCEEDED and not failure.measured) else None
        if age is not None:
            telemetry.reaction_seconds.labels(telemetry.DEPLOYMENT, ns).observe(age)
        if d.target is not None:
            work.clocks.forget(RESTORED)
            work.clocks.note(RESTORED, d.target.name, times.monotonic())
        telemetry.last_rollback.labels(telemetry.DEPLOYMENT, ns, name).set(time.time())
        result.series.add(("last_rollback", telemetry.DEPLOYMENT, ns, name))
    failed_template = d.failing.template if d.failing else deployment["spec"]["template"]
    if d.first_report:
        post(deployment, "Warning", "RolloutFailed",
             f"rollout of revision {d.failing.number} ({images(failed_template)}) failed: "
             f"{failure.reason}: {failure.message}", once=f"{failure.id} RolloutFailed")
        log.warning("rollout failed", revision=d.failing.number, images=images(failed_template),
                    reason=failure.reason, message=failure.message, replicaset=failure.replicaset, **_who(work))
    post(deployment, d.event_type, d.event_reason, d.message, once=f"{failure.id} {d.result} {d.event_reason}")
    # Counted once told: a leader that loses the Lease in the middle of reporting ends before this, and
    # the next leader, which reports late from the ledger, counts it (summed over replicas: once).
    if d.first_report:
        telemetry.failed_rollouts.labels(telemetry.DEPLOYMENT, ns, name).inc()
        result.series.add(("failed_rollouts", telemetry.DEPLOYMENT, ns, name))
    telemetry.rollbacks.labels(telemetry.DEPLOYMENT, ns, name, d.result, d.reason).inc()
    result.series.add(("rollbacks", telemetry.DEPLOYMENT, ns, name, d.result, d.reason))
    faults.point("after_events")
    level = "info" if d.event_type == "Normal" else "warning"
    getattr(log, level)(
        "rollback decision", result=d.result, reason=d.reason, message=d.message,
        from_revision=d.failing.number if d.failing else None, to_revision=d.target.number if d.target else None,
        from_images=images(failed_template),
        to_images=images(d.target.template) if d.target else None, **_who(work))
    if d.result in (vocab.Result.SUCCESS, vocab.Result.DRY_RUN) and d.target is not None:
        gitworker.submit(deployment, d.failing, gitcore.Facts(
            ns, name, d.failing.number, images(failed_template), d.target.number,
            images(d.target.template), failure.reason, failure.message, d.target.template), time.monotonic(),
            dry_run=d.result == vocab.Result.DRY_RUN)
        try:
            _mark_failing(ns, d)
        except kube.ApiError as e:
            log.warning("cannot mark ReplicaSet (the rollback is recorded in the ledger)",
                        replicaset=d.failing.name, error=str(e), **_who(work))


def _mark_failing(namespace: str, d: Decision) -> None:
    failure = d.failure
    kube.DEPLOYMENTS.mark_revision(namespace, d.failing.name, {
        history.FAILED_AT: history.bind(d.failing.name, history.failure_payload(failure.updated, d.failing.number)),
        history.FAILED_REASON: history.bind(d.failing.name, f"{failure.reason}: {failure.message}"[:500]),
        history.OUTCOME: history.bind(d.failing.name, decision.outcome(d, now())),
    })
