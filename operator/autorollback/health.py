"""Is the Deployment watch alive? kopf's own liveness only proves its health task runs.

A quiet cluster is healthy: the watch is only called stale when it has delivered nothing for
`stale_after` seconds *and* the API server shows Deployments whose state the watch never saw.
"""

from dataclasses import dataclass, field


@dataclass
class Freshness:
    stale_after: float
    last_event: float = 0.0  # monotonic seconds of the last watch event
    seen: dict[str, str] = field(default_factory=dict)  # uid -> resourceVersion last delivered

    def observe(self, uid: str, resource_version: str, now: float, deleted: bool = False) -> None:
        self.last_event = now
        if deleted:
            self.seen.pop(uid, None)
        else:
            self.seen[uid] = resource_version

    def quiet_for(self, now: float) -> float:
        return now - self.last_event

    def needs_check(self, now: float) -> bool:
        return self.quiet_for(now) > self.stale_after

    def verdict(self, listed: dict[str, str], now: float) -> tuple[bool, str]:
        """Compare what the API server lists with what the watch delivered."""
        quiet = self.quiet_for(now)
        if quiet <= self.stale_after:
            return True, f"last watch event {quiet:.0f}s ago"
        for uid in [u for u in self.seen if u not in listed]:
            del self.seen[uid]  # deleted while the watch re-listed: kopf sends no DELETED for those
        missed = sum(1 for uid, rv in listed.items() if self.seen.get(uid) != rv)
        if missed:
            return False, (
                f"workload watch is stale: no event for {quiet:.0f}s "
                f"but {missed} workload change(s) were never delivered"
            )
        return True, f"watch quiet for {quiet:.0f}s, nothing missed"


def election(last_attempt: float, leading: bool, now: float, lease: float, tolerance: float = 20.0) -> tuple[bool, str]:
    """Is the leader election loop alive? Its attempts end within the request timeout, so one that
    has not finished an attempt for a lease duration plus `tolerance` is stuck (client-go's
    HealthzAdaptor: unhealthy once the lease is expired by more than a tolerance). A loop that
    failed ends the process; this catches the one that hangs."""
    quiet = now - last_attempt
    if quiet > lease + tolerance:
        return False, f"leader election stuck: no attempt on the Lease for {quiet:.0f}s"
    return True, "leading" if leading else "standby"
