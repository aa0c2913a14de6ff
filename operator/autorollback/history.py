"""Revision history: the ReplicaSets a Deployment controls, what is known about each, and the
choice of the revision to roll back to.

What is known comes from two places, both bound to the ReplicaSet they describe:
- marks: annotations on the ReplicaSet whose value starts with that ReplicaSet's name
  (`web-5d8f revision 3`). kubectl's undo and the Deployment controller copy
  annotations between a Deployment and its ReplicaSets, so a mark found on another ReplicaSet
  is a copy and is ignored;
- the rollback ledger on the Deployment (see `ledger`), written in the rollback patch itself.
Health, failure and rollbacks are ordered without clocks, by the Deployment revision each one is
about: the controller gives every rollout the next number, and never copies it between objects.
The times in marks come from different clocks (the control plane's, this process's).
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from autorollback import times
from autorollback.config import PREFIX
from autorollback.ledger import Entry

HEALTHY_AT = PREFIX + "healthy-at"  # "revision <N> generation <G>[ partition <P>][ outlived <failure id>]"
FAILED_AT = PREFIX + "failed-at"  # "<failure id time> revision <N>": the failure, and the rollout it ended
FAILED_REASON = PREFIX + "failed-reason"
OUTCOME = PREFIX + "outcome"  # what the operator did about that failure
UNVERIFIED_AT = PREFIX + "unverified-at"  # "revision <N> checks <a,b>": completed; its bake showed nothing either way
BAKE = PREFIX + "bake"  # the bake's checkpoint (checks.streak.seal): elapsed bake time and streaks
ALERTS_PREEXISTING = PREFIX + "alerts-preexisting"  # "revision <N> <a,b or ->": firing at the first ready pod
MARKS = (HEALTHY_AT, FAILED_AT, FAILED_REASON, OUTCOME, UNVERIFIED_AT, BAKE, ALERTS_PREEXISTING)


def bind(replicaset: str, payload: str) -> str:
    """A mark's value: only valid on the ReplicaSet it names."""
    return f"{replicaset} {payload}"


def failure_payload(updated: str, revision: int) -> str:
    """failed-at's payload: the failure's time, then the Deployment revision whose rollout failed
    (a ReplicaSet reused by a later revision is a new rollout)."""
    return f"{updated} revision {revision}"


def bound(replicaset: str, value: str | None) -> str:
    """The payload of a mark if it was written for this ReplicaSet, else ""."""
    name, _, payload = (value or "").partition(" ")
    return payload if name == replicaset and payload else ""


@dataclass(frozen=True)
class Health:
    """What a healthy-at mark says, in an order no clock takes part in: the Deployment revision whose
    rollout completed on this template, the Deployment's generation seen complete (its
    status.observedGeneration; 0 in marks written before generations were), and the failure of that
    same revision it outlived (its id, as failed-at carries it; "" if none). A mark of an earlier
    version carried a time instead (`legacy`): it is read by the old rule until the next completion
    rewrites it."""

    revision: int
    outlived: str = ""
    legacy: dt.datetime | None = None
    generation: int = 0
    partition: int = 0  # a StatefulSet's partition then: the completion covered the pods at or above it


def health_payload(revision: int, outlived: str = "", generation: int = 0, partition: int = 0) -> str:
    return (
        f"revision {revision}"
        + (f" generation {generation}" if generation else "")
        + (f" partition {partition}" if partition else "")
        + (f" outlived {outlived}" if outlived else "")
    )


def parse_health(payload: str) -> Health | None:
    parts = payload.split(" ")
    if parts[0] == "revision" and len(parts) >= 2 and parts[1].isdigit():
        revision, rest, numbers = int(parts[1]), parts[2:], {"generation": 0, "partition": 0}
        for key in numbers:
            if rest[:1] == [key] and len(rest) >= 2 and rest[1].isdigit():
                numbers[key], rest = int(rest[1]), rest[2:]
        generation, partition = numbers["generation"], numbers["partition"]
        if not rest:
            return Health(revision, generation=generation, partition=partition)
        if len(rest) == 2 and rest[0] == "outlived":
            return Health(revision, rest[1], generation=generation, partition=partition)
        return None
    if len(parts) == 1 and times.parse(parts[0]) > times.NEVER:
        return Health(0, legacy=times.parse(parts[0]))
    return None


