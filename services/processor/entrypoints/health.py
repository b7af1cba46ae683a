"""The worker's own HTTP endpoints: /healthz (alive), /readyz (able to work), /metrics.

Served with aiohttp (Faust's own web server library) inside the worker's event loop, so it
answers while the processor waits for a database or broker that is down: that is when an
orchestrator most needs to hear "not ready" and why.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.common.health import Health


def health_app(health: Health, registry: CollectorRegistry) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = health.ready
        return web.json_response({"status": "ok" if ready else "unavailable",
                                  "components": health.report()},
                                 status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz),
                    web.get("/metrics", metrics)])
    return app


async def serve_health(health: Health, registry: CollectorRegistry, host: str, port: int
                       ) -> web.AppRunner:
    """Start serving; the caller calls `cleanup()` on the runner to stop."""
    runner = web.AppRunner(health_app(health, registry), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
