"""A StatefulSet left stuck by its rollback, finished (decision.stuck decides; this reads and writes).

Decided from what lasts: the rollback in the StatefulSet's own ledger and the status the controller
wrote for it, read again here, never from this process having written the patch. The pods are deleted
gracefully (no grace period override, never forced), each only as it was read (uid and resourceVersion
preconditions). How long the restored revision's pods stay not Ready is measured on this process's
monotonic clock (a restart measures again: later, never sooner); at the deadline the rollback is
abandoned, recorded on the restored ControllerRevision and told once.
"""

from typing import Any

from autorollback import events, kube, times
from autorollback.decision import stuck
from autorollback.reconcile.work import PassResult, Work, log, who
from autorollback.state import stuck_key
from autorollback.workloads.base import template_of

GROUP = "stuck"  # Clocks group: how long the restored revision's pods have been not Ready, no progress


def finish(work: Work, result: PassResult) -> None:
    key = stuck_key(work.deployment)
    if work.workload.kind != stuck.KIND or not key:
        return
    if work.config.dry_run or not work.ctx.delete_stuck_pods:
        result.done.stuck_done = key
        return
    sts = work.api.get(work.namespace, work.name)
    if sts["metadata"].get("uid") != work.uid:
        return  # deleted and created again: the watch brings the new one
    pending = stuck.rollback_pending(sts)
    if pending is None or not stuck.enabled(sts["metadata"].get("annotations"), work.ctx.delete_stuck_pods):
        result.done.stuck_done = key
        return
    restored = work.api.get_revision(work.namespace, stuck.restored_as(sts))
    templates = _templates(work, restored, pending.restored)
    if stuck.rollback_observed(sts, templates) is None:
        result.done.stuck_done = key
        return
    pods = work.ctx.api.pods_full(sts)
    marks = dict(((restored or {}).get("metadata") or {}).get("annotations") or {})
    deadline = float(work.workload.deadline_seconds(sts))
    options: dict[str, Any] = {"default": True, "restored_marks": marks, "deadline_seconds": deadline}
    first = stuck.finish(sts, pods, templates=templates, **options)
    now = times.monotonic()
    seconds = work.clocks.track(GROUP, [first.progress] if first.progress else [], now).get(first.progress, 0.0)
    plan = stuck.finish(sts, pods, templates=templates, not_ready_seconds=seconds, **options)
    if plan.abandon and plan.entry is not None:
        _abandon(work, sts, plan, seconds, restored is not None)
        result.done.stuck_done = key
        return
    deleted, conflicts = _delete(work, plan)
    if deleted and plan.entry is not None:
        message = stuck.deleted_message(sts, plan.entry, deleted)
        log.info("deleted stuck pods", pods=[p.name for p in deleted], message=message, **who(work))
        events.post(
            work.ctx.api,
            sts,
            "Normal",
            "StuckPodsDeleted",
            message,
            once=" ".join([plan.entry.id, *(p.uid for p in deleted)]),
        )
    # not done while a pod changed under the delete (read and decide again) or the restored pods are
    # timed (no event comes when nothing changes): the job runs again at the recheck
    if conflicts:
        result.recheck(1.0)
    elif plan.waiting and not plan.abandoned_before:
        result.recheck(max(0.5, deadline - seconds + 0.05))
    else:
        result.done.stuck_done = key


def _templates(
    work: Work, update: dict[str, Any] | None, restored: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The update revision's template and, when the controller named it otherwise, the restored one's
    (read only then): whether it re-created the restored revision under a new name."""
    if update is None or update["metadata"]["name"] == restored:
        return None, None
    other = work.api.get_revision(work.namespace, restored)
    return template_of(work.workload, update), template_of(work.workload, other) if other else None


def _delete(work: Work, plan: stuck.Finish) -> tuple[tuple[stuck.Pod, ...], int]:
    """The pods deleted, and how many changed since they were read (409: a precondition failed)."""
    deleted, conflicts = [], 0
    for pod in plan.delete:
        try:
            work.ctx.api.delete_pod(work.namespace, pod.name, pod.uid, pod.resource_version)
        except kube.ApiError as e:
            if e.status == 404:
                continue  # gone already
            if e.status == 409:
                conflicts += 1
                continue
            raise
        deleted.append(pod)
    return tuple(deleted), conflicts


def _abandon(work: Work, sts: dict[str, Any], plan: stuck.Finish, seconds: float, marked: bool) -> None:
    assert plan.entry is not None
    if marked:  # recorded before it is told: told once, and nothing is deleted after a restart either
        work.api.mark_revision(work.namespace, stuck.restored_as(sts), {stuck.MARK: plan.abandon_mark})
    message = stuck.abandoned_message(sts, plan.entry, plan.waiting, seconds)
    log.warning("rollback abandoned: the restored revision's pods fail too", message=message, **who(work))
    events.post(work.ctx.api, sts, "Warning", "RollbackAbandoned", message, once=plan.abandon_mark)
    work.clocks.track(GROUP, [], times.monotonic())
