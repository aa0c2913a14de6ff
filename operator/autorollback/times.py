"""RFC 3339 times as the API server and autorollback write them; compared parsed, never as text.
And the durations this process measures itself (Clocks), on its monotonic clock."""

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def parse(text: str | None) -> dt.datetime:
    """A time; missing or unreadable ones count as never."""
    try:
        t = dt.datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        return NEVER
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clocks:
    """Durations this process measures about one Deployment, on its own monotonic clock.

    Every timer starts when this process first saw the state it times (a fast signal's pod state,
    a rollout that makes no progress), never at a time another component wrote (a kubelet, the
    API server, another replica) and never on this process's wall clock: a node whose clock is
    wrong, or a clock that jumps, cannot shorten or stretch a grace or a deadline. A restart starts
    the timers again (later, never sooner) unless they were resumed from a checkpoint of elapsed
    seconds recorded in the cluster. Group and key name the state; a key is an identity, never a
    time to compare. One worker at a time per Deployment, but the event loop writes too: locked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[str, dict[str, float]] = {}
        self._labels: dict[tuple[str, str], str] = {}

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"first": self._first, "labels": self._labels}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._first, self._labels = state["first"], state["labels"]

    def track(
        self, group: str, keys: Iterable[str], now: float, resume: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Seconds each of these states has lasted as this process saw it. States new to it start
        now, or `resume[key]` seconds ago (a checkpoint: the caller passes only one it verified, and
        only on its first look, never for a state it saw begin); the group's other states are
        forgotten (they ended: should one come back, it is timed anew)."""
        with self._lock:
            old = self._first.get(group, {})
            new = {k: old[k] if k in old else now - max(0.0, (resume or {}).get(k, 0.0)) for k in keys}
            if new:
                self._first[group] = new
            else:
                self._first.pop(group, None)
            for gone in set(old) - set(new):
                self._labels.pop((group, gone), None)
            return {k: max(0.0, now - t) for k, t in new.items()}

    def note(self, group: str, key: str, now: float) -> None:
        """Remember when this state was first seen (keeping the group's others)."""
        with self._lock:
            self._first.setdefault(group, {}).setdefault(key, now)

    def since(self, group: str, key: str) -> float | None:
        """The monotonic time this process first saw the state (None: it did not)."""
        with self._lock:
            return self._first.get(group, {}).get(key)

    def keys(self, group: str) -> set[str]:
        """The states of the group this process is timing now (empty: none, or never any)."""
        with self._lock:
            return set(self._first.get(group, {}))

    def label(self, group: str, key: str, make: Callable[[], str]) -> str:
        """A name for a running timer, made once and kept while the timer runs."""
        with self._lock:
            if (group, key) not in self._labels:
                self._labels[(group, key)] = make()
            return self._labels[(group, key)]

    def forget(self, group: str, key: str | None = None) -> None:
        with self._lock:
            keys = list(self._first.pop(group, {})) if key is None else [key]
            if key is not None:
                self._first.get(group, {}).pop(key, None)
            for k in keys:
                self._labels.pop((group, k), None)


def monotonic() -> float:
    return time.monotonic()
