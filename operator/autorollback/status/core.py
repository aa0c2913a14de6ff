"""From raw objects to what `autorollback status` shows (pure: no I/O, no clock).

Kind-neutral: a workload is read through its adapter (`workloads.KINDS`), so every kind the
operator watches is shown the same way."""

from dataclasses import dataclass, field
from typing import Any

from autorollback import config, history, ledger
from autorollback.config import PREFIX
from autorollback.history import Revision
from autorollback.workloads.base import Workload, images

PR_MARK = PREFIX + "revert-pr"  # gitrevert.core.PR_MARK (not imported: that package is the operator's)
STUCK_MARK = PREFIX + "stuck-pods"  # decision.stuck.MARK: "abandoned <the rollback's id>" on the restored revision
CHECKS = PREFIX + "checks"
ALERTS = PREFIX + "alerts"
COMPONENT = "autorollback"
EVENTS_SHOWN = 10

HEALTHY, ROLLING_OUT, BAKING, FAILED, ROLLED_BACK = "healthy", "rolling out", "baking", "failed", "rolled back"
ABANDONED, UNVERIFIED, COMPLETE, PAUSED = "abandoned", "unverified", "complete", "paused"
UNKNOWN = "unknown"  # its history objects may not be read


@dataclass(frozen=True)
class Rollback:
    at: str  # the operator's wall clock when it wrote the rollback ("" unknown)
    from_revision: int | None  # the revision rolled back away from (None: not known any more)
    to_revision: int | None  # the revision rolled back to, as numbered now
    failed: str  # history object names
    restored: str
    reason: str


@dataclass(frozen=True)
class Row:
    namespace: str
    kind: str
    name: str
    mode: str
    watching: str
    revision: int | None
    state: str
    last_healthy: int | None
    last_rollback: Rollback | None
    revert_pr: str


@dataclass(frozen=True)
class RevisionView:
    number: int
    name: str
    images: str
    created: str
    available: int
    current: bool
    state: str  # healthy, failed, unverified, rolled back away from, ... ("" nothing known)
    marks: dict[str, str]  # annotation (without the prefix) -> payload, only marks bound to this object


@dataclass(frozen=True)
class EventView:
    type: str
    reason: str
    message: str
    last: str  # time of the last occurrence
    count: int


@dataclass(frozen=True)
class Detail:
    row: Row
    revisions: list[RevisionView]
    ledger: list[ledger.Entry]
    events: list[EventView]
    notes: list[str] = field(default_factory=list)  # what could not be read, said plainly


def opted_in(workload: dict[str, Any]) -> bool:
    return config.parse(_annotations(workload), str(workload.get("kind") or "Deployment")).enabled


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def watching(adapter: Workload, workload: dict[str, Any]) -> str:
    a = _annotations(workload)
    fast = config.parse(a, adapter.kind).fail_fast.signals
    parts = [f"deadline {adapter.deadline_seconds(workload)}s"]
    if fast:
        parts.append("fast " + ",".join(sorted(fast)))
    checks = ",".join(n.strip() for n in a.get(CHECKS, "").split(",") if n.strip())
    if checks:
        parts.append("checks " + checks)
    alerts = ",".join(n.strip() for n in a.get(ALERTS, "").split(",") if n.strip())
    if alerts:
        parts.append("alerts " + alerts)
    return "; ".join(parts)


def _revisions(adapter: Workload, workload: dict[str, Any], objects: list[dict[str, Any]]) -> list[Revision]:
    entries = ledger.of([workload, *objects])
    return adapter.revisions(objects, entries)


def _outcome(r: Revision) -> str:
    return r.mark(history.OUTCOME)


def _abandoned(r: Revision, entries: tuple[ledger.Entry, ...]) -> bool:
    """Its rollback abandoned, or its restored pods stuck after the newest rollback (a stuck-pods mark
    of an older one is history), and not healthy since."""
    newest = entries[0] if entries else None
    return not r.healthy_in_this_revision and (
        _outcome(r).startswith("abandoned")
        or (newest is not None and r.annotations.get(STUCK_MARK) == f"abandoned {newest.id}")
    )


def revision_state(r: Revision, entries: tuple[ledger.Entry, ...]) -> str:
    """What is known of one revision, from its marks and the ledger."""
    if _abandoned(r, entries):
        return ABANDONED
    if r.rolled_back_and_unproven:
        return "rolled back away from"
    if r.healthy:
        return HEALTHY
    if r.failed:
        return FAILED
    if r.unverified:
        return UNVERIFIED
    if r.mark(history.BAKE):
        return BAKING
    return ""


def current_state(
    adapter: Workload,
    workload: dict[str, Any],
    revisions: list[Revision],
    current: Revision | None,
    entries: tuple[ledger.Entry, ...],
) -> str:
    """The state of the revision the workload asks for now."""
    if adapter.paused(workload):
        return PAUSED
    if current is None:
        return ROLLING_OUT
    failure = adapter.failure(workload)
    newest = entries[0] if entries else None
    if _abandoned(current, entries):
        return ABANDONED
    if (failure is not None and failure.revision_name == current.name) or (
        current.failed and not adapter.completed(workload)
    ):
        return FAILED
    # the adapter's own word: a workload at rest that is not complete (a node NotReady, a pod not
    # Ready, scaled to 0, a staged partition, OnDelete) is not rolling out
    rolling = bool(adapter.rollout_in_progress(workload))
    if newest is not None and newest.restored == current.name and current.number > newest.revision:
        return ROLLING_OUT if rolling else ROLLED_BACK
    if rolling:
        return ROLLING_OUT
    if current.healthy_in_this_revision:
        return HEALTHY
    if current.mark(history.UNVERIFIED_AT):
        return UNVERIFIED
    a = _annotations(workload)
    if current.mark(history.BAKE) or a.get(CHECKS, "").strip() or a.get(ALERTS, "").strip():
        return BAKING
    return COMPLETE  # complete, but not (yet) marked healthy: is the operator running?


