"""Unexpected errors answered as 500 and logged without their message.

Exception messages can quote the input (pydantic and asyncpg both do), and inputs carry
identifiers. The default server error log prints the message and the traceback, so this
middleware catches the error first and logs only its type and where it was raised.
"""

from __future__ import annotations

import json
import traceback

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.entrypoints.problem_types import problem_type

log = structlog.get_logger("joinedup.ingest")

_BODY = json.dumps({"type": problem_type(500).uri, "title": "Internal error", "status": 500,
                    "detail": "an unexpected error; it has been logged", "problems": []}).encode()


class RedactedErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("unexpected error", error=type(exc).__name__, path=scope.get("path"),
                      at=f"{frame.filename}:{frame.lineno}")
            if started:
                raise RuntimeError("response already started; error logged above") from None
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(_BODY)).encode())]})
            await send({"type": "http.response.body", "body": _BODY})
