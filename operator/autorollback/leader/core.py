"""Lease decisions: pure, with times passed in (client-go's tools/leaderelection rules).

No time written by another process is trusted. client-go: "A client only acts on timestamps captured
locally to infer the state of the leader election. The client does not consider timestamps in the
leader election record to be accurate because these timestamps may not have been produced by a local
clock." So a Lease held by another process expires `leaseDurationSeconds` after this process last
*observed the record change*, on this process's monotonic clock; `renewTime` and `acquireTime` are
written (as upstream does, for people reading the Lease) and never compared with anything.

The leader, for its part, counts its renew deadline from before the request that renewed: the
write reached the API server after that moment, and any other process observed it later still, so
the leader stops (renew deadline < lease duration) before anyone can take over, whatever the wall
clocks say (rates of time may differ by at most leaseDuration/renewDeadline).
"""

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Any

from autorollback import times

JITTER = 1.2  # client-go's JitterFactor: a candidate waits retry .. retry * (1 + 1.2) between tries


@dataclass(frozen=True)
class Timings:
    lease: float = 15.0  # a Lease whose record did not change for this long (as observed here) may be taken
    renew_deadline: float = 10.0  # the leader gives up when it could not renew for this long
    retry: float = 2.0  # between attempts

    @property
    def request_timeout(self) -> float:
        """Each Lease request's overall deadline: a renew that hangs must not outlive the renew
        deadline's margin to the lease duration."""
        return max(0.1, min(10.0, self.lease - self.renew_deadline))

    @property
    def lease_seconds(self) -> int:
        """leaseDurationSeconds as written: whole seconds, never less than the lease (rounded up)."""
        return max(1, math.ceil(self.lease))


def candidate_wait(timings: Timings, rand: float | None = None) -> float:
    """Between a candidate's attempts, jittered like client-go's acquire loop (wait.JitterUntil)."""
    return timings.retry * (1 + JITTER * (random.random() if rand is None else rand))


micro = times.stamp  # MicroTime, as Leases carry it


def record(lease: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What identifies one version of the Lease: any change of it is a sign of life of its holder."""
    if lease is None:
        return None
    spec = lease.get("spec") or {}
    return (
        (lease.get("metadata") or {}).get("resourceVersion"),
        spec.get("holderIdentity") or "",
        spec.get("renewTime"),
        spec.get("acquireTime"),
        spec.get("leaseDurationSeconds"),
        spec.get("leaseTransitions"),
    )


@dataclass(frozen=True)
class Observed:
    """The Lease record as this process last saw it, and when it first saw it so (monotonic seconds)."""

    record: tuple[Any, ...] | None
    at: float
    holder: str = ""
    duration: float = 0.0
    transitions: int = 0


def observe(previous: Observed | None, lease: dict[str, Any] | None, now: float, timings: Timings) -> Observed:
    """The observation after reading `lease` at monotonic time `now`: its time moves only when the record changed."""
    rec = record(lease)
    if previous is not None and previous.record == rec:
        return previous
    spec = (lease or {}).get("spec") or {}
    try:
        duration = float(spec.get("leaseDurationSeconds") or 0) or timings.lease
    except (TypeError, ValueError):
        duration = timings.lease
    try:
        transitions = int(spec.get("leaseTransitions") or 0)
    except (TypeError, ValueError):
        transitions = 0
    return Observed(rec, now, spec.get("holderIdentity") or "", duration, transitions)


def expired(observed: Observed, now: float) -> bool:
    """client-go's !isLeaseValid: no change of the record observed for its leaseDurationSeconds."""
    return now - observed.at >= observed.duration


@dataclass(frozen=True)
class Step:
    """What to write (None: nothing; create: the Lease does not exist yet) and whether this process
    leads once it is written."""

    spec: dict[str, Any] | None
    leads: bool
    holder: str
    create: bool = False


def step(
    lease: dict[str, Any] | None, observed: Observed, identity: str, now: float, wall: dt.datetime, timings: Timings
) -> Step:
    """Acquire a free or expired Lease, renew one we hold, or wait for one another process holds.

    `observed` is `observe(...)` of this very `lease`; `now` is monotonic, `wall` only fills in the
    timestamps written for people to read."""
    stamp = micro(wall)
    fresh = {
        "holderIdentity": identity,
        "leaseDurationSeconds": timings.lease_seconds,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": 0,
    }
    if lease is None:
        return Step(fresh, True, identity, create=True)
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    if holder == identity:  # ours: renew, keeping acquireTime and the count of transitions
        return Step(
            {
                **spec,
                "holderIdentity": identity,
                "leaseDurationSeconds": timings.lease_seconds,
                "renewTime": stamp,
                "leaseTransitions": observed.transitions,
            },
            True,
            identity,
        )
    if holder and not expired(observed, now):
        return Step(None, False, holder)
    # free (released) or expired: take it; every change of holder counts, a released Lease's too
    return Step({**spec, **fresh, "leaseTransitions": observed.transitions + 1}, True, identity)


def release(lease: dict[str, Any], identity: str, wall: dt.datetime) -> dict[str, Any] | None:
    """On a clean shutdown the leader hands the Lease back at once (client-go's ReleaseOnCancel):
    no holder, a one-second duration, the count of transitions kept."""
    spec = lease.get("spec") or {}
    if spec.get("holderIdentity") != identity:
        return None
    stamp = micro(wall)
    return {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": stamp, "acquireTime": stamp}
