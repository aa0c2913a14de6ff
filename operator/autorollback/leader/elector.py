"""Keeps this process's leadership on a Lease in the operator's namespace, as client-go's
LeaderElector does, and ends the process the moment it stops being the leader, as
kube-controller-manager does (`leaderelection lost`): the chart restarts it as a standby.

- A candidate takes the Lease when it is free, or when its record did not change for
  `leaseDurationSeconds` as observed on this process's monotonic clock (core.py).
- The leader counts its renew deadline from before the request that renewed. A watchdog thread ends
  the process (exit code 1) when the deadline passes without a renewal, and every Kubernetes write
  asks `leads()` first (kube.Client.guard), which ends the process too when it finds the deadline passed:
  once this process knows it lost, it issues nothing more, Kubernetes write, git push or pull request.
  That is all a Lease can give: client-go "does not guarantee that only one client is acting as a
  leader (a.k.a. fencing)"; a write already sent, or a process frozen between its check and its
  send, is kept from doing harm by the writes themselves (resourceVersion preconditions, the ledger).
- Any unexpected error of the election loop ends the process too, loudly: a replica whose loop died
  must not sit there, healthy-looking, never leading again.
- A clean stop (SIGTERM): `stop()` ends the loop for good (this process never takes the Lease again),
  the runner lets the writes in flight finish, then `release()` hands the Lease back at once.
"""

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import urllib3

from autorollback import faults, kube, logs, telemetry
from autorollback.leader import core

log = logs.get(__name__)
EXIT_LOST = 1  # leadership lost (renew deadline passed, or another holder seen): restart as a standby
EXIT_BROKEN = 1  # the election loop failed unexpectedly


