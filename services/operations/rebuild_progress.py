"""A running `joinedup rebuild`'s progress, for Prometheus.

A rebuild is a CLI process that lives minutes to hours, in a shadow schema the worker does
not know about, so the rebuild serves its own progress: with ``JOINEDUP_REBUILD_METRICS_PORT``
set it answers ``GET /metrics`` on ``JOINEDUP_WORKER_HEALTH_HOST`` and that port while it runs
(no pushgateway, no files). Per read model:

- ``joinedup_rebuild_events_to_apply``: events the read model has to take in (archived
  events, or log records when rebuilding from the log);
- ``joinedup_rebuild_events_applied``: those it has taken in so far.

Both are read from the shadow's positions every few seconds (the same counts the progress
bar shows), so they are right whether the work is done by this process or by the processes
of ``--workers``. Prometheus sees the target down when no rebuild runs; the dashboard shows
the last progress it scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from services.common.db import DATABASE_UNAVAILABLE
from services.common.settings import Settings

log = structlog.get_logger("joinedup.rebuild")
#: (events to apply, events applied) for the read models named
Measure = Callable[[Sequence[str]], Awaitable[tuple[int, int]]]


class RebuildProgress:
    def __init__(self, names: Sequence[str], measure: Measure,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._names = list(names)
        self._measure = measure
        self.to_apply = Gauge("joinedup_rebuild_events_to_apply", "events a read model being "
                              "rebuilt has to take in", ["read_model"], registry=self.registry)
        self.applied = Gauge("joinedup_rebuild_events_applied", "events a read model being "
                             "rebuilt has taken in so far", ["read_model"],
                             registry=self.registry)

    async def refresh(self) -> None:
        for name in self._names:
            to_apply, applied = await self._measure([name])
            self.to_apply.labels(name).set(to_apply)
            self.applied.labels(name).set(applied)

    async def keep_refreshing(self, interval: float) -> None:
        while True:
            with contextlib.suppress(*DATABASE_UNAVAILABLE):  # the rebuild itself reports it
                await self.refresh()
            await asyncio.sleep(interval)  # a cadence, not a condition to wait for


class Served:
    """The progress served while a rebuild runs; `close()` stops serving."""

    def __init__(self, runner: web.AppRunner | None = None,
                 task: asyncio.Task[None] | None = None) -> None:
        self._runner = runner
        self._task = task

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._runner is not None:
            await self._runner.cleanup()


async def serve_progress(settings: Settings, names: Sequence[str], measure: Measure,
                         interval: float = 5.0) -> Served:
    """Serve the progress on ``rebuild_metrics_port`` (nothing when it is 0, or taken)."""
    if not settings.rebuild_metrics_port:
        return Served()
    progress = RebuildProgress(names, measure)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(progress.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.worker_health_host,
                          settings.rebuild_metrics_port).start()
    except OSError as exc:  # the port is taken: rebuild on, without the metrics
        await runner.cleanup()
        log.error("rebuild progress not served", port=settings.rebuild_metrics_port,
                  error=type(exc).__name__)
        return Served()
    with contextlib.suppress(*DATABASE_UNAVAILABLE):
        await progress.refresh()
    return Served(runner, asyncio.create_task(progress.keep_refreshing(interval)))
