"""Lease decisions: pure, with times passed in (client-go's leaderelection rules)."""
import datetime as dt
from dataclasses import dataclass
from typing import Any

from autorollback import times


@dataclass(frozen=True)
class Timings:
    lease: float = 15.0  # a lease not renewed for this long may be taken
    renew_deadline: float = 10.0  # the leader gives up when it could not renew for this long
    retry: float = 2.0  # between attempts


micro = times.stamp  # MicroTime, as Leases carry it


def _time(text: str | None) -> dt.datetime | None:
    t = times.parse(text)
    return None if t == times.NEVER else t


@dataclass(frozen=True)
class Step:
    """What to write (None: nothing) and whether this process leads once it is written."""
    spec: dict[str, Any] | None
    leads: bool
    holder: str


def step(lease: dict[str, Any] | None, identity: str, now: dt.datetime, timings: Timings) -> Step:
    """Acquire a free or expired Lease, renew one we hold, or wait for one another process holds."""
    spec = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    renewed = _time(spec.get("renewTime")) or _time(spec.get("acquireTime"))
    duration = float(spec.get("leaseDurationSeconds") or timings.lease)
    expired = renewed is None or (now - renewed).total_seconds() > duration
    stamp = micro(now)
    if holder == identity:
        return Step({**spec, "renewTime": stamp, "leaseDurationSeconds": int(timings.lease)}, True, identity)
    if holder and not expired:
        return Step(None, False, holder)
    transitions = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    return Step({"holderIdentity": identity, "leaseDurationSeconds": int(timings.lease), "acquireTime": stamp,
                 "renewTime": stamp, "leaseTransitions": transitions}, True, identity)


def release(lease: dict[str, Any], identity: str, now: dt.datetime) -> dict[str, Any] | None:
    """On a clean shutdown the leader hands the Lease back at once (client-go's ReleaseOnCancel)."""
    spec = lease.get("spec") or {}
    if spec.get("holderIdentity") != identity:
        return None
    return {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro(now)}
