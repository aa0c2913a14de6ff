"""Runs kopf embedded, next to the work queue, our /metrics and /healthz endpoints, the watch-
freshness check and the periodic resync."""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import kopf

from autorollback import endpoints, handlers, health, kube, logs, telemetry
from autorollback.checks.cap import Cap
from autorollback.checks.prometheus import Client as Prometheus
from autorollback.checks.settings import ChecksSettings
from autorollback.context import Context
from autorollback.gitrevert import worker as gitworker
from autorollback.leader.core import Timings
from autorollback.leader.elector import EXIT_BROKEN, Elector, _die, identity

log = logs.get(__name__)
CHECK_INTERVAL = 30.0  # seconds between watch-freshness checks
RESYNC_INTERVAL = 60.0  # seconds between passes over every known Deployment's last state
DRAIN_LIMIT = 30.0  # seconds a clean stop waits for the passes in flight (the chart's grace period is 30 s)
DRAIN_MARGIN = 0.5  # seconds of leadership kept in hand for the release itself
LIST_PAGE = 100  # Deployments per page of kopf's initial list (a page is parsed whole)
WORKER_IDLE = 0.1  # seconds kopf keeps an idle per-Deployment worker (and the event it holds)


@dataclass(frozen=True)
class Election:
    namespace: str
    name: str
    lease: float
    renew_deadline: float
    retry: float


@dataclass(frozen=True)
class Options:
    """What `autorollback run` was asked (cli.py), for the Context and the loops started here."""

    namespaces: list[str]
    metrics_port: int
    health_port: int
    watch_stale_seconds: float
    git: gitworker.Settings
    checkpoint_key: bytes
    pod_signals: bool = True
    delete_stuck_pods: bool = True
    election: Election | None = None
    checks: ChecksSettings = field(default_factory=ChecksSettings)
    kinds: tuple[str, ...] = tuple(kube.RESOURCES)  # the workload kinds watched (--kinds)


def settings() -> kopf.OperatorSettings:
    s = kopf.OperatorSettings()
    s.posting.enabled = False  # our Events are posted explicitly, never kopf's log lines
    s.scanning.disabled = True  # no CRD/namespace discovery: nothing to grant for it
    s.watching.server_timeout = 300
    s.watching.client_timeout = 330
    # Memory follows what is handled, not what is in scope: kopf lists the Deployments in pages (one
    # unpaginated list of 10,000 parsed at once set the process's peak, which CPython keeps), and its
    # per-Deployment worker, which holds that Deployment's last event, ends once the event is handled
    # (after 5 s by default: during the first listing that held every Deployment in scope at once).
    s.watching.chunk_size = LIST_PAGE
    s.queueing.idle_timeout = WORKER_IDLE
    # An API server outage must not end the process: kopf gives up after the last of these (~10 minutes).
    s.networking.error_backoffs = [1, 2, 5, 10, 20] + [30] * 20
    return s


async def _watch_freshness(op: handlers.Operator, namespaces: list[str], kinds: tuple[str, ...]) -> None:
    while True:
        await asyncio.sleep(min(CHECK_INTERVAL, op.freshness.stale_after))
        try:
            # Only a quiet watch is worth a List; verdict() needs none while events keep coming.
            if op.freshness.needs_check(time.monotonic()):
                listed = await asyncio.to_thread(op.ctx.api.workload_versions, namespaces, kinds)
                op.forget_unlisted(listed)
            else:
                listed = {}
            op.health = op.freshness.verdict(listed, time.monotonic())
        except Exception as e:  # noqa: BLE001 - an unreachable API server is unhealthy, not fatal
            op.health = (False, f"cannot list the workloads to check the watch: {e}")
        telemetry.watch_healthy.set(1 if op.health[0] else 0)
        if not op.health[0]:
            log.warning("watch unhealthy", reason=op.health[1])


async def _resync(op: handlers.Operator) -> None:
    """Anything a lost event or a bug left undone is picked up from the last known state."""
    while True:
        await asyncio.sleep(RESYNC_INTERVAL)
        op.resync()


def _healthz(op: handlers.Operator, elector: Elector | None, lease: float) -> tuple[bool, str]:
    if elector is None:
        return op.health
    ok, why = health.election(elector.last_attempt, elector.leading, time.monotonic(), lease)
    return (op.health[0] and ok, op.health[1] if ok else why)


