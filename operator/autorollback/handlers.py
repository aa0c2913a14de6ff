"""The kopf handlers and the work they queue: a few lines that record the watched state, ask what
it needs, and hand that to a worker. One watch per workload kind of --kinds (Deployments,
StatefulSets, DaemonSets by default), each handing its adapter (workloads.KINDS) to the same Operator.

Only @kopf.on.event: it writes nothing onto the workloads (no kopf annotations, no finalizers).
The handler itself makes no API call, so kopf's per-object stream never waits on the network.
"""

import asyncio
import copy
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf

from autorollback import events, health, kube, logs, reconcile, state, telemetry
from autorollback.config import mentioned, parse as parse_config
from autorollback.context import Context
from autorollback.kube import ApiError
from autorollback.signals import core as signals
from autorollback.signals.watch import PodWatches
from autorollback.vocab import Job
from autorollback.workloads.base import Workload
from autorollback.workloads.daemonset import DAEMONSETS
from autorollback.workloads.deployment import DEPLOYMENTS
from autorollback.workloads.statefulset import STATEFULSETS
from autorollback.workqueue import WorkQueue

log = logs.get(__name__)
WORKERS = 16  # Deployments worked on at once


@dataclass
class Operator:
    """Everything the process shares; touched on the event loop only."""

    ctx: Context
    freshness: health.Freshness
    memory: state.Memory = field(default_factory=state.Memory)
    health: tuple[bool, str] = (True, "starting")
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(WORKERS, "autorollback"))
    queue: WorkQueue = field(init=False)
    pods: PodWatches = field(init=False)
    loop: asyncio.AbstractEventLoop | None = None
    baking: set[str] = field(default_factory=set)  # uids whose bake is in progress here (a gauge)

    def __post_init__(self) -> None:
        self.queue = WorkQueue(self.process, WORKERS)
        self.pods = PodWatches(self.ctx.api, self.ctx.pod_signals, self._pods_changed)

    def _pods_changed(self, uid: str) -> None:
        """From a pod watch's thread."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.pods_changed, uid)

    def pods_changed(self, uid: str) -> None:
        memo = self.memory.memos.get(uid)
        if memo is None or memo.body is None:
            return
        memo.pods_seen += 1
        if Job.FAST in memo.jobs(memo.body, parse_config(memo.body["metadata"].get("annotations"), memo.adapter.kind)):
            self.queue.add(uid)

    def forget(self, uid: str) -> None:
        memo = self.memory.forget(uid)
        self.queue.forget(uid)
        self.baking.discard(uid)
        telemetry.bakes.set(len(self.baking))
        self.pods.stop(uid)
        if memo is not None:
            telemetry.forget(memo.series)
            if memo.enabled:
                self._count_opted_in(memo)

    def forget_unlisted(self, listed: dict[str, str]) -> None:
        """Workloads deleted while the watch was re-listing never get a DELETED event (`listed`: the
        uids of every watched kind, kube.Client.workload_versions)."""
        for uid in [u for u in self.memory.memos if u not in listed]:
            self.forget(uid)

    def observe(self, uid: str, deployment: dict[str, Any], adapter: Workload) -> None:
        meta = deployment["metadata"]
        if not mentioned(meta.get("annotations")):
            memo = self.memory.memos.get(uid)
            if memo is not None:
                if (
                    memo.enabled
                    and memo.body
                    and memo.body["spec"].get("template") != deployment["spec"].get("template")
                    and adapter.kind == DEPLOYMENTS.kind  # only kubectl's Deployment undo copies annotations
                ):
                    self._opt_in_lost(deployment)
                self.forget(uid)
            return
        config = parse_config(meta.get("annotations"), adapter.kind)
        memo = self.memory.get(uid, meta["namespace"], meta["name"], adapter)
        was = memo.enabled
        watch = signals.watched(deployment, config.fail_fast, adapter) if config.enabled else False
        if watch:
            self.pods.want(uid, meta["namespace"], kube.selector(deployment["spec"].get("selector") or {}))
        elif watch is False:
            self.pods.stop(uid)
        if memo.observe(deployment, config):
            self.queue.add(uid)
        if was != memo.enabled:
            self._count_opted_in(memo)

    def _count_opted_in(self, memo: state.Remembered) -> None:
        """The opted_in gauge of memo's kind and namespace, after memo opted in or out."""
        kind = memo.adapter.kind
        telemetry.opted_in.labels(kind, memo.namespace).set(self.memory.opted_in(kind, memo.namespace))
        if memo.enabled:
            telemetry.namespace_opted_in(kind, memo.namespace)

    def _opt_in_lost(self, deployment: dict[str, Any]) -> None:
        """`kubectl rollout undo` replaces the annotations with those of the ReplicaSet it goes back
        to; one from before the opt-in silently takes the opt-in away. Say so, once."""
        meta = deployment["metadata"]
        message = (
            f"the autorollback.io/* annotations disappeared in the same change that replaced the pod "
            "template, typically a `kubectl rollout undo` to a revision from before the opt-in (kubectl "
            "copies that ReplicaSet's annotations). autorollback no longer acts on this Deployment; opt in "
            f"again with `kubectl annotate deployment/{meta['name']} -n {meta['namespace']} "
            "autorollback.io/enabled=true`."
        )
        log.warning("opt-in lost", message=message, namespace=meta["namespace"], deployment=meta["name"])
        asyncio.get_running_loop().run_in_executor(
            self.executor, events.post, self.ctx.api, deployment, "Warning", "OptInLost", message
        )

    def leads(self) -> None:
        """This process became the leader: what it read while another one led is read again."""
        for memo in self.memory.memos.values():
            memo.bake.history = memo.bake.pods = None
        self.resync()

    def resync(self) -> None:
        """Queue every Deployment whose last known state still asks for something."""
        for uid, memo in self.memory.memos.items():
            if memo.body is not None and memo.jobs(
                memo.body, parse_config(memo.body["metadata"].get("annotations"), memo.adapter.kind)
            ):
                self.queue.add(uid)

    async def process(self, uid: str) -> ApiError | None:
        memo = self.memory.memos.get(uid)
        if memo is None or memo.body is None or not self.ctx.api.guard():
            return None  # a standby keeps its memory warm; it queues everything again when it leads
        config = parse_config(memo.body["metadata"].get("annotations"), memo.adapter.kind)
        jobs = memo.jobs(memo.body, config)
        if not jobs:
            return None
        work = reconcile.Work(
            ctx=self.ctx,
            uid=uid,
            namespace=memo.namespace,
            name=memo.name,
            deployment=memo.body,
            config=config,
            jobs=jobs,
            workload=memo.adapter,
            healthy_evidence=memo.healthy_evidence,
            api_failure_reported=memo.api_failure_reported,
            clocks=memo.clocks,
            problems_done=dict(memo.problems_done),
            pods=self.pods.pods(uid),
            pods_seen=memo.pods_seen,
            bake=memo.bake,
        )
        result = await asyncio.get_running_loop().run_in_executor(self.executor, reconcile.run, work)
        if self.memory.memos.get(uid) is not memo:  # deleted meanwhile
            telemetry.forget(result.series)
            return None
        memo.series |= result.series
        result.done.apply(memo)
        running = memo.bake.running
        if running is not None and running.bake.active and Job.BAKE in memo.jobs(memo.body, config):
            self.baking.add(uid)
        else:
            self.baking.discard(uid)
        telemetry.bakes.set(len(self.baking))
        if result.recheck_in is not None and result.retry is None:
            self.queue.add_after(uid, result.recheck_in)
        return result.retry


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_client(**kwargs)