def _number(revisions: list[Revision], name: str) -> int | None:
    return next((r.number for r in revisions if r.name == name), None)


def row(adapter: Workload, workload: dict[str, Any], objects: list[dict[str, Any]] | None) -> Row:
    """objects None: the history objects could not be read (the state is UNKNOWN)."""
    meta = workload.get("metadata") or {}
    known = objects is not None
    objects = objects or []
    revisions = _revisions(adapter, workload, objects)
    entries = ledger.of([workload, *objects])
    current = adapter.current(revisions, adapter.template(workload))
    healthy = [r.number for r in revisions if r.healthy]
    last = None
    pr = ""
    if entries:
        e = entries[0]
        last = Rollback(
            e.at,
            e.revision or _number(revisions, e.failed),
            _number(revisions, e.restored),
            e.failed,
            e.restored,
            e.reason,
        )
        failed = next((r for r in revisions if r.name == e.failed), None)
        pr = failed.mark(PR_MARK) if failed else ""
    return Row(
        namespace=meta.get("namespace", ""),
        kind=adapter.kind,
        name=meta.get("name", ""),
        mode=config.parse(_annotations(workload), adapter.kind).mode,
        watching=watching(adapter, workload),
        revision=current.number if current else adapter.revision_of(workload),
        state=current_state(adapter, workload, revisions, current, entries) if known else UNKNOWN,
        last_healthy=max(healthy) if healthy else None,
        last_rollback=last,
        revert_pr=pr,
    )


def _event_time(e: dict[str, Any]) -> str:
    return str(
        e.get("lastTimestamp")
        or (e.get("series") or {}).get("lastObservedTime")
        or e.get("eventTime")
        or e.get("firstTimestamp")
        or (e.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _written(e: dict[str, Any]) -> int:
    """The order Events of the same second were written in: the API server's resourceVersion (opaque,
    but a number on every API server backed by etcd; 0 when it is not)."""
    version = str((e.get("metadata") or {}).get("resourceVersion") or "")
    return int(version) if version.isdigit() else 0


def autorollback_events(events: list[dict[str, Any]], kind: str, name: str) -> list[EventView]:
    """autorollback's Events about one workload, newest first (at most EVENTS_SHOWN)."""
    mine = [
        e
        for e in events
        if COMPONENT in ((e.get("source") or {}).get("component"), e.get("reportingComponent"))
        and (e.get("involvedObject") or {}).get("kind") == kind
        and (e.get("involvedObject") or {}).get("name") == name
    ]
    mine.sort(key=lambda e: (_event_time(e), _written(e)), reverse=True)
    return [
        EventView(
            e.get("type", ""), e.get("reason", ""), e.get("message", ""), _event_time(e), int(e.get("count") or 1)
        )
        for e in mine[:EVENTS_SHOWN]
    ]


def detail(
    adapter: Workload, workload: dict[str, Any], objects: list[dict[str, Any]], events: list[dict[str, Any]] | None
) -> Detail:
    """The detail view; events None: they could not be read."""
    revisions = _revisions(adapter, workload, objects)
    entries = ledger.of([workload, *objects])
    current = adapter.current(revisions, adapter.template(workload))
    notes = []
    if any(_annotations(o).get(ledger.KEY) for o in [workload, *objects]) and not entries:
        notes.append(f"the ledger ({ledger.KEY}) is there but unreadable: not written by a version this CLI knows")
    views = []
    for r in revisions:
        marks = {}
        for key in (*history.MARKS, PR_MARK):
            raw = r.annotations.get(key)
            if raw is None:
                continue
            payload = r.mark(key)
            marks[key.removeprefix(PREFIX)] = payload or f"(a copy of another's mark, ignored: {raw[:60]})"
        if r.annotations.get(STUCK_MARK):  # not bound to its object: written on the restored revision only
            marks[STUCK_MARK.removeprefix(PREFIX)] = r.annotations[STUCK_MARK]
        if r.mark(history.HEALTHY_AT) and r.health is None:
            notes.append(
                f"revision {r.number}: healthy-at {r.mark(history.HEALTHY_AT)!r} is in a form this CLI cannot read"
            )
        views.append(
            RevisionView(
                number=r.number,
                name=r.name,
                images=images(r.template),
                created=r.created,
                available=r.available,
                current=current is not None and r.name == current.name,
                state=revision_state(r, entries),
                marks=marks,
            )
        )
    if events is None:
        notes.append("autorollback's Events could not be read (no permission to list events)")
    meta = workload.get("metadata") or {}
    return Detail(
        row=row(adapter, workload, objects),
        revisions=views,
        ledger=list(entries),
        events=autorollback_events(events or [], adapter.kind, meta.get("name", "")),
        notes=notes,
    )