async def _drain(op: handlers.Operator, elector: Elector | None) -> bool:
    """Let the passes already running finish their API writes (none new starts), for as long as this
    process surely still leads (it no longer renews): True when all finished. Without a Lease to hand
    over (no election, or a standby) nothing is waited for."""
    left = elector.valid_for() - DRAIN_MARGIN if elector is not None else 0.0
    if left <= 0:
        op.executor.shutdown(wait=False, cancel_futures=True)
        return False
    limit = min(left, DRAIN_LIMIT)
    passes = asyncio.ensure_future(asyncio.to_thread(op.executor.shutdown, wait=True, cancel_futures=True))
    reverts = asyncio.ensure_future(asyncio.to_thread(op.ctx.git.wait_idle, limit))  # a push or PR in flight
    done, _ = await asyncio.wait({passes, reverts}, timeout=limit)
    return passes in done and reverts in done and reverts.result()


async def _main(api: kube.Client, options: Options) -> int:
    elector = None
    election = options.election
    if election is not None:
        # Every replica watches (a takeover starts warm); only the Lease holder works and writes.
        elector = Elector(
            api,
            election.namespace,
            election.name,
            identity(),
            Timings(election.lease, election.renew_deadline, election.retry),
            on_change=lambda leads: op.leads() if leads else None,
        )
        api = api.guarded(elector.leads)
        telemetry.leader.set(0)
    prometheus = options.checks.prometheus
    ctx = Context(
        api,
        gitworker.Worker(api, options.git),
        options.checkpoint_key,
        options.pod_signals,
        delete_stuck_pods=options.delete_stuck_pods,
        checks=options.checks,
        prometheus=Prometheus(prometheus) if prometheus is not None else None,
        metric_rollbacks=Cap(options.checks.max_rollbacks, options.checks.rollbacks_window),
    )
    op = handlers.Operator(
        ctx, freshness=health.Freshness(stale_after=options.watch_stale_seconds, last_event=time.monotonic())
    )
    namespaces, metrics_port, health_port = options.namespaces, options.metrics_port, options.health_port
    ready = asyncio.Event()
    try:
        servers = await endpoints.serve(
            metrics_port,
            health_port,
            healthz=lambda: _healthz(op, elector, election.lease if election else 0.0),
            readyz=lambda: (True, "watching") if ready.is_set() else (False, "starting"),
        )
    except OSError as e:
        log.error("cannot open the metrics/health ports", error=str(e))
        return 2
    op.loop = asyncio.get_running_loop()
    op.queue.start()
    background = [
        asyncio.create_task(_watch_freshness(op, namespaces, options.kinds)),
        asyncio.create_task(_resync(op)),
    ]
    electing = None
    if elector is not None:
        electing = asyncio.create_task(elector.run())
        electing.add_done_callback(_election_ended)
    log.info(
        "operator starting",
        namespaces=namespaces or "all",
        kinds=list(options.kinds),
        metrics_port=metrics_port,
        health_port=health_port,
        identity=elector.me if elector else None,
    )
    try:
        await kopf.operator(
            registry=handlers.registry(options.kinds),
            settings=settings(),
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=kopf.Memo(operator=op),
            ready_flag=ready,
        )
    finally:
        # A clean stop, in this order: (1) the elector stops for good: no renewal, and this process
        # never takes the Lease again; (2) no new work is taken; (3) Git work is left to the next
        # leader (a revert stops at its next git command; the next leader resumes it from the marks);
        # (4) the API writes in flight finish, while this process surely still leads; (5) the Lease
        # is handed back, after which this process writes nothing. The standby leads at once.
        if electing is not None and elector is not None:
            electing.remove_done_callback(_election_ended)
            await elector.stop()
            electing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await electing
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await op.queue.stop()
        op.pods.stop_all()
        op.ctx.git.stop()
        drained = await _drain(op, elector)
        if elector is not None and elector.leading:
            if drained:
                await elector.release()
            else:
                log.warning(
                    "writes still in flight at the end of leadership: the Lease is not released, the "
                    "standby takes over when it expires"
                )
        for server in servers:
            await server.cleanup()
    log.info("operator stopped")
    return 0


def _election_ended(task: "asyncio.Task[None]") -> None:
    """The election loop ends only on stop(): anything else is fatal (Elector.run exits already; this
    is the last line of defence)."""
    error = "cancelled" if task.cancelled() else repr(task.exception())
    log.error("the leader election loop ended unexpectedly: exiting", error=error)
    _die(EXIT_BROKEN)


def run(api: kube.Client, options: Options) -> int:
    return asyncio.run(_main(api, options))
