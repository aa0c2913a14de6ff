"""The alerts of a bake (autorollback.io/alerts), the shell around checks.alerts: read the firing
alerts named from Prometheus, record the ones already firing when the new ReplicaSet first had a
ready pod, and fail the bake when another one fires. reconcile.bake schedules the reads with the
checks' evaluations (every checks.alerts.INTERVAL seconds, under the same concurrency cap) and
decides a failure as any other.

What lasts is the record on the ReplicaSet (checks.alerts.PREEXISTING), written once, level-
triggered: at the first read where the revision has a ready pod and no record. This process's
memory (schedule.Running) keeps when the alerts were last read and what was said once."""

from collections.abc import Mapping
from typing import Any

from autorollback import telemetry
from autorollback.checks import alerts as calerts, bake as cbake, promql, schedule, templates
from autorollback.checks.outcome import Kind
from autorollback.checks.schedule import Running
from autorollback.checks.settings import ChecksSettings
from autorollback.events import post
from autorollback.history import Revision
from autorollback.reconcile.work import PassResult, Work, log, who
from autorollback.workloads.base import Failure, history_object

NOT_READY_RETRY = 2.0  # seconds: no ready pod yet, look again this soon (the record waits for one)
RECORDED = "alerts recorded"  # in Running.told: this process wrote (or read) the record
READ_COMPLETE = "alerts read complete"  # in Running.told: read by this process while the rollout was complete


def asked(settings: ChecksSettings, annotations: Mapping[str, str] | None) -> bool:
    """Alerts are named and Prometheus is configured (no check template is needed for alerts)."""
    return settings.prometheus is not None and calerts.ALERTS in (annotations or {})


def unconfigured(annotations: Mapping[str, str]) -> str:
    """The MetricChecksNotConfigured message when only alerts are asked for ("": checks are asked too)."""
    if templates.CHECKS in annotations:
        return ""
    return (
        f"{calerts.ALERTS} names alerts that must not fire, but Prometheus is not configured: the platform must "
        "set the Prometheus URL (chart value prometheus.url, flag --prometheus-url). No alert is read: the "
        "rollout is judged by its deadline (and autorollback.io/fail-on) only."
    )


def named(workload: dict[str, Any]) -> tuple[str, ...]:
    return calerts.select(templates.Selection(), workload["metadata"].get("annotations")).alerts


def intervals(selection: templates.Selection) -> list[float]:
    """The intervals of what the bake evaluates: its checks', and the alerts' read."""
    found = [float(c.template.interval) for c in selection.checks]
    return [*found, calerts.INTERVAL] if selection.alerts else found


def _alerts_due(running: Running, selection: templates.Selection, now: float) -> bool:
    last = running.evaluated.get(calerts.KEY)
    return bool(selection.alerts) and (last is None or now - last >= calerts.INTERVAL)


def due(running: Running, selection: templates.Selection, now: float) -> bool:
    """A check's evaluation or the alerts' read is due."""
    return bool(schedule.due(running, selection.checks, now)) or _alerts_due(running, selection, now)


def next_in(running: Running, selection: templates.Selection, now: float, bake_left: float | None) -> float:
    """Seconds until the next evaluation or read is due, or the bake time runs out (schedule.next_in)."""
    waits: list[float] = []
    if selection.checks:
        waits.append(schedule.next_in(running, selection.checks, now, bake_left))
    elif bake_left is not None:
        waits.append(bake_left)
    if selection.alerts:
        last = running.evaluated.get(calerts.KEY)
        waits.append(0.0 if last is None else calerts.INTERVAL - (now - last))
    return max(0.0, min(waits, default=calerts.INTERVAL))


def verdict(
    ended: cbake.Result | None, selection: templates.Selection, current: Revision, running: Running
) -> cbake.Result | None:
    """The bake's end with the alerts: passed only if the alerts were read after a pod was Ready (the
    record exists) and, by this process, once the rollout was complete; else unverified, never silently
    healthy (Prometheus may have answered nothing since the record)."""
    if (
        isinstance(ended, cbake.Passed)
        and selection.alerts
        and ((calerts.recorded(current) is None and RECORDED not in running.told) or READ_COMPLETE not in running.told)
    ):
        return cbake.Unverified((calerts.LABEL,))
    return ended


