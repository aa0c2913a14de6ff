"""Drawing rows and the detail view (pure: the clock and the terminal's abilities are passed in)."""

import dataclasses
import datetime as dt
import json
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no types

from autorollback import times
from autorollback.status import core

COLUMNS = (
    "NAMESPACE",
    "KIND/NAME",
    "MODE",
    "WATCHING",
    "REVISION",
    "STATE",
    "LAST HEALTHY",
    "LAST ROLLBACK",
    "REVERT PR",
)
COLOURS = {
    core.HEALTHY: "32",  # green
    core.COMPLETE: "32",
    core.FAILED: "31",  # red
    core.ABANDONED: "31",
    core.ROLLED_BACK: "35",  # magenta
    core.ROLLING_OUT: "33",  # yellow
    core.BAKING: "36",  # cyan
    core.UNVERIFIED: "33",
    "rolled back away from": "31",
}
NONE = "-"


def age(at: str, now: dt.datetime) -> str:
    """kubectl's short ages: 45s, 5m, 3h, 2d ("-" unknown or unreadable)."""
    when = times.parse(at)
    if when == times.NEVER:
        return NONE
    s = max(0, int((now - when).total_seconds()))
    if s < 120:
        return f"{s}s"
    if s < 2 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _paint(text: str, colour: bool) -> str:
    code = COLOURS.get(text)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def rollback_text(r: core.Rollback | None, now: dt.datetime) -> str:
    if r is None:
        return NONE
    frm = NONE if r.from_revision is None else str(r.from_revision)
    to = NONE if r.to_revision is None else str(r.to_revision)
    return f"{age(r.at, now)} ago {frm} -> {to} {r.reason or 'unknown reason'}"


def cells(row: core.Row, now: dt.datetime) -> list[str]:
    return [
        row.namespace,
        f"{row.kind.lower()}/{row.name}",
        row.mode,
        row.watching,
        NONE if row.revision is None else str(row.revision),
        row.state,
        NONE if row.last_healthy is None else str(row.last_healthy),
        rollback_text(row.last_rollback, now),
        row.revert_pr or NONE,
    ]


def grid(header: tuple[str, ...] | list[str], lines: list[list[str]], paint: dict[int, bool] | None = None) -> str:
    """Columns as wide as their content, two spaces apart, the last one not padded."""
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=False)]
    out = []
    for i, line in enumerate([list(header), *lines]):
        parts = []
        for c, text in enumerate(line):
            pad = "" if c == len(line) - 1 else " " * (widths[c] - len(text))
            parts.append((_paint(text, True) if i and (paint or {}).get(c) else text) + pad)
        out.append("  ".join(parts).rstrip())
    return "\n".join(out) + "\n"


def table(rows: list[core.Row], now: dt.datetime, colour: bool = False, namespace: str = "") -> str:
    if not rows:
        where = f" in namespace {namespace}" if namespace else ""
        return f"No workloads opted in to autorollback{where}.\n"
    ordered = sorted(rows, key=lambda r: (r.namespace, r.kind, r.name))
    return grid(COLUMNS, [cells(r, now) for r in ordered], {5: colour})


def detail(d: core.Detail, now: dt.datetime, colour: bool = False) -> str:
    r = d.row
    out = [
        f"Name:          {r.name}",
        f"Namespace:     {r.namespace}",
        f"Kind:          {r.kind}",
        f"Mode:          {r.mode}",
        f"Watching:      {r.watching}",
        f"Revision:      {NONE if r.revision is None else r.revision}",
        f"State:         {_paint(r.state, colour)}",
        f"Last healthy:  {NONE if r.last_healthy is None else f'revision {r.last_healthy}'}",
        f"Last rollback: {rollback_text(r.last_rollback, now)}",
        f"Revert PR:     {r.revert_pr or NONE}",
        "",
        "Revisions:",
    ]
    lines = []
    for v in d.revisions:
        marks = "; ".join(f"{k}={p}" for k, p in v.marks.items()) or NONE
        lines.append(
            [
                f"{v.number}{' *' if v.current else ''}",
                v.name,
                v.state or NONE,
                str(v.available),
                age(v.created, now),
                v.images,
                marks,
            ]
        )
    out.append(
        _indent(grid(("REVISION", "NAME", "STATE", "AVAILABLE", "AGE", "IMAGES", "MARKS"), lines, {2: colour}))
        if lines
        else "  none (no history object left)"
    )
    out.append("Ledger (newest first):")
    entries = [
        [age(e.at, now), str(e.revision or NONE), e.failed, e.restored, e.reason or NONE, str(e.generation or NONE)]
        for e in d.ledger
    ]
    out.append(
        _indent(grid(("AGE", "REVISION", "FAILED", "RESTORED", "REASON", "GENERATION"), entries))
        if entries
        else "  no rollback recorded"
    )
    out.append("Events (autorollback's, newest first):")
    events = [[age(e.last, now), e.type, e.reason, str(e.count), e.message] for e in d.events]
    out.append(_indent(grid(("AGE", "TYPE", "REASON", "COUNT", "MESSAGE"), events)) if events else "  none")
    out.extend(f"Note: {note}" for note in d.notes)
    return "\n".join(x.rstrip("\n") for x in out) + "\n"


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def data(value: core.Row | core.Detail | list[core.Row]) -> Any:
    """The plain data of -o json|yaml (field names are the dataclasses': stable for scripts)."""
    if isinstance(value, list):
        ordered = sorted(value, key=lambda r: (r.namespace, r.kind, r.name))
        return {
            "apiVersion": "autorollback.io/status/v1",
            "kind": "List",
            "items": [dataclasses.asdict(r) for r in ordered],
        }
    return {"apiVersion": "autorollback.io/status/v1", **dataclasses.asdict(value)}


def structured(value: core.Row | core.Detail | list[core.Row], output: str) -> str:
    if output == "json":
        return json.dumps(data(value), indent=2, sort_keys=False) + "\n"
    return str(yaml.safe_dump(data(value), sort_keys=False, default_flow_style=False))
