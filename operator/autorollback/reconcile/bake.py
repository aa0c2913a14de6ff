"""The bake (autorollback.io/checks): the platform's metric checks on the current revision's pods,
while it rolls out and for bake-seconds after it completed. A streak of failed evaluations rolls it
back through the same decision as any other failure; a bake that runs out writes its verdict on the
ReplicaSet (healthy-at, or unverified-at with a BakeUnverified Warning).

What lasts is on the ReplicaSet: the sealed checkpoint (elapsed bake time and streaks), written when
a streak changes or every checks.streak.EVERY seconds of bake, so that another process resumes the
bake where it was. This process's memory (checks.schedule.Running) only saves reads."""

import random
import threading
from dataclasses import dataclass
from typing import Any

from autorollback import decision, history, ledger, state, telemetry, times
from autorollback.checks import alerts as calerts, bake as cbake, promql, schedule, streak, templates
from autorollback.checks.outcome import BAD_DATA, Kind, Outcome, Reading, classify
from autorollback.checks.prometheus import Client as Prometheus
from autorollback.checks.schedule import Running
from autorollback.config import quote
from autorollback.events import post
from autorollback.history import Revision
from autorollback.reconcile import alerts, attempt
from autorollback.reconcile.report import report
from autorollback.reconcile.work import PassResult, Work, log, who
from autorollback.vocab import Job, Result
from autorollback.workloads.base import Failure, Workload, history_object

BUSY_RETRY = 1.0  # seconds before a bake whose evaluations found every slot taken looks again
REREAD = streak.EVERY  # seconds: a bake reads the history again at least this often


def wanted(work: Work) -> templates.Selection | None:
    """The checks the workload selects from the platform's catalog, and its own where the platform
    allows them in its namespace (None: Prometheus not configured)."""
    settings, annotations = work.ctx.checks, work.deployment["metadata"].get("annotations")
    if not settings.enabled and not alerts.asked(settings, annotations):
        return None
    selection = templates.select(annotations, settings.catalog, work.namespace, settings.promql_namespaces)
    return calerts.select(selection, annotations)


def defers_health(work: Work, replicaset: dict[str, Any]) -> bool:
    """With checks to run on this ReplicaSet, its healthy mark waits for the bake to pass."""
    selection = wanted(work)
    if selection is None or not (selection.checks or selection.alerts):
        return False
    entries = ledger.of([work.deployment, replicaset])
    revision = work.workload.revisions([replicaset], entries)
    return bool(revision) and not cbake.skipped(revision[0])


@dataclass
class _Slot:
    """One of the process's evaluation slots (Context.evaluations): taken at most once per pass,
    before anything is read for an evaluation that is due, and given back once."""

    slots: threading.BoundedSemaphore
    held: bool = False

    def take(self) -> bool:
        if not self.held:
            self.held = self.slots.acquire(blocking=False)
        return self.held

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()


def bake(work: Work, result: PassResult) -> None:
    """Evaluate the checks that are due on the current revision; act on the bake's end."""
    if work.jobs != {Job.BAKE}:
        work.bake.history = work.bake.pods = None  # other work may write the ReplicaSets: read them afresh
    if result.patched:
        return  # rolled back in this pass: the next pass looks at the template restored
    slot = _Slot(work.ctx.evaluations)
    try:
        _bake(work, result, slot)
    finally:
        slot.give_back()


