"""The rollback ledger: one annotation on the Deployment, written in the same patch as the rollback.

Because the rollback and its record are one write, no crash can leave a rollback without its
record (or a record without its rollback): the ledger is what makes "once per failure" hold,
and it survives the garbage collection of ReplicaSets (the loop guard needs that).

The Deployment controller copies the Deployment's annotations onto its ReplicaSets, and
`kubectl rollout undo` copies a ReplicaSet's annotations back onto the Deployment, so an undo
can bring back an older copy. Every entry names the ReplicaSets it is about, so the copies are
merged (`merge`) rather than trusted one at a time.

Entries are ordered by their sequence number `n` (one more than the highest on record when the
entry is written, in the same write as the rollback, under the Deployment's resourceVersion), never
by their time: `at` is this process's wall clock, written down for people only. Healthy marks
record the highest `n` they saw, which orders them against the rollbacks (see `history`).
"""

import json
from dataclasses import asdict, dataclass
from typing import Any

from autorollback import times
from autorollback.annotations import PREFIX

KEY = PREFIX + "rollbacks"
LIMIT = 20  # entries kept, newest first
MAX_TEXT = 16 * 1024  # a longer value was not written by autorollback


@dataclass(frozen=True)
class Entry:
    failed: str  # the ReplicaSet rolled back away from
    restored: str  # the ReplicaSet rolled back to
    failure: str  # lastUpdateTime of the failure that was handled
    at: str  # when the rollback was written (this process's wall clock: for people, never compared)
    reason: str = ""
    n: int = 0  # sequence number on this Deployment (0: written before sequence numbers existed)

    @property
    def id(self) -> str:
        return f"{self.failed} {self.failure}"


def parse(text: str | None) -> tuple[Entry, ...]:
    """Never raises: anything that is not a list of entries is no ledger."""
    if not text or len(text) > MAX_TEXT:
        return ()
    try:
        items = json.loads(text)
    except ValueError:
        return ()
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        fields = {k: item.get(k) for k in ("failed", "restored", "failure", "at", "reason")}
        n = item.get("n", 0)
        if not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**53):
            continue
        if all(isinstance(fields[k], str) and fields[k] for k in ("failed", "restored", "failure", "at")):
            out.append(Entry(**{k: v if isinstance(v, str) else "" for k, v in fields.items()}, n=n))
    return tuple(out)


def _order(e: Entry) -> tuple[int, Any]:
    # entries written before sequence numbers (n=0) keep the order of their times among themselves
    return (e.n, times.parse(e.at) if e.n == 0 else times.NEVER)


def merge(*ledgers: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """All entries of every copy, each failure once, newest first, at most LIMIT."""
    by_id: dict[str, Entry] = {}
    for entries in ledgers:
        for e in entries:
            if e.id not in by_id or _order(e) > _order(by_id[e.id]):
                by_id[e.id] = e
    return tuple(sorted(by_id.values(), key=_order, reverse=True)[:LIMIT])


def last(entries: tuple[Entry, ...]) -> int:
    """The highest sequence number on record (0: none)."""
    return max((e.n for e in entries), default=0)


def of(objects: list[dict[str, Any]]) -> tuple[Entry, ...]:
    """The merged ledger of a Deployment and its ReplicaSets (each carries a copy)."""
    return merge(*(parse((o["metadata"].get("annotations") or {}).get(KEY)) for o in objects))


def dump(entries: tuple[Entry, ...]) -> str:
    return json.dumps([asdict(e) for e in entries[:LIMIT]], separators=(",", ":"))


def find(entries: tuple[Entry, ...], failure_id: str) -> Entry | None:
    return next((e for e in entries if e.id == failure_id), None)
