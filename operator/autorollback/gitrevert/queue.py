"""The reverts waiting for a worker: fair between namespaces, one job per failed ReplicaSet.

A namespace has at most `per_namespace` jobs running at once; workers take namespaces in turn, so
one tenant's many failures wait behind each other, never in front of another tenant's. Nothing is
dropped: a job waits until its namespace's turn comes. Jobs are small (no Deployment bodies) and
there is at most one per failed ReplicaSet, so the queue is bounded by the live objects.
"""

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any


class Queue:
    def __init__(self, per_namespace: int = 1):
        self.per_namespace = per_namespace
        self._lock = threading.Condition()
        self._waiting: dict[str, OrderedDict[str, Any]] = {}  # namespace -> key -> job
        self._turns: deque[str] = deque()  # namespaces with waiting jobs, in turn order
        self._running: dict[str, set[str]] = {}  # namespace -> keys being worked on
        self._closed = False

    def put(self, namespace: str, key: str, job: Any) -> bool:
        """Queue a job unless one for the same key waits or runs already."""
        with self._lock:
            if self._closed or key in self._running.get(namespace, ()) or key in self._waiting.get(namespace, {}):
                return False
            if namespace not in self._waiting:
                self._waiting[namespace] = OrderedDict()
                self._turns.append(namespace)
            self._waiting[namespace][key] = job
            self._lock.notify()
            return True

    def _next(self) -> tuple[str, str, Any] | None:
        for _ in range(len(self._turns)):
            namespace = self._turns[0]
            self._turns.rotate(-1)
            if len(self._running.get(namespace, ())) < self.per_namespace:
                key, job = self._waiting[namespace].popitem(last=False)
                if not self._waiting[namespace]:
                    del self._waiting[namespace]
                    self._turns.remove(namespace)
                self._running.setdefault(namespace, set()).add(key)
                return namespace, key, job
        return None

    def take(self, timeout: float | None = None) -> tuple[str, str, Any] | None:
        """The next job whose namespace has room, or None once closed (or on timeout)."""
        with self._lock:
            while not self._closed:
                found = self._next()
                if found:
                    return found
                if not self._lock.wait(timeout):
                    return None
            return None

    def done(self, namespace: str, key: str) -> None:
        with self._lock:
            running = self._running.get(namespace, set())
            running.discard(key)
            if not running:
                self._running.pop(namespace, None)
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def waiting(self, namespace: str | None = None) -> int:
        with self._lock:
            if namespace is not None:
                return len(self._waiting.get(namespace, {}))
            return sum(len(jobs) for jobs in self._waiting.values())


def serve(queue: Queue, work: Callable[[Any], None]) -> None:
    """A worker thread's loop: take, work, done, until the queue closes."""
    while True:
        taken = queue.take()
        if taken is None:
            return
        namespace, key, job = taken
        try:
            work(job)
        finally:
            queue.done(namespace, key)