def _bake(work: Work, result: PassResult, slot: _Slot) -> None:
    deployment, kind = work.deployment, work.workload
    key = state.bake_key(deployment, work.config, kind)
    selection = wanted(work)
    _problems(work, result, selection)
    if selection is None or not (selection.checks or selection.alerts):
        result.done.bake_done = key
        return
    now = times.monotonic()
    complete = bool(kind.completed(deployment))
    running = work.bake.running
    if running is not None and running.template == state.template_digest(deployment):
        # the same bake as the last pass: nothing is read until an evaluation is due or the bake ends
        _advance(running, selection, complete, now)
        if running.bake.active and not alerts.due(running, selection, now):
            _look_again(result, running, selection, complete)
            return
        if running.bake.active and not slot.take():  # an evaluation is due: read nothing while no slot is free
            result.recheck(BUSY_RETRY * random.uniform(1, 2))  # never a worker waiting: deadlines come first
            return
    replicasets = _history(work)
    entries = ledger.of([deployment, *replicasets])
    revisions = kind.revisions(replicasets, entries)
    current = kind.update_revision(deployment, revisions)
    raw = next((r for r in replicasets if current and r["metadata"]["name"] == current.name), None)
    if current is None or raw is None:
        result.recheck(2.0)  # the controller has not created its ReplicaSet yet
        return
    recorded = cbake.recorded_failure(current)
    if recorded is not None and ledger.find(entries, recorded.id) is None:
        # its checks failed and it was not rolled back (paused, dry-run, no target): decided again
        # from the marks, as a deadline's failure is from its condition
        slot.give_back()  # no evaluation: the slot is for others while this one decides
        _decide(work, result, recorded, raw)
        result.done.bake_done = key
        return
    why_not = cbake.skipped(current)
    if why_not:
        log.debug("revision not baked", replicaset=current.name, why=why_not, **who(work))
        work.bake.running = None
        result.done.bake_done = key
        return
    running = _running(work, raw, selection, state.template_digest(deployment))
    _advance(running, selection, complete, now)
    if running.bake.active and alerts.due(running, selection, now):
        if not slot.take():
            result.recheck(BUSY_RETRY * random.uniform(1, 2))
            return
        try:
            _evaluate(work, result, running, raw, current, selection, revisions, replicasets, now)
            fired = alerts.watch(work, result, running, raw, current, selection, now)
        finally:
            slot.give_back()
        if fired is not None and running.bake.active:  # an alert that started firing: the same decision
            _decide(work, result, fired, raw)
            work.bake.running = None
            result.done.bake_done = key
            return
    ended = alerts.verdict(running.bake.result, selection, current, running)
    if isinstance(ended, cbake.Failed):
        failure = cbake.failure(ended, current.name, current.number, raw["metadata"].get("creationTimestamp") or "")
        _decide(work, result, failure, raw)
        work.bake.running = None
        result.done.bake_done = key
    elif ended is not None:
        _conclude(work, running, ended, current, raw, deployment)
        result.done.bake_done = key
    else:
        _checkpoint(work, running, current.name)
        _look_again(result, running, selection, complete)


def _history(work: Work) -> list[dict[str, Any]]:
    """The ReplicaSets, or the bake's last read of them (`_reused`)."""
    last = _reused(work, work.bake.history)
    if last is not None:
        return last
    replicasets = [_lean(rs) for rs in work.api.history(work.deployment)]
    work.bake.history = state.HistoryRead(_version(work), times.monotonic(), replicasets)
    return replicasets


def _pods(work: Work) -> list[dict[str, Any]]:
    """The metadata of the Deployment's pods, or the bake's last read of them (`_reused`)."""
    last = _reused(work, work.bake.pods)
    if last is not None:
        return last
    pods = [{"metadata": _lean(p)["metadata"]} for p in work.api.pods(work.deployment)]
    work.bake.pods = state.HistoryRead(_version(work), times.monotonic(), pods)
    return pods


def _lean(obj: dict[str, Any]) -> dict[str, Any]:
    """Kept without metadata.managedFields (often a third of the object; nothing here reads it)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def _reused(work: Work, last: state.HistoryRead | None) -> list[dict[str, Any]] | None:
    """A pass for the bake alone reuses the bake's last read while the Deployment is the same: its
    resourceVersion, which changes with its status whenever its ReplicaSets' counts do (a pod that
    goes, comes or changes readiness), for REREAD seconds at most, and until this process writes a
    ReplicaSet or becomes the leader. With 500 bakes that takes the API requests of an evaluation from
    two LISTs to about one in four evaluations; any other job reads afresh."""
    fresh = last is not None and last.version == _version(work) and times.monotonic() - last.at < REREAD
    return last.objects if fresh and last is not None else None


def _version(work: Work) -> str:
    return str(work.deployment["metadata"].get("resourceVersion", ""))


def _mark(work: Work, replicaset: str, annotations: dict[str, str | None]) -> None:
    """Merge annotations onto a ReplicaSet; the bake's last read of it gets the same merge."""
    last, work.bake.history = work.bake.history, None
    work.api.mark_revision(work.namespace, replicaset, annotations)
    if last is not None:
        work.bake.history = last
        for rs in last.objects:
            if rs["metadata"]["name"] == replicaset:
                merged = {**(rs["metadata"].get("annotations") or {}), **annotations}
                rs["metadata"]["annotations"] = {k: v for k, v in merged.items() if v is not None}


