"""HTTP endpoints: /metrics on one port, /healthz and /readyz on another."""

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


async def _metrics(_: web.Request) -> web.Response:
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _probe(check: Callable[[], tuple[bool, str]]):
    async def handler(_: web.Request) -> web.Response:
        ok, message = check()
        return web.json_response({"ok": ok, "message": message}, status=200 if ok else 503)

    return handler


async def _start(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


async def serve(
    metrics_port: int, health_port: int, healthz: Callable[[], tuple[bool, str]], readyz: Callable[[], tuple[bool, str]]
) -> list[web.AppRunner]:
    metrics = web.Application()
    metrics.router.add_get("/metrics", _metrics)
    health = web.Application()
    health.router.add_get("/healthz", _probe(healthz))
    health.router.add_get("/readyz", _probe(readyz))
    return [await _start(metrics, metrics_port), await _start(health, health_port)]
