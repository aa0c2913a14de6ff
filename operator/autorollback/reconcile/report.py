"""Telling an outcome once it took effect: Events, metrics, the decision's log line, the failing
ReplicaSet's marks, and the revert handed to the Git worker."""

import time
from typing import Any

from autorollback import decision, faults, history, kube, state, telemetry, times, vocab
from autorollback.decision import Decision
from autorollback.events import post
from autorollback.gitrevert import core as gitcore
from autorollback.reconcile.work import PassResult, Work, log, now, since, who
from autorollback.workloads.base import DEADLINE_EXCEEDED, images

RESTORED = "restored"  # Clocks group: when this process rolled back to a ReplicaSet (its recovery is timed)


def report(work: Work, deployment: dict[str, Any], d: Decision, result: PassResult) -> None:
    """After the decision took effect: metrics, Events, the log line, and the failing ReplicaSet's marks."""
    ns, name, failure, kind = work.namespace, work.name, d.failure, work.workload.kind
    if d.result != vocab.Result.SUCCESS:
        _mark_failing(work, d)  # first: if it fails, the work is retried before anyone was told
    if d.result == vocab.Result.SUCCESS:
        # from the watch event that first showed this process the controller's timeout, on its monotonic clock
        age = (
            since(work.clocks, state.OBSERVED, failure.id)
            if (failure.reason == DEADLINE_EXCEEDED and not failure.measured)
            else None
        )
        if age is not None:
            telemetry.reaction_seconds.labels(kind, ns).observe(age)
        if d.target is not None:
            work.clocks.forget(RESTORED)
            work.clocks.note(RESTORED, d.target.name, times.monotonic())
        telemetry.last_rollback.labels(kind, ns, name).set(time.time())
        result.series.add(("last_rollback", kind, ns, name))
    failed_template = d.failing.template if d.failing else deployment["spec"]["template"]
    if d.first_report:
        post(
            work.ctx.api,
            deployment,
            "Warning",
            "RolloutFailed",
            f"rollout of revision {d.failing.number} ({images(failed_template)}) failed: "
            f"{failure.reason}: {failure.message}",
            once=f"{failure.id} RolloutFailed",
        )
        log.warning(
            "rollout failed",
            revision=d.failing.number,
            images=images(failed_template),
            reason=failure.reason,
            message=failure.message,
            replicaset=failure.revision_name,
            **who(work),
        )
    post(
        work.ctx.api,
        deployment,
        d.event_type,
        d.event_reason,
        d.message,
        once=f"{failure.id} {d.result} {d.event_reason}",
    )
    # Counted once told: a leader that loses the Lease in the middle of reporting ends before this, and
    # the next leader, which reports late from the ledger, counts it (summed over replicas: once).
    if d.first_report:
        telemetry.failed_rollouts.labels(kind, ns, name).inc()
        result.series.add(("failed_rollouts", kind, ns, name))
    telemetry.rollbacks.labels(kind, ns, name, d.result, d.reason).inc()
    result.series.add(("rollbacks", kind, ns, name, d.result, d.reason))
    faults.point("after_events")
    level = "info" if d.event_type == "Normal" else "warning"
    getattr(log, level)(
        "rollback decision",
        result=d.result,
        reason=d.reason,
        message=d.message,
        from_revision=d.failing.number if d.failing else None,
        to_revision=d.target.number if d.target else None,
        from_images=images(failed_template),
        to_images=images(d.target.template) if d.target else None,
        **who(work),
    )
    if d.result in (vocab.Result.SUCCESS, vocab.Result.DRY_RUN) and d.target is not None:
        work.ctx.git.submit(
            deployment,
            d.failing,
            gitcore.RevertFacts(
                namespace=ns,
                deployment=name,
                failed_revision=d.failing.number,
                failed_images=images(failed_template),
                restored_revision=d.target.number,
                restored_images=images(d.target.template),
                reason=failure.reason,
                message=failure.message,
                restored_template=d.target.template,
                kind=kind,
            ),
            time.monotonic(),
            dry_run=d.result == vocab.Result.DRY_RUN,
            kind=kind,
        )
        try:
            _mark_failing(work, d)
        except kube.ApiError as e:
            log.warning(
                "cannot mark ReplicaSet (the rollback is recorded in the ledger)",
                replicaset=d.failing.name,
                error=str(e),
                **who(work),
            )


def _mark_failing(work: Work, d: Decision) -> None:
    failure = d.failure
    work.api.mark_revision(
        work.namespace,
        d.failing.name,
        {
            history.FAILED_AT: history.bind(d.failing.name, history.failure_payload(failure.updated, d.failing.number)),
            history.FAILED_REASON: history.bind(d.failing.name, f"{failure.reason}: {failure.message}"[:500]),
            history.OUTCOME: history.bind(d.failing.name, decision.outcome(d, now())),
        },
    )


def api_trouble(work: Work, d: Decision, e: kube.ApiError) -> None:
    """A rollback the API refused for now (401, 403, 429): the Warning that says it is tried again."""
    message = (
        f"rollback to revision {d.target.number} failed: {e}. autorollback keeps trying with backoff; "
        "check its RBAC and the API server, or roll back by hand with `kubectl rollout undo`."
    )
    log.error("rollback failed, will try again", error=str(e), **who(work))
    post(work.ctx.api, work.deployment, "Warning", "RollbackFailed", message)