async def deployment_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    workload_event(memo.operator, type, body, DEPLOYMENTS)


async def statefulset_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    workload_event(memo.operator, type, body, STATEFULSETS)


async def daemonset_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    workload_event(memo.operator, type, body, DAEMONSETS)


EVENTS = {DEPLOYMENTS.kind: deployment_event, STATEFULSETS.kind: statefulset_event, DAEMONSETS.kind: daemonset_event}


def registry(kinds: Iterable[str]) -> kopf.OperatorRegistry:
    """kopf's handlers: one watch per kind in `kinds` (--kinds), none of a kind left out (its RBAC
    may not be granted)."""
    out = kopf.OperatorRegistry()
    kopf.on.login(registry=out)(login)
    for kind in kinds:
        kopf.on.event("apps", "v1", kube.RESOURCES[kind], registry=out)(EVENTS[kind])
    return out


def workload_event(op: Operator, type: str | None, body: Any, adapter: Workload) -> None:
    """One watch event of any kind: the same memory and queue, with the kind's adapter."""
    meta = body["metadata"]
    uid = meta["uid"]
    telemetry.watch_events.inc()
    op.freshness.observe(uid, meta.get("resourceVersion", ""), time.monotonic(), deleted=type == "DELETED")
    if type == "DELETED":
        op.forget(uid)
        return
    if uid not in op.memory.memos and not mentioned(meta.get("annotations")):
        return  # never copied, never looked at again: the common case in a big cluster
    op.observe(uid, kept(body, adapter.kind), adapter)


def kept(body: Any, kind: str = DEPLOYMENTS.kind) -> dict[str, Any]:
    """The workload as the memo keeps it: a copy (kopf reuses its own), with its kind (Events name
    it), without metadata.managedFields, the field owners' bookkeeping (often a third of the object)
    that nothing here reads and no write sends back."""
    raw = dict(body)
    meta = {k: v for k, v in (raw.get("metadata") or {}).items() if k != "managedFields"}
    return {"apiVersion": "apps/v1", "kind": kind, **copy.deepcopy({**raw, "metadata": meta})}
