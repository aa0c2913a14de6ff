"""After a rollout completes: the healthy mark on its ReplicaSet, the recovery time after a rollback,
and whatever of a rollback the process that patched it did not live to finish."""

from typing import Any

from autorollback import decision, ledger, state, telemetry
from autorollback.gitrevert import core as gitcore
from autorollback.reconcile import bake, measure
from autorollback.reconcile.report import RESTORED, report
from autorollback.reconcile.work import PassResult, Work, log, since, who
from autorollback.workloads.base import images, template_of


def healthy(work: Work, result: PassResult) -> None:
    """Mark the ReplicaSet that a watched state showed complete; measure recovery after a rollback."""
    if work.healthy_evidence is None:
        return
    name, evidence = work.healthy_evidence
    adapter = work.workload
    template = adapter.template(evidence)
    rs = work.api.get_revision(work.namespace, name)
    if rs is None or not adapter.same_template(template_of(adapter, rs) or {}, template):
        # the condition still names an earlier ReplicaSet (complete_left_over), or the kind cannot name
        # the revision that completed (a DaemonSet: daemonset.rollout); the counts that showed the
        # rollout complete are about the current template's
        history = work.api.history(evidence)
        current = adapter.current(adapter.revisions(history), template)
        rs = next((r for r in history if current is not None and r["metadata"]["name"] == current.name), None)
        name = rs["metadata"]["name"] if rs is not None else name
    mark = decision.healthy_mark(evidence, rs, adapter)
    if mark and rs is not None and bake.defers_health(work, rs):
        mark = None  # healthy means baked: the bake writes it when its checks pass
    if (
        mark
        and decision.outlives_failure(mark)
        and not decision.still_complete(evidence, work.api.get(work.namespace, work.name), adapter)
    ):
        mark = None  # not complete any more: whether it failed since is for the next look to say
    if mark:
        # measured only by the process that rolled back (on its monotonic clock), never from the ledger's time
        age = since(work.clocks, RESTORED, name) if decision.recovered_since(evidence, name) else None
        work.clocks.forget(RESTORED, name)
        if age is not None:
            telemetry.recovery_seconds.labels(adapter.kind, work.namespace).observe(age)
            log.info(
                "recovered after rollback",
                replicaset=name,
                images=images(template),
                seconds=age,
                **who(work),
            )
    # progress, to the end: a measured deadline's checkpoint on this ReplicaSet is over (never resumed)
    checkpointed = rs is not None and decision.NO_PROGRESS in (rs["metadata"].get("annotations") or {})
    # a lost rollback's report first: it is decided on the restored ReplicaSet as read before its mark,
    # so a report that fails (or a crash) leaves the mark unwritten and the next try decides the same
    revert_if_lost(work, evidence, rs, result)
    if mark or checkpointed:
        cleared: dict[str, str | None] = {decision.NO_PROGRESS: None} if checkpointed else {}
        work.api.mark_revision(work.namespace, name, {**(mark or {}), **cleared})
    measure.ended(work, "", "")
    result.done.healthy_done = state.completion_key(evidence, work.workload)
    result.done.healthy_evidence = work.healthy_evidence  # cleared unless newer evidence came meanwhile


def revert_if_lost(work: Work, deployment: dict[str, Any], restored: dict[str, Any] | None, result: PassResult) -> None:
    """A rollback settled. If what follows its patch was lost (the process that rolled back died
    first), finish it now: the Events, the failed revision's marks, the revert pull request. The
    ledger says it happened; each step is idempotent or guarded by the marks."""
    entry = decision.restoring(deployment, restored["metadata"]["name"]) if restored else None
    if entry is None:
        return
    failed = work.api.get_revision(work.namespace, entry.failed)
    if failed is None:
        return
    adapter = work.workload
    f, r = adapter.revisions([failed])[0], adapter.revisions([restored], ledger.of([deployment]))[0]
    late = decision.late_report(entry, f, r)
    if late is not None:
        report(work, deployment, late, result)
    elif gitcore.wanted(deployment["metadata"].get("annotations")) and not f.mark(gitcore.PR_MARK):
        failure = decision.ledger_failure(entry, f)
        if decision.rollback_reported(f, failure):
            work.ctx.git.submit(
                deployment,
                f,
                gitcore.RevertFacts(
                    namespace=work.namespace,
                    deployment=work.name,
                    failed_revision=entry.revision or f.number,
                    failed_images=images(f.template),
                    restored_revision=r.number,
                    restored_images=images(r.template),
                    reason=failure.reason,
                    message=failure.message,
                    restored_template=r.template,
                    kind=adapter.kind,
                ),
                None,
                kind=adapter.kind,
            )