def _advance(running: Running, selection: templates.Selection, complete: bool, now: float) -> None:
    """The bake's elapsed time, on this process's monotonic clock. A step is at most two intervals:
    a longer gap is time this process did not run the bake (a standby, a queue behind), not bake."""
    step = min(now - running.clock, 2 * max(alerts.intervals(selection)))
    running.bake = cbake.advance(running.bake, selection.checks, complete, step, selection.bake_seconds)
    running.clock = now


def _look_again(result: PassResult, running: Running, selection: templates.Selection, complete: bool) -> None:
    left = cbake.remaining(running.bake, selection.bake_seconds) if complete else None
    wait = alerts.next_in(running, selection, times.monotonic(), left)
    interval = min(alerts.intervals(selection))
    result.recheck(wait + random.uniform(0, schedule.JITTER * interval) + 0.05)


def _running(work: Work, raw: dict[str, Any], selection: templates.Selection, template: str) -> Running:
    """This process's bake of the ReplicaSet: kept while the checkpoint on it is the one this process
    last wrote or read (another replica may have baked since: a leader change), else resumed from
    the checkpoint, or new."""
    meta = raw["metadata"]
    sealed = (meta.get("annotations") or {}).get(history.BAKE)
    running = work.bake.running
    if running is not None and running.of(meta["name"], meta.get("uid", "")) and running.sealed == sealed:
        running.template = template
        return running
    resumed = streak.unseal(work.ctx.checkpoint_key, sealed, meta["name"], meta.get("uid", ""))
    if sealed and resumed is None:
        log.warning(
            "bake checkpoint not accepted (not written by autorollback for this ReplicaSet): the bake starts over",
            replicaset=meta["name"],
            **who(work),
        )
    running = Running(
        meta["name"], meta.get("uid", ""), cbake.begin(selection.checks, resumed), times.monotonic(), template
    )
    running.written, running.sealed = resumed, sealed
    work.bake.running = running
    return running


