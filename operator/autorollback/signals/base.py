"""The seam for verdict sources: everything that can say "this rollout failed" (the controller's
deadline, a deadline autorollback measures, the pods' fast signals; next, metric checks) answers
the same question the same way, and every answer goes through the same decision. Pure."""

from dataclasses import dataclass, field
from typing import Any, Protocol

from autorollback import times
from autorollback.workloads.base import Failure, Workload


@dataclass(frozen=True)
class Facts:
    """What a source may judge: the workload and its history as read together, its pods (when
    watched), and this process's clocks (monotonic) for graces and measured deadlines."""

    workload: dict[str, Any]
    history: list[dict[str, Any]]
    pods: list[dict[str, Any]] = field(default_factory=list)
    clocks: times.Clocks | None = None
    now: float = 0.0  # this process's monotonic clock
    adapter: Workload = field(kw_only=True)  # the adapter of its kind (workloads.KINDS)


@dataclass(frozen=True)
class Verdict:
    failure: Failure | None = None
    recheck_in: float | None = None  # seconds until a grace period runs out (look again then)


class Source(Protocol):
    def verdict(self, facts: Facts) -> Verdict | None:
        """The failure this source sees (or when to look again); None: nothing to say."""


@dataclass(frozen=True)
class Judged:
    """A verdict the shell reached on this very state, as a source (the pods' fast signals: their
    graces run on the shell's clocks, so it judges them and hands the decision the failure)."""

    failure: Failure

    def verdict(self, facts: Facts) -> Verdict:
        return Verdict(self.failure)
