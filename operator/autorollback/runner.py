"""Runs kopf embedded, next to our /metrics and /healthz endpoints and the watch-freshness check."""
import asyncio
import contextlib
import time

import kopf

from autorollback import endpoints, handlers, health, kube, logs, metrics, rollback

log = logs.get(__name__)
CHECK_INTERVAL = 30.0  # seconds between watch-freshness checks


def settings() -> kopf.OperatorSettings:
    s = kopf.OperatorSettings()
    s.posting.enabled = False  # our Events are posted explicitly, never kopf's log lines
    s.scanning.disabled = True  # no CRD/namespace discovery: nothing to grant for it
    s.watching.server_timeout = 300
    s.watching.client_timeout = 330
    s.networking.error_backoffs = [1, 2, 5, 10, 20]
    return s


async def _watch_freshness(state: handlers.State, namespaces: list[str]) -> None:
    while True:
        await asyncio.sleep(min(CHECK_INTERVAL, state.freshness.stale_after))
        try:
            # Only a quiet watch is worth a List; verdict() needs none while events keep coming.
            listed = (await asyncio.to_thread(kube.deployment_versions, namespaces)
                      if state.freshness.needs_check(time.monotonic()) else {})
            state.health = state.freshness.verdict(listed, time.monotonic())
        except Exception as e:  # noqa: BLE001 - an unreachable API server is unhealthy, not fatal
            state.health = (False, f"cannot list Deployments to check the watch: {e}")
        metrics.watch_healthy.set(1 if state.health[0] else 0)
        if not state.health[0]:
            log.warning("watch unhealthy", reason=state.health[1])


async def _main(namespaces: list[str], metrics_port: int, health_port: int, watch_stale_seconds: float) -> int:
    state = handlers.State(freshness=health.Freshness(stale_after=watch_stale_seconds, last_event=time.monotonic()))
    ready = asyncio.Event()
    try:
        servers = await endpoints.serve(
            metrics_port, health_port,
            healthz=lambda: state.health,
            readyz=lambda: (True, "watching") if ready.is_set() else (False, "starting"),
        )
    except OSError as e:
        log.error("cannot open the metrics/health ports", error=str(e))
        return 2
    checker = asyncio.create_task(_watch_freshness(state, namespaces))
    log.info("operator starting", namespaces=namespaces or "all", metrics_port=metrics_port, health_port=health_port)
    try:
        await kopf.operator(
            registry=handlers.registry,
            settings=settings(),
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=kopf.Memo(state=state),
            ready_flag=ready,
        )
    finally:
        rollback.stop()  # asyncio.run() waits for worker threads: do not let them sleep in retries
        checker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checker
        for server in servers:
            await server.cleanup()
    log.info("operator stopped")
    return 0


def run(namespaces: list[str], metrics_port: int, health_port: int, watch_stale_seconds: float) -> int:
    return asyncio.run(_main(namespaces, metrics_port, health_port, watch_stale_seconds))
