"""A work queue like client-go's: each Deployment at most once in it, never worked on by two
workers at once, put back with backoff when its work failed, and worked on again when it
changed while a worker had it.

The queue holds uids, not states: a worker always takes the latest state, so a burst of
changes to one Deployment costs one pass.
"""

import asyncio
from collections.abc import Awaitable, Callable

from autorollback import logs, retry
from autorollback.kube import ApiError

log = logs.get(__name__)


class WorkQueue:
    def __init__(self, process: Callable[[str], Awaitable[ApiError | None]], workers: int):
        self._process = process
        self._workers = workers
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return len(self._queued) + len(self._active) + len(self._timers)

    def add(self, uid: str) -> None:
        """Now: a change is worth a look at once, even while a retry waits (it takes the latest state)."""
        if uid in self._active:
            self._dirty.add(uid)
            return
        timer = self._timers.pop(uid, None)
        if timer:
            timer.cancel()
        if uid not in self._queued:
            self._queued.add(uid)
            self._queue.put_nowait(uid)

    def add_after(self, uid: str, delay: float) -> None:
        """Look again after delay, or sooner if already due sooner."""
        timer = self._timers.get(uid)
        if timer is None or timer.when() > asyncio.get_running_loop().time() + delay:
            self._later(uid, delay)

    def forget(self, uid: str) -> None:
        timer = self._timers.pop(uid, None)
        if timer:
            timer.cancel()
        self._attempts.pop(uid, None)
        self._dirty.discard(uid)

    def _later(self, uid: str, delay: float) -> None:
        old = self._timers.pop(uid, None)
        if old:
            old.cancel()

        def fire() -> None:
            self._timers.pop(uid, None)
            self.add(uid)

        self._timers[uid] = asyncio.get_running_loop().call_later(delay, fire)

    async def _work(self) -> None:
        while True:
            uid = await self._queue.get()
            self._queued.discard(uid)
            self._active.add(uid)
            try:
                error = await self._process(uid)
            except Exception as e:  # a bug in one Deployment's work must not stop the others
                log.exception("work failed unexpectedly; will try again", uid=uid)
                error = ApiError(0, "", f"unexpected error: {e!r}")
            finally:
                self._active.discard(uid)
            if error is not None:
                attempt = self._attempts.get(uid, 0)
                self._attempts[uid] = attempt + 1
                self._dirty.discard(uid)
                self._later(uid, retry.delay(attempt, error.retry_after))
            else:
                self._attempts.pop(uid, None)
                if uid in self._dirty:
                    self._dirty.discard(uid)
                    self.add(uid)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
