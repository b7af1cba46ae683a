"""The read benchmark's reference server: the timeline query the read API runs, returned as
JSON by a bare FastAPI app on the same uvicorn settings, with no reader, no governance, no
filtering and no audit. A benchmark tool only: it checks nobody and must never be deployed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from projections.queries import reads as q
from services.common.db import create_pool
from services.common.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings, min_size=2, max_size=10)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/timeline/{person}")
    async def timeline(person: str, request: Request) -> dict[str, Any]:
        rows = await request.app.state.pool.fetch(q.TIMELINE_PAGE, person, None, None, None,
                                                  200)
        return {"items": [dict(r) for r in rows]}

    return app


if __name__ == "__main__":
    settings = Settings()
    uvicorn.run(create_app(settings), host="127.0.0.1", port=int(os.environ["BENCH_PORT"]),
                log_config=None, access_log=False, server_header=False)
