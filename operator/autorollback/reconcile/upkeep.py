"""The jobs about a Deployment's configuration rather than a rollout: Warnings about invalid
annotations, a revision history too short and a known-bad template re-applied (once each), and the
removal of ReplicaSet marks copied onto the Deployment."""

from autorollback import decision, kube, state, telemetry
from autorollback.config import quote
from autorollback.events import post
from autorollback.reconcile.work import PassResult, Work, log, who


def problems(work: Work, result: PassResult) -> None:
    d = work.deployment
    for p in work.config.problems:
        if work.problems_done.get(p.key) == state.digest(p.value):
            continue  # this value was reported already; another key changed
        telemetry.invalid_annotations.labels(work.workload.kind, work.namespace, work.name, p.key).inc()
        result.series.add(("invalid_annotations", work.workload.kind, work.namespace, work.name, p.key))
        log.warning("invalid annotation", key=p.key, value=quote(p.value), message=p.message(), **who(work))
        post(work.ctx.api, d, "Warning", "InvalidAnnotation", p.message())
    result.done.problems_done = {p.key: state.digest(p.value) for p in work.config.problems}


def history_limit(work: Work, result: PassResult) -> None:
    message = decision.history_too_short(work.deployment, work.workload.kind)
    if message:
        log.warning("revision history too short", message=message, **who(work))
        post(work.ctx.api, work.deployment, "Warning", "RevisionHistoryTooShort", message)
    result.done.history_done = (work.deployment.get("spec") or {}).get("revisionHistoryLimit")


def on_delete(work: Work, result: PassResult) -> None:
    """An OnDelete workload is never rolled back: said once per generation (by any replica)."""
    generation = work.deployment["metadata"].get("generation")
    message = decision.on_delete_warning(work.deployment, work.workload.kind)
    log.warning("OnDelete update strategy: never rolled back", message=message, **who(work))
    post(work.ctx.api, work.deployment, "Warning", "RollbackUnsupported", message, once=f"OnDelete {generation}")
    result.done.on_delete_done = generation


def known_bad(work: Work, result: PassResult) -> None:
    message = decision.known_bad(work.deployment, work.api.history(work.deployment), work.workload)
    if message:
        log.warning("known-bad template re-applied", message=message, **who(work))
        post(work.ctx.api, work.deployment, "Warning", "KnownBadTemplate", message)
    result.done.known_bad_done = state.rollout_key(work.deployment, work.workload)


def strays(work: Work, result: PassResult) -> None:
    """Marks copied onto the Deployment (by a kubectl undo) go: they describe another ReplicaSet."""
    ops = decision.stray_marks(work.deployment)
    if not ops:
        return
    try:
        work.api.patch(work.namespace, work.name, ops)
        log.info("removed ReplicaSet marks copied onto the Deployment", **who(work))
    except kube.ApiError as e:
        if e.status not in (409, 422):  # changed meanwhile: the next event decides again
            raise