def identity() -> str:
    """POD_NAME plus a unique suffix, as kube-controller-manager does (hostname + "_" + UUID): a
    restarted process with the same pod name must not renew its predecessor's term."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4()}"


def _die(code: int) -> None:
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # exiting anyway
            handler.flush()
    os._exit(code)


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """call() in its own thread, given up after `seconds` (ApiError 0, as for no answer). A write
    given up on may still land: the next attempt reads the Lease and sees whose it is."""
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            done.set_result(call())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            done.set_exception(e)

    threading.Thread(target=run, name="lease-request", daemon=True).start()
    try:
        return done.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        raise kube.ApiError(0, "", f"no answer within {seconds:g}s") from None


class Elector:
    def __init__(
        self,
        api: kube.Client,
        namespace: str,
        name: str,
        me: str,
        timings: core.Timings,
        on_change: Callable[[bool], None] = lambda leads: None,
        clock: Callable[[], float] = time.monotonic,
        exit: Callable[[int], None] = _die,
    ):
        self.api = api  # unguarded: the Lease is written to become and stay the leader
        self.namespace, self.name, self.me, self.timings = namespace, name, me, timings
        self.on_change = on_change
        self.clock, self.exit = clock, exit
        self.holder = ""
        self.last_attempt = clock()  # monotonic end of the last attempt, whatever its outcome (for /healthz)
        self._observed: core.Observed | None = None
        self._leading = False
        self._valid_until = float("-inf")  # monotonic: start of the last successful renewal + renew deadline
        self._stopped = False  # stop(): no attempt ever again
        self._released = False
        self._state = threading.Condition()
        self._attempting = threading.Lock()  # held while an attempt may write the Lease
        self._watchdog: threading.Thread | None = None

    # --- what the rest of the process asks ---------------------------------------------------------

    def leads(self) -> bool:
        """May this process write now? A leader whose renew deadline passed learns here that it lost,
        and the process ends before the write is sent."""
        with self._state:
            if not self._leading or self._released:
                return False
            if self.clock() >= self._valid_until:
                self._lost("the renew deadline passed before a write")
                return False
        if threading.current_thread() is not threading.main_thread():
            faults.point("leader_checked")  # tests: a write checked, not yet sent (never on the event loop)
        return True

    @property
    def leading(self) -> bool:
        """This process's view, without side effects (for /healthz and the clean stop)."""
        return self._leading and not self._released

    def valid_for(self) -> float:
        """Seconds this process may still act as the leader without renewing (0: not leading)."""
        with self._state:
            return max(0.0, self._valid_until - self.clock()) if self._leading and not self._released else 0.0

    # --- the API ------------------------------------------------------------------------------------

    def _path(self, name: str = "") -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        return f"{base}/{name}" if name else base

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        """One Lease request with an overall deadline of leaseDuration - renewDeadline (urllib3's
        timeouts bound each socket operation, not the whole answer)."""
        return within(self.timings.request_timeout, lambda: self._send(method, path, body))

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        return self.api.request(
            method, path, body=body, unguarded=True, timeout=urllib3.Timeout(total=self.timings.request_timeout)
        )

    def _get(self) -> dict[str, Any] | None:
        try:
            return self._call("GET", self._path(self.name))
        except kube.ApiError as e:
            if e.status == 404:
                return None
            raise

    def _write(self, lease: dict[str, Any] | None, spec: dict[str, Any]) -> None:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}
        if lease is None:
            self._call("POST", self._path(), body)
        else:  # optimistic concurrency: a PUT with the resourceVersion we read (409: someone wrote first)
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
            self._call("PUT", self._path(self.name), body)

    # --- the loop -----------------------------------------------------------------------------------

    def attempt(self) -> bool:
        """One tryAcquireOrRenew (in a thread): True when this process holds the Lease afterwards."""
        with self._attempting:
            if self._stopped:
                return False
            started = self.clock()  # the renew deadline counts from before the request
            lease = self._get()
            self._observed = core.observe(self._observed, lease, self.clock(), self.timings)
            s = core.step(lease, self._observed, self.me, self.clock(), dt.datetime.now(dt.UTC), self.timings)
            self.holder = s.holder
            if s.spec is None:
                if self._leading and self._observed.holder != self.me:
                    self._lost(f"the Lease is held by {self._observed.holder}")
                return False
            self._write(None if s.create else lease, s.spec)
            with self._state:
                self._valid_until = started + self.timings.renew_deadline
                self._state.notify_all()
            return True

    def _set(self, leading: bool) -> None:
        with self._state:
            if leading == self._leading:
                return
            self._leading = leading
            self._state.notify_all()
        telemetry.leader.set(1 if leading else 0)
        log.info(
            "leadership changed",
            leader=leading,
            identity=self.me,
            holder=self.holder,
            lease=f"{self.namespace}/{self.name}",
        )
        self.on_change(leading)

    def _lost(self, why: str) -> None:
        """Stop acting at once: the process ends (kube-controller-manager's `leaderelection lost`)."""
        telemetry.leader.set(0)
        log.error(
            "leader election lost: exiting at once so that this replica acts no more; it comes back as a standby",
            reason=why,
            identity=self.me,
            lease=f"{self.namespace}/{self.name}",
        )
        self.exit(EXIT_LOST)

    def _watch(self) -> None:
        """The watchdog: ends the process the moment the renew deadline passes without a renewal."""
        with self._state:
            while True:
                if self._released or not self._leading:
                    self._state.wait()
                    continue
                left = self._valid_until - self.clock()
                if left <= 0:
                    self._lost("could not renew the Lease within the renew deadline")
                    return
                self._state.wait(left)

    async def run(self) -> None:
        """Until stop(): acquire, then renew every retry period. Any unexpected error ends the process."""
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="leader-watchdog", daemon=True)
            self._watchdog.start()
        try:
            while not self._stopped:
                try:
                    leading = await asyncio.to_thread(self.attempt)
                except kube.ApiError as e:  # 409: another process wrote first; anything else: try again
                    leading = self._leading  # still the leader until the renew deadline passes (the watchdog)
                    if e.status != 409:
                        log.warning("cannot renew or acquire the leader Lease", error=str(e))
                self.last_attempt = self.clock()
                if self._stopped:
                    break
                self._set(leading)
                await asyncio.sleep(self.timings.retry if self._leading else core.candidate_wait(self.timings))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a dead election loop must never go unnoticed
            log.exception("the leader election loop failed: exiting", error=repr(e), identity=self.me)
            self.exit(EXIT_BROKEN)
            raise

    async def stop(self) -> None:
        """No attempt ever again (this process will not take the Lease back); an attempt in flight ends first."""
        self._stopped = True
        await asyncio.to_thread(self._attempting.acquire)
        self._attempting.release()

    async def release(self) -> bool:
        """Hand the Lease back (after stop() and after the writes in flight finished). From here on this
        process writes nothing. False: it did not hold the Lease, or no longer surely."""
        self._stopped = True
        with self._state:
            # a renewal or acquisition written after stop() (SIGTERM in the middle of it) counts too
            was = not self._released and self.clock() < self._valid_until
            self._released = True  # the Client's guard refuses every write from now on
            self._leading = False
            self._state.notify_all()
        telemetry.leader.set(0)
        if not was:
            return False
        try:
            lease = await asyncio.to_thread(self._get)
            spec = core.release(lease, self.me, dt.datetime.now(dt.UTC)) if lease else None
            if spec:
                await asyncio.to_thread(self._write, lease, spec)
                log.info("leader Lease released", identity=self.me, lease=f"{self.namespace}/{self.name}")
                return True
        except kube.ApiError as e:
            log.warning("cannot release the leader Lease: the standby takes over when it expires", error=str(e))
        return False
