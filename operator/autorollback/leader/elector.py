"""Keeps this process's leadership on a Lease in the operator's namespace.

A process that cannot renew within the renew deadline stops acting at once: `leads()` turns False
the moment the deadline passes, before any other process can take the Lease (lease duration >
renew deadline), and every write the operator makes asks `leads()` first (kube.guard).
"""
import asyncio
import datetime as dt
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from autorollback import kube, logs, metrics
from autorollback.leader import core

log = logs.get(__name__)


def identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


class Elector:
    def __init__(self, namespace: str, name: str, me: str, timings: core.Timings,
                 on_change: Callable[[bool], None] = lambda leads: None):
        self.namespace, self.name, self.me, self.timings = namespace, name, me, timings
        self.on_change = on_change
        self._renewed = float("-inf")  # monotonic time of our last successful write of the Lease
        self._leading = False
        self.holder = ""

    def leads(self) -> bool:
        return self._leading and time.monotonic() - self._renewed < self.timings.renew_deadline

    def _path(self, name: str = "") -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        return f"{base}/{name}" if name else base

    def _get(self) -> dict[str, Any] | None:
        try:
            return kube.request("GET", self._path(self.name))
        except kube.ApiError as e:
            if e.status == 404:
                return None
            raise

    def _write(self, lease: dict[str, Any] | None, spec: dict[str, Any]) -> None:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is None:
            kube.request("POST", self._path(), body={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                     "metadata": meta, "spec": spec}, unguarded=True)
        else:  # optimistic concurrency: a PUT with the resourceVersion we read
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
            kube.request("PUT", self._path(self.name), body={"apiVersion": "coordination.k8s.io/v1",
                                                              "kind": "Lease", "metadata": meta, "spec": spec},
                         unguarded=True)

    def _attempt(self) -> bool:
        lease = self._get()
        s = core.step(lease, self.me, dt.datetime.now(dt.timezone.utc), self.timings)
        self.holder = s.holder
        if s.spec is None:
            return False
        self._write(lease, s.spec)
        self._renewed = time.monotonic()
        return True

    def _set(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        metrics.leader.set(1 if leading else 0)
        log.info("leadership changed", leader=leading, identity=self.me, holder=self.holder,
                 lease=f"{self.namespace}/{self.name}")
        self.on_change(leading)

    async def run(self) -> None:
        while True:
            try:
                leading = await asyncio.to_thread(self._attempt)
            except kube.ApiError as e:  # 409: another process wrote first; anything else: try again
                leading = self._leading and time.monotonic() - self._renewed < self.timings.renew_deadline
                if e.status != 409:
                    log.warning("cannot renew or acquire the leader Lease", error=str(e))
            self._set(leading)
            await asyncio.sleep(self.timings.retry)

    async def release(self) -> None:
        if not self.leads():
            return
        self._set(False)
        try:
            lease = await asyncio.to_thread(self._get)
            spec = core.release(lease, self.me, dt.datetime.now(dt.timezone.utc)) if lease else None
            if spec:
                await asyncio.to_thread(self._write, lease, spec)
        except kube.ApiError as e:
            log.warning("cannot release the leader Lease", error=str(e))
