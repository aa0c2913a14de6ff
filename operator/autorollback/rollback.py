"""Carries out the decisions: gathers facts through `kube`, asks `decision`, applies the answer,
and tells everyone (Events, metrics, one log line per decision). Runs in a worker thread."""
import datetime as dt
import threading
import time
from dataclasses import replace
from collections.abc import Callable
from typing import Any, TypeVar

from autorollback import annotations, decision, history, kube, logs, metrics, rollout
from autorollback.annotations import Config
from autorollback.decision import Decision

log = logs.get(__name__)
T = TypeVar("T")
API_ATTEMPTS = 4  # per API call, with exponential backoff
CONFLICT_ATTEMPTS = 5  # re-reads and re-decisions after a 409
BACKOFF = 0.5  # seconds, doubled per attempt


class ApiFailure(Exception):
    pass


def now() -> str:
    return history.stamp(dt.datetime.now(dt.timezone.utc))


def _age(text: str) -> float | None:
    then = history.timestamp(text)
    if then == history.NEVER:
        return None
    return max(0.0, (dt.datetime.now(dt.timezone.utc) - then).total_seconds())


_stopping = threading.Event()


def stop() -> None:
    """The operator is shutting down: retries in worker threads give up instead of sleeping on."""
    _stopping.set()


def call(fn: Callable[..., T], *args: Any) -> T:
    """Retry transient API errors with backoff; a 409 is the caller's to handle."""
    for attempt in range(API_ATTEMPTS):
        last = attempt == API_ATTEMPTS - 1 or _stopping.is_set()
        try:
            return fn(*args)
        except kube.ApiException as e:
            if e.status in (400, 404, 409, 422) or last:
                raise ApiFailure(f"{e.status} {e.reason}: {kube.api_message(e)}") from e
        except OSError as e:  # connection errors from urllib3 are OSErrors
            if last:
                raise ApiFailure(str(e)) from e
        _stopping.wait(BACKOFF * 2 ** attempt)
    raise AssertionError("unreachable")


def post(deployment: dict[str, Any], type_: str, reason: str, message: str) -> None:
    try:
        call(kube.post_event, deployment, type_, reason, message)
    except ApiFailure as e:
        log.warning("cannot post Event", reason=reason, error=str(e), **_who(deployment))


def _who(deployment: dict[str, Any]) -> dict[str, str]:
    return {"namespace": deployment["metadata"]["namespace"], "deployment": deployment["metadata"]["name"]}


def _mark(namespace: str, rs: history.Revision | None, marks: dict[str, str]) -> None:
    if rs is None:
        return
    try:
        call(kube.annotate_replicaset, namespace, rs.name, marks)
    except ApiFailure as e:
        log.warning("cannot mark ReplicaSet", replicaset=rs.name, error=str(e), namespace=namespace)


def _handled_key(deployment: dict[str, Any], failure: rollout.Failure, config: Config) -> tuple[str, str, bool, bool]:
    return deployment["metadata"]["uid"], failure.since, rollout.paused(deployment), config.dry_run