def watch(
    work: Work,
    result: PassResult,
    running: Running,
    raw: dict[str, Any],
    current: Revision,
    selection: templates.Selection,
    now: float,
) -> Failure | None:
    """Read the alerts when due: record the preexisting ones, or the failure of one that started."""
    if not _alerts_due(running, selection, now):
        return None
    running.evaluated[calerts.KEY] = now
    record = calerts.recorded(current)
    if record is None and not _ready(work, raw, current):
        running.evaluated[calerts.KEY] = now - calerts.INTERVAL + NOT_READY_RETRY
        return None
    meta = raw["metadata"]
    try:
        labels = work.ctx.checks.alert_labels
        query = calerts.query(selection.alerts, work.namespace, work.name, labels, pending=record is None)
    except (ValueError, promql.QueryError) as e:  # the platform's alert labels, not the workload: said once
        _tell(work, running, "invalid", f"the alerts' query is not accepted ({e}); check --alert-labels")
        return None
    prometheus = work.ctx.prometheus
    assert prometheus is not None, "alerts are read only with Prometheus configured"
    names = selection.alerts
    firing = prometheus.ask(query, lambda status, body: calerts.read_body(status, body, names), calerts.failed)
    telemetry.prometheus_queries.labels("error" if firing.error else "ok").inc()
    verdict = calerts.judge(firing, record or frozenset())
    _count(
        work, result, Kind.ERROR if firing.error else Kind.FAIL if record is not None and verdict.fired else Kind.PASS
    )
    if firing.error:
        _tell(
            work,
            running,
            "error",
            f"the alerts {', '.join(names)} could not be read for {history_object(work.workload.kind)} {meta['name']}: {firing.error}; "
            "never a rollback (the alerts are read again at the next interval)",
        )
        return None
    if record is None:
        if firing.names:
            shown = ", ".join(sorted(firing.names))
            message = (
                f"alerts already firing when revision {current.number} ({history_object(work.workload.kind)} "
                f"{meta['name']}) first had a ready "
                f"pod: {shown}. They do not roll this revision back; the other alerts named still do"
            )
            log.warning("alerts preexisting", replicaset=meta["name"], alerts=sorted(firing.names), **who(work))
            post(
                work.ctx.api,
                work.deployment,
                "Warning",
                "AlertPreexisting",
                message,
                once=f"{meta.get('uid', '')} revision {current.number} AlertPreexisting",
            )
        value = calerts.record(meta["name"], current.number, firing.names)
        work.bake.history = None  # read back by the next pass (reconcile.bake._history)
        work.api.mark_revision(work.namespace, meta["name"], {calerts.PREEXISTING: value})
        running.told.add(RECORDED)
        return None
    running.told.add(RECORDED)
    if work.workload.completed(work.deployment):
        running.told.add(READ_COMPLETE)
    if not verdict.fired:
        return None
    log.warning("alert firing", replicaset=meta["name"], alerts=list(verdict.fired), **who(work))
    return calerts.failure(verdict.fired, firing.at, meta["name"], current.number, meta.get("creationTimestamp") or "")


def _ready(work: Work, raw: dict[str, Any], current: Revision) -> bool:
    """calerts.ready. A kind whose history objects do not count their ready pods (a ControllerRevision
    has no status) has the revision's pods read whole (selected by its pod label): only while the
    record is not written, and once each NOT_READY_RETRY until one of them is Ready."""
    kind = work.workload
    if kind.counts_ready:
        return calerts.ready(raw, current)
    value = kind.pod_label_value(raw)
    if not value or not kind.updated_ready(work.deployment):
        return False  # no pod list while the status rules a Ready updated pod out (none updated, none Ready)
    pods = work.ctx.api.pods_full(work.deployment, (kind.pod_label, value))
    return calerts.ready(raw, current, kind.pods_of(raw, pods))


def _count(work: Work, result: PassResult, kind: Kind) -> None:
    labels = (work.workload.kind, work.namespace, work.name, calerts.LABEL)
    telemetry.check_evaluations.labels(*labels, kind.value).inc()
    result.series.add(("check_evaluations", *labels, kind.value))


def _tell(work: Work, running: Running, what: str, message: str) -> None:
    """Said once per bake (the first error, an unaccepted query), as a check's first error is."""
    said = f"{calerts.KEY} {what}"
    if said in running.told:
        return
    running.told.add(said)
    reason = "InvalidAnnotation" if what == "invalid" else "MetricCheckError"
    log.warning("alerts not read", message=message, **who(work))
    post(work.ctx.api, work.deployment, "Warning", reason, message, once=f"{running.uid} {said}")