def _evaluate(
    work: Work,
    result: PassResult,
    running: Running,
    raw: dict[str, Any],
    current: Revision,
    selection: templates.Selection,
    revisions: list[Revision],
    replicasets: list[dict[str, Any]],
    now: float,
) -> None:
    due = schedule.due(running, selection.checks, now)
    if not due:
        return
    due = [c for c in due if f"{c.name} invalid" not in running.told]
    kind = work.workload
    # the pods' names, or which older revisions still have pods (a relative check's baseline, where
    # the history objects count none)
    wants_pods = any(
        "pods" in promql.placeholders(c.template.query) or (c.template.relative and not kind.counts_ready) for c in due
    )
    pods = _pods(work) if wants_pods else []
    new = kind.pods_of(raw, pods)
    previous = _previous(kind, revisions, current, replicasets, pods)
    old = kind.pods_of(previous, pods) if previous is not None else []
    for check in due:
        running.evaluated[check.name] = now
        window = max(1, check.template.window_ms // 1000)
        scope = _scope(work, raw, new, window)
        base = _scope(work, previous, old, window) if previous is not None else None
        outcome = _outcome(work, check, scope, base)
        if isinstance(outcome, str):  # the query is not accepted: said once, not run again in this bake
            running.told.add(f"{check.name} invalid")
            _invalid(work, running, check, outcome)
            continue
        _count(work, result, check, outcome)
        _tell_first(work, running, check, outcome)
        running.bake = cbake.observe(running.bake, check, outcome)
        if not running.bake.active:
            break


def _scope(work: Work, raw: dict[str, Any], pods: list[dict[str, Any]], window: int) -> promql.Scope:
    meta = raw["metadata"]
    return promql.Scope(
        namespace=work.namespace,
        workload=work.name,
        replicaset=meta["name"],
        pod_template_hash=work.workload.pod_label_value(raw),  # the value the revision's pods carry
        pods=tuple(sorted(p["metadata"]["name"] for p in pods)),
        window_seconds=window,
    )


def _previous(
    kind: Workload,
    revisions: list[Revision],
    current: Revision,
    history_objects: list[dict[str, Any]],
    pods: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The history object the new pods are compared with in relative mode (checks.bake.baseline): where
    they count no pods (ControllerRevisions), the revisions with pods left say which still serve."""
    with_pods = () if kind.counts_ready else {h["metadata"]["name"] for h in history_objects if kind.pods_of(h, pods)}
    older = cbake.baseline(revisions, current, with_pods)
    return next((h for h in history_objects if older is not None and h["metadata"]["name"] == older.name), None)


def _outcome(work: Work, check: templates.Check, scope: promql.Scope, base: promql.Scope | None) -> Outcome | str:
    """One evaluation of one check, or why its query is not accepted (never a rollback)."""
    prometheus = work.ctx.prometheus
    assert prometheus is not None, "checks run only with Prometheus configured"
    try:
        query, guard_query = check.queries(scope)
        base_query = check.queries(base)[0] if base is not None and check.template.relative else None
    except promql.EmptyScope as e:
        return Outcome(Kind.NO_DATA, detail=str(e))
    except promql.QueryError as e:
        return str(e)
    reading = _query(prometheus, query)
    guard = _query(prometheus, guard_query) if guard_query is not None and not reading.error else None
    baseline = _query(prometheus, base_query) if base_query is not None and not reading.error else None
    outcome = classify(check.limit, reading, guard, check.minimum, baseline)
    if outcome.configuration_error:
        return f"Prometheus cannot parse its query: {outcome.detail}"
    return outcome


def _query(prometheus: Prometheus, query: str) -> Reading:
    reading = prometheus.query(query)
    answered = not reading.error or reading.error_type == BAD_DATA  # Prometheus answered, about the query
    telemetry.prometheus_queries.labels("ok" if answered else "error").inc()
    return reading


def _invalid(work: Work, running: Running, check: templates.Check, why: str) -> None:
    whose = (
        f"Its query is this workload's own ({templates.CHECK}{check.name}.query)"
        if check.template.own
        else "Its template is the platform's (the operator's check catalog); the thresholds are set by "
        "autorollback.io/check.<check>.<parameter>"
    )
    message = f"metric check {check.name} is not run: {why}. {whose}."
    log.warning("invalid metric check", check=check.name, message=message, **who(work))
    post(
        work.ctx.api,
        work.deployment,
        "Warning",
        "InvalidAnnotation",
        message,
        once=f"{running.uid} invalid {check.name}",
    )


def _count(work: Work, result: PassResult, check: templates.Check, outcome: Outcome) -> None:
    labels = (work.workload.kind, work.namespace, work.name, check.name)
    telemetry.check_evaluations.labels(*labels, outcome.kind.value).inc()
    result.series.add(("check_evaluations", *labels, outcome.kind.value))
    if outcome.value is not None:
        telemetry.check_value.labels(*labels).set(outcome.value)
        result.series.add(("check_value", *labels))


def _tell_first(work: Work, running: Running, check: templates.Check, outcome: Outcome) -> None:
    """The first no data and the first error of a check in a bake, once each: the rest are counted."""
    if outcome.kind not in (Kind.NO_DATA, Kind.ERROR):
        return
    said = f"{check.name} {outcome.kind.value}"
    if said in running.told:
        return
    running.told.add(said)
    what = "returned no data" if outcome.kind is Kind.NO_DATA else "could not be evaluated"
    policy = check.template.on_no_data if outcome.kind is Kind.NO_DATA else check.template.on_error
    effect = {"ignore": "it neither counts as a failure nor resets the streak", "fail": "it counts as a failure",
              "reset": "it resets the streak"}[policy.value]  # fmt: skip
    message = (
        f"metric check {check.name} on {history_object(work.workload.kind)} {running.replicaset} {what}: {outcome.detail or 'no detail'}; "
        f"{effect} (the check's on{'NoData' if outcome.kind is Kind.NO_DATA else 'Error'}: {policy.value})"
    )
    reason = "MetricCheckNoData" if outcome.kind is Kind.NO_DATA else "MetricCheckError"
    log.warning("metric check " + what, check=check.name, detail=outcome.detail, **who(work))
    post(work.ctx.api, work.deployment, "Warning", reason, message, once=f"{running.uid} {said}")


def _decide(work: Work, result: PassResult, failure: Failure, raw: dict[str, Any]) -> None:
    """A streak reached its count (or its failure is recorded): the same decision as any failure,
    bound to the ReplicaSet baked."""
    meta = raw["metadata"]
    work.bake.history = None  # what is decided is written on the ReplicaSets
    signal = _BakeFailed(work, meta["name"], meta.get("uid", ""), failure)
    outcome = attempt.rollback(work, result, signal, cap=work.ctx.metric_rollbacks)
    if outcome is not None and outcome.decision.result != Result.NOTHING:
        report(work, outcome.snapshot.deployment, outcome.decision, result)


@dataclass
class _BakeFailed:
    """The bake's failure, on every state decided on whose current template is the one baked."""

    work: Work
    replicaset: str
    uid: str
    failure: Failure

    def __call__(self, deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> Failure | None:
        kind = self.work.workload
        current = kind.update_revision(deployment, kind.revisions(replicasets))
        raw = next((r for r in replicasets if current and r["metadata"]["name"] == current.name), None)
        meta = raw["metadata"] if raw is not None else {}
        if meta.get("name") != self.replicaset or meta.get("uid", "") != self.uid:
            return None  # another template since: this verdict is not about it
        return self.failure


def _conclude(
    work: Work,
    running: Running,
    ended: cbake.Passed | cbake.Unverified,
    current: Revision,
    raw: dict[str, Any],
    deployment: dict[str, Any],
) -> None:
    """The bake ran out: healthy-at (passed) or unverified-at (nothing either way), the checkpoint removed."""
    done: dict[str, str | None] = {history.BAKE: None}
    if isinstance(ended, cbake.Passed):
        mark = decision.healthy_mark(deployment, raw, work.workload) or {}
        _mark(work, current.name, {**mark, **done})
        message = f"revision {current.number} baked: {calerts.passed(ended.checks, alerts.named(deployment))}"
        log.info("bake passed", replicaset=current.name, checks=list(ended.checks), **who(work))
        post(work.ctx.api, deployment, "Normal", "BakePassed", message, once=f"{running.uid} BakePassed")
    else:
        payload = f"revision {current.number} checks {','.join(ended.checks)}"
        _mark(work, current.name, {history.UNVERIFIED_AT: history.bind(current.name, payload), **done})
        message = (
            f"revision {current.number} finished its bake unverified: {ended.reason().removeprefix('BakeUnverified: ')}. "
            "It is not marked healthy (it stays a valid rollback target: it completed). Check that the metrics "
            "exist for these pods and that there is traffic, or set the check's onNoData."
        )
        log.warning("bake unverified", replicaset=current.name, checks=list(ended.checks), **who(work))
        post(work.ctx.api, deployment, "Warning", "BakeUnverified", message, once=f"{running.uid} BakeUnverified")
    work.bake.running = None


def _checkpoint(work: Work, running: Running, replicaset: str) -> None:
    if not streak.due(running.written, running.bake.state):
        return
    value = streak.seal(work.ctx.checkpoint_key, replicaset, running.uid, running.bake.state)
    _mark(work, replicaset, {history.BAKE: value})
    running.written, running.sealed = running.bake.state, value


def _problems(work: Work, result: PassResult, selection: templates.Selection | None) -> None:
    """Invalid check annotations, or checks asked for with no Prometheus configured: said once per value."""
    annotations = work.deployment["metadata"].get("annotations") or {}
    if selection is None:
        said = state.digest(f"unconfigured {annotations.get(templates.CHECKS, '')}")
        if said != work.bake.said:
            message = alerts.unconfigured(annotations) or (
                f"autorollback.io/checks asks for metric checks, but {work.ctx.checks.missing()}. No check runs: "
                "the rollout is judged by its deadline (and autorollback.io/fail-on) only."
            )
            log.warning("metric checks asked for but not configured", message=message, **who(work))
            post(work.ctx.api, work.deployment, "Warning", "MetricChecksNotConfigured", message)
        work.bake.said = said
        return
    said = state.digest(repr(sorted((p.key, p.value) for p in selection.problems)))
    if selection.problems and said != work.bake.said:
        for p in selection.problems:
            telemetry.invalid_annotations.labels(work.workload.kind, work.namespace, work.name, p.key).inc()
            result.series.add(("invalid_annotations", work.workload.kind, work.namespace, work.name, p.key))
            log.warning("invalid annotation", key=p.key, value=quote(p.value), message=p.text(), **who(work))
            post(work.ctx.api, work.deployment, "Warning", "InvalidAnnotation", p.text())
    work.bake.said = said
