"""The rollback ledger: one annotation on the Deployment, written in the same patch as the rollback.

Because the rollback and its record are one write, no crash can leave a rollback without its
record (or a record without its rollback): the ledger is what makes "once per failure" hold,
and it survives the garbage collection of ReplicaSets (the loop guard needs that).

The Deployment controller copies the Deployment's annotations onto its ReplicaSets, and
`kubectl rollout undo` copies a ReplicaSet's annotations back onto the Deployment, so an undo
can bring back an older copy. Every entry names the ReplicaSets it is about, so the copies are
merged (`merge`) rather than trusted one at a time.

Entries are ordered by the Deployment revision whose rollout failed (`revision`: the controller's
numbers only grow, and neither kubectl nor the controller ever copies them between objects), then
by the Deployment's `metadata.generation` the rollback patched (`generation`: the API server's,
it only grows and nothing copies it), never by their time: `at` is this process's wall clock,
written down for people only. Healthy marks name the revision and the generation they saw
complete, which orders them against the rollbacks (see `history`).
"""

import json
from dataclasses import asdict, dataclass
from typing import Any

from autorollback import times
from autorollback.config import PREFIX

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
    revision: int = 0  # the Deployment revision whose rollout failed (0: written before revisions were)
    generation: int = (
        0  # the Deployment's metadata.generation the rollback patched (0: written before generations were)
    )

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
        numbers = {k: item.get(k, 0) for k in ("revision", "generation")}
        if not all(_count(v) for v in numbers.values()):
            continue
        if all(isinstance(fields[k], str) and fields[k] for k in ("failed", "restored", "failure", "at")):
            strings = {k: v if isinstance(v, str) else "" for k, v in fields.items()}
            out.append(
                Entry(
                    strings["failed"],
                    strings["restored"],
                    strings["failure"],
                    strings["at"],
                    strings["reason"],
                    revision=numbers["revision"],
                    generation=numbers["generation"],
                )
            )
    return tuple(out)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _order(e: Entry) -> tuple[int, int, Any]:
    # entries written before revisions were (0) keep the order of their times among themselves
    return (e.revision, e.generation, times.parse(e.at) if e.revision == 0 else times.NEVER)


def merge(*ledgers: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """All entries of every copy, each failure once, newest first, at most LIMIT."""
    by_id: dict[str, Entry] = {}
    for entries in ledgers:
        for e in entries:
            if e.id not in by_id or _order(e) > _order(by_id[e.id]):
                by_id[e.id] = e
    return tuple(sorted(by_id.values(), key=_order, reverse=True)[:LIMIT])


def of(objects: list[dict[str, Any]]) -> tuple[Entry, ...]:
    """The merged ledger of a Deployment and its ReplicaSets (each carries a copy)."""
    return merge(*(parse((o["metadata"].get("annotations") or {}).get(KEY)) for o in objects))


def dump(entries: tuple[Entry, ...]) -> str:
    return json.dumps([asdict(e) for e in entries[:LIMIT]], separators=(",", ":"))


def find(entries: tuple[Entry, ...], failure_id: str) -> Entry | None:
    return next((e for e in entries if e.id == failure_id), None)