def handle_failure(deployment: dict[str, Any], config: Config,
                   handled: set[tuple[str, str, bool, bool]]) -> Decision | None:
    """Act once on a failed rollout of an opted-in Deployment."""
    meta = deployment["metadata"]
    ns, name = meta["namespace"], meta["name"]
    who = _who(deployment)
    watched = rollout.failure(deployment)
    if watched is not None and _handled_key(deployment, watched, config) in handled:
        return None  # every later watch event of a handled failure ends here, without API calls
    try:
        deployment = call(kube.get_deployment, ns, name)
        replicasets = call(kube.replicasets_of, deployment)
    except ApiFailure as e:
        log.error("cannot read the Deployment's history", error=str(e), **who)
        return None
    failure = rollout.failure(deployment)
    if failure is None:
        return None
    paused = rollout.paused(deployment)
    key = _handled_key(deployment, failure, config)
    failing = history.current(history.revisions(replicasets), deployment["spec"]["template"])
    handled.add(key)
    if decision.already_handled(failing, failure, paused, config.dry_run):
        return None

    failed_template = deployment["spec"]["template"]
    if not decision.seen_before(failing, failure):
        metrics.failed_rollouts.labels(ns, name).inc()
        post(deployment, "Warning", "RolloutFailed",
             f"rollout of revision {failure.revision} ({rollout.images(failed_template)}) failed: "
             f"{failure.reason}: {failure.message}")
        log.warning("rollout failed", revision=failure.revision, images=rollout.images(failed_template),
                    reason=failure.reason, message=failure.message, **who)

    for _ in range(CONFLICT_ATTEMPTS):
        d = decision.decide(deployment, replicasets, config, failure)
        if d.result != decision.SUCCESS:
            break
        try:
            call(kube.patch_deployment, ns, name, d.patch)
        except ApiFailure as e:
            if getattr(e.__cause__, "status", None) != 409:
                d = Decision(decision.FAILED, "api_error", f"rollback to revision {d.target.number} failed: {e}. "
                             "Roll back by hand with `kubectl rollout undo`.", failing=d.failing, target=d.target)
                break
            try:  # someone wrote in between: look again before deciding again
                deployment = call(kube.get_deployment, ns, name)
                replicasets = call(kube.replicasets_of, deployment)
            except ApiFailure as e2:
                d = Decision(decision.FAILED, "api_error", f"cannot re-read after a conflict: {e2}", failing=d.failing)
                break
            config = annotations.parse(deployment["metadata"].get("annotations"))
            stop = decision.recheck(deployment, failed_template, config)
            if stop is not None:
                d = replace(stop, failing=d.failing)
                break
            continue
        age = _age(failure.since)
        if age is not None:
            metrics.reaction_seconds.labels(ns).observe(age)
        metrics.last_rollback.labels(ns, name).set(time.time())
        break
    else:
        d = Decision(decision.FAILED, "conflict", f"the Deployment kept changing; gave up after {CONFLICT_ATTEMPTS} "
                     "conflicting writes", failing=d.failing)
    finish(deployment, failure, d)
    return d


def finish(deployment: dict[str, Any], failure: rollout.Failure, d: Decision) -> None:
    ns, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
    stamp = now()
    _mark(ns, d.failing, {
        history.FAILED_AT: failure.since,
        history.FAILED_REASON: f"{failure.reason}: {failure.message}"[:500],
        history.OUTCOME: decision.outcome(d, stamp),
        **({history.ROLLED_BACK_AT: stamp} if d.result == decision.SUCCESS else {}),
    })
    if d.result == decision.SUCCESS:
        _mark(ns, d.target, {history.RESTORED_AT: stamp})
    metrics.rollbacks.labels(ns, name, d.result, d.reason).inc()
    post(deployment, d.event_type, d.event_reason, d.message)
    level = "info" if d.event_type == "Normal" else "warning"
    getattr(log, level)(
        "rollback decision", result=d.result, reason=d.reason, message=d.message,
        from_revision=failure.revision, to_revision=d.target.number if d.target else None,
        from_images=rollout.images(d.failing.template) if d.failing else rollout.images(deployment["spec"]["template"]),
        to_images=rollout.images(d.target.template) if d.target else None,
        namespace=ns, deployment=name)


def note_complete(deployment: dict[str, Any]) -> None:
    """Mark the revision the Deployment completed on as healthy; measure recovery after a rollback."""
    meta = deployment["metadata"]
    try:
        replicasets = call(kube.replicasets_of, deployment)
    except ApiFailure as e:
        log.warning("cannot read ReplicaSets to mark a healthy revision", error=str(e), **_who(deployment))
        return
    rs = history.current(history.revisions(replicasets), deployment["spec"]["template"])
    if rs is None or rs.healthy and not rs.restored_and_unproven:
        return
    if rs.restored_and_unproven:
        age = _age(rs.mark(history.RESTORED_AT))
        if age is not None:
            metrics.recovery_seconds.labels(meta["namespace"]).observe(age)
        log.info("recovered after rollback", revision=rs.number, images=rollout.images(rs.template),
                 seconds=age, **_who(deployment))
    _mark(meta["namespace"], rs, {history.HEALTHY_AT: now()})


def warn_if_known_bad(deployment: dict[str, Any]) -> None:
    """Say early that a known-bad template is being re-applied (often a GitOps controller's sync)."""
    try:
        replicasets = call(kube.replicasets_of, deployment)
    except ApiFailure as e:
        log.warning("cannot read ReplicaSets", error=str(e), **_who(deployment))
        return
    message = decision.known_bad(deployment, replicasets)
    if message:
        log.warning("known-bad template re-applied", message=message, **_who(deployment))
        post(deployment, "Warning", "KnownBadTemplate", message)
