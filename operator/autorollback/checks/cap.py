"""The cluster-wide cap on metric-triggered rollbacks: at most `limit` in any `window` seconds. When
a shared dependency fails (a database, the network), every release that happens to be baking fails
its checks at once; rolling all of them back would not help and would hide the cause. Past the cap,
a failed bake is reported as the rollback it would have been, and not rolled back.

On this process's monotonic clock; the leader's memory (after a failover the new leader's window
starts empty: documented)."""

import contextlib
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Cap:
    limit: int
    window: float  # seconds
    _taken: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, now: float) -> float | None:
        """A slot for one rollback at `now` (give it back if the rollback does not happen); None: the
        cap is reached."""
        with self._lock:
            while self._taken and now - self._taken[0] >= self.window:
                self._taken.popleft()
            if len(self._taken) >= self.limit:
                return None
            self._taken.append(now)
            return now

    def give_back(self, slot: float) -> None:
        with self._lock, contextlib.suppress(ValueError):  # not taken, or left the window
            self._taken.remove(slot)

    def describe(self) -> str:
        return (
            f"{self.limit} metric-triggered rollback{'s' if self.limit != 1 else ''} already happened in the last "
            f"{self.window:g} s across the cluster (the platform's checks.maxRollbacks)"
        )
