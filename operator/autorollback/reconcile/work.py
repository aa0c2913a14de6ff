"""What one pass over a Deployment is given (Work) and what it hands back to the event loop (PassResult)."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from autorollback import kube, logs, state, times
from autorollback.config import Config
from autorollback.context import Context
from autorollback.vocab import Job
from autorollback.workloads.base import Api, Workload

log = logs.get("autorollback.reconcile")  # one logger for the package: its lines keep the name they had


@dataclass(kw_only=True)
class Work:
    ctx: Context
    uid: str
    namespace: str
    name: str
    deployment: dict[str, Any]  # the latest state the watch delivered
    config: Config
    jobs: set[Job]
    workload: Workload  # the adapter of its kind (workloads.KINDS)
    healthy_evidence: tuple[str, dict[str, Any]] | None = None
    api_failure_reported: str = ""
    clocks: times.Clocks = field(default_factory=times.Clocks)  # the memo's timers (monotonic), shared
    problems_done: dict[str, str] = field(default_factory=dict)  # annotation key -> digest already reported
    pods: list[dict[str, Any]] = field(default_factory=list)  # the Deployment's pods, while they are watched
    pods_seen: int = 0
    bake: state.BakeSlot = field(default_factory=state.BakeSlot)  # the memo's, shared

    @property
    def api(self) -> Api:
        """The I/O of its kind."""
        return self.ctx.api_for(self.workload.kind)


@dataclass
class PassResult:
    done: state.RememberedUpdate = field(default_factory=state.RememberedUpdate)  # what the memo records of this pass
    retry: kube.ApiError | None = None  # try again later
    recheck_in: float | None = None  # look again after this many seconds even if nothing changes
    series: set[tuple[str, ...]] = field(default_factory=set)  # metric label values used
    patched: bool = False  # the Deployment was rolled back in this pass

    def recheck(self, seconds: float) -> None:
        self.recheck_in = seconds if self.recheck_in is None else min(self.recheck_in, seconds)


def who(work: Work) -> dict[str, str]:
    return {"namespace": work.namespace, "deployment": work.name}


def now() -> str:
    return times.stamp(dt.datetime.now(dt.UTC))


def since(clocks: times.Clocks, group: str, key: str) -> float | None:
    """Seconds since this process first saw that state, on its monotonic clock (None: it did not)."""
    first = clocks.since(group, key)
    return None if first is None else max(0.0, times.monotonic() - first)