@dataclass(frozen=True)
class Revision:
    number: int
    name: str
    template: dict[str, Any]
    annotations: dict[str, str]
    created: str = ""
    available: int = 0  # pods of this ReplicaSet available right now
    ledger: tuple[Entry, ...] = field(default=(), compare=False)

    def mark(self, key: str) -> str:
        return bound(self.name, self.annotations.get(key))

    def at(self, key: str) -> dt.datetime:
        return times.parse(self.mark(key).split(" ", 1)[0])

    @property
    def failed_in(self) -> int | None:
        """The revision whose rollout the recorded failure ended (None: not recorded)."""
        parts = self.mark(FAILED_AT).split(" ")
        return int(parts[2]) if len(parts) == 3 and parts[1] == "revision" and parts[2].isdigit() else None

    @property
    def failure_id(self) -> str:
        """The recorded failure's id ("" if none), as failed-at carries it."""
        return self.mark(FAILED_AT).split(" ", 1)[0]

    @property
    def failed_reason(self) -> str:
        return self.mark(FAILED_REASON).partition(":")[0]

    @property
    def health(self) -> Health | None:
        return parse_health(self.mark(HEALTHY_AT))

    def _since_health(self, role: str) -> list[Entry]:
        """Ledger entries with this ReplicaSet in `role` ("failed" or "restored") written after it was
        last seen healthy, newest first. A rollback of revision N away from or back to it comes after
        a completion of revision N or lower (the restored template's rollout is N+1 or later); in
        revision N itself, generations decide (`_after`)."""
        health = self.health
        return [e for e in self.ledger if getattr(e, role) == self.name and (health is None or _after(e, health))]

    @property
    def rolled_back_and_unproven(self) -> bool:
        """autorollback rolled back away from this template and it never became healthy since."""
        return bool(self._since_health("failed"))

    @property
    def restored_and_unproven(self) -> bool:
        """autorollback rolled back to this template and it never became healthy since."""
        return bool(self._since_health("restored"))

    @property
    def last_rolled_back(self) -> Entry | None:
        return next((e for e in self.ledger if e.failed == self.name), None)

    @property
    def last_restored(self) -> Entry | None:
        return next((e for e in self.ledger if e.restored == self.name), None)

    def _failed_since_health(self) -> bool:
        if self.rolled_back_and_unproven:
            return True
        if not self.failure_id:
            return False
        health = self.health
        if health is None:
            return True
        if health.legacy:
            return self.at(FAILED_AT) >= health.legacy  # the old rule, for the old marks
        failed_in = self.failed_in or 0
        return failed_in > health.revision or (failed_in == health.revision and self.failure_id != health.outlived)

    @property
    def healthy(self) -> bool:
        return self.health is not None and not self._failed_since_health()

    @property
    def healthy_in_this_revision(self) -> bool:
        """Seen complete in the rollout that made it its current revision (a reused ReplicaSet's
        earlier completions say nothing about the rollout under way now)."""
        health = self.health
        return self.healthy and health is not None and not health.legacy and health.revision >= self.number

    @property
    def failed(self) -> bool:
        return (bool(self.failure_id) or self.last_rolled_back is not None) and not self.healthy

    @property
    def unverified(self) -> bool:
        """It completed, and the bake of its metric checks ended with no passing evaluation of some
        check (nor a failed one): a valid rollback target, but not known healthy."""
        return bool(self.mark(UNVERIFIED_AT)) and not self.failed

    @property
    def serving(self) -> bool:
        """Its pods are available now: state that lasts, unlike the moment a rollout completed."""
        return self.available > 0


def _after(entry: Entry, health: Health) -> bool:
    """The rollback came after the completion the mark names. By revision; in the same revision (the
    rollback patch undone before the controller saw it, so the template it rolled back away from
    completed in the revision that failed; or a rollout timed out after it had completed, once a
    pause or a scale made the controller check its progress again) by the Deployment's generation:
    the one the rollback patched against the one seen complete. The same generation too: a rollback
    decided on the generation seen complete came after that completion (the controller times out no
    rollout it declared complete until the spec changes). Either without a generation (written by
    earlier versions): the same revision counts as after."""
    if health.legacy:  # both written by earlier versions on the operator's clock: the old rule
        return entry.revision > 0 or times.parse(entry.at) >= health.legacy
    if entry.revision == health.revision and entry.generation and health.generation:
        return entry.generation >= health.generation
    return entry.revision >= health.revision


def newer(history: list[Revision], revision: Revision) -> list[Revision]:
    """The other revisions numbered above this one."""
    return [r for r in history if r.number > revision.number and r.name != revision.name]


@dataclass(frozen=True)
class Target:
    revision: Revision | None
    why: str


def choose_target(history: list[Revision], failing: Revision) -> Target:
    """The newest older revision known healthy; else the newest older one that completed but whose
    bake was unverified; else the newest older one serving now; else the newest older one not known
    to have failed."""
    older = [r for r in history if r.number < failing.number and r.name != failing.name]
    if not older:
        return Target(
            None,
            "there is no older revision to go back to (this is the first revision, "
            "or revisionHistoryLimit removed the older revisions)",
        )
    healthy = next((r for r in older if r.healthy), None)
    if healthy:
        return Target(healthy, f"revision {healthy.number} is the newest known to have been healthy")
    completed = next((r for r in older if r.unverified), None)
    if completed:
        return Target(
            completed,
            f"no older revision is known healthy; revision {completed.number} is the newest that completed "
            "(its metric checks showed nothing either way)",
        )
    serving = next((r for r in older if r.serving and not r.failed), None)
    if serving:
        return Target(
            serving,
            f"no older revision is known healthy; revision {serving.number} is the newest "
            f"whose pods are available now ({serving.available})",
        )
    untried = next((r for r in older if not r.failed), None)
    if untried:
        return Target(
            untried,
            f"no older revision is known healthy or has available pods; revision "
            f"{untried.number} is the newest not known to have failed",
        )
    numbers = ", ".join(str(r.number) for r in older)
    return Target(None, f"every older revision ({numbers}) is known to have failed")
