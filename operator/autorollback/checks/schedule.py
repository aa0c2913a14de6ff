"""When a bake's checks are evaluated, and what one process remembers of a bake in progress. Pure:
the shell hands in its monotonic clock; nothing here is needed after a restart (the checkpoint on
the ReplicaSet is)."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from autorollback.checks.bake import Bake
from autorollback.checks.streak import State
from autorollback.checks.templates import Check

JITTER = 0.1  # of the interval, added at random to the next look: evaluations of many workloads spread out


@dataclass
class Running:
    """The bake of one revision (a ReplicaSet, by name and uid) in this process. One per workload at
    most, replaced when another revision is baked: bounded by the live workloads."""

    replicaset: str
    uid: str
    bake: Bake
    clock: float  # this process's monotonic time the bake was last advanced to
    template: str = ""  # the digest of the workload's template it is for (state.template_digest)
    evaluated: dict[str, float] = field(default_factory=dict)  # check -> monotonic time of its last evaluation
    written: State | None = None  # the checkpoint last written (or read) on the ReplicaSet
    sealed: str | None = None  # that checkpoint as it is on the ReplicaSet (another one: another process baked)
    told: set[str] = field(default_factory=set)  # what was said once: "<check> no_data", "<check> error"

    def of(self, replicaset: str, uid: str) -> bool:
        return self.replicaset == replicaset and self.uid == uid


def due(running: Running, checks: Sequence[Check], now: float) -> list[Check]:
    """The checks whose interval has passed since their last evaluation (all of them at first)."""
    return [
        c for c in checks if c.name not in running.evaluated or now - running.evaluated[c.name] >= c.template.interval
    ]


def next_in(running: Running, checks: Sequence[Check], now: float, bake_left: float | None) -> float:
    """Seconds until the next evaluation is due, or the bake time runs out (bake_left; None while the
    rollout is not complete)."""
    waits = [
        max(0.0, c.template.interval - (now - running.evaluated[c.name])) if c.name in running.evaluated else 0.0
        for c in checks
    ]
    if bake_left is not None:
        waits.append(bake_left)
    return max(0.0, min(waits, default=0.0))
