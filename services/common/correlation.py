"""Correlation ids: one id on every log line of one piece of work, whoever logs it.

A piece of work is an HTTP request (the caller's W3C ``traceparent`` trace id, else its
``X-Request-ID``, else a new id; returned in the ``X-Request-ID`` response header), a batch a
consumer applies, or a CLI run. The id is bound with structlog's contextvars, which
:mod:`services.common.logging` merges into our lines and into every library's record, so
uvicorn's, asyncpg's or aiokafka's lines logged inside a request or a batch carry it too.
Lines outside any piece of work carry :func:`process_id`, one per process.

New ids are random UUIDs, in the canonical form the log scrubber keeps as it is (it would
cut a run of ten decimal digits out of a bare hex string: an NHS number's shape). They say
which lines belong together, never whom the work was about; a caller's request id is kept
only if the scrubber would leave it alone, so every line of a request shows the same id.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.redaction import scrub_text

#: The log field, the structlog contextvar and the response header.
FIELD: Final = "correlation_id"
RESPONSE_HEADER: Final = "x-request-id"

# version-traceid-parentid-flags; version ff is invalid, as are all-zero trace and parent ids.
# A later version may append fields, version 00 may not.
_TRACEPARENT = re.compile(
    r"(?!ff)(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})"
    r"-[0-9a-f]{2}(?P<rest>-.*)?")
# What a caller's own request id may look like to be kept (logged and echoed back): short,
# and no spaces, quotes or control characters to confuse a log reader.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


def new_id() -> str:
    return str(uuid.uuid4())


@functools.cache
def process_id() -> str:
    """This process's id, for lines logged outside any request, batch or run."""
    return new_id()


def trace_id(traceparent: str) -> str | None:
    """The trace id of a valid W3C ``traceparent`` header, else None."""
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if (match is None or match["trace"] == "0" * 32 or match["parent"] == "0" * 16
            or (match["version"] == "00" and match["rest"])):
        return None
    return match["trace"]


def from_headers(traceparent: str | None, request_id: str | None) -> str:
    """The id of a request: its trace id, else its own request id (unless it is shaped like
    an identifier), else a new one."""
    if traceparent and (trace := trace_id(traceparent)):
        return trace
    request_id = (request_id or "").strip()
    if _REQUEST_ID.fullmatch(request_id) and scrub_text(request_id) == request_id:
        return request_id
    return new_id()


@contextmanager
def bound(correlation_id: str | None = None) -> Iterator[str]:
    """Every line logged inside (by this task and the tasks it creates) carries the id."""
    correlation_id = correlation_id or new_id()
    with structlog.contextvars.bound_contextvars(**{FIELD: correlation_id}):
        yield correlation_id


def add_process_id(_: Any, __: str, event_dict: MutableMapping[str, Any]
                   ) -> MutableMapping[str, Any]:
    """structlog processor: a line outside any piece of work gets the process's id."""
    event_dict.setdefault(FIELD, process_id())
    return event_dict


class CorrelationMiddleware:
    """Pure ASGI (streaming responses and the duty board's event streams pass untouched):
    binds the request's id around the app and returns it in ``X-Request-ID``.

    When the app raises, the id is left bound: the server logs the error after the app has
    returned, in the same task (uvicorn runs each request in a task of its own), and that
    line (the traceback of a 500) then carries the request's id too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        correlation_id = from_headers(headers.get("traceparent"), headers.get(RESPONSE_HEADER))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[RESPONSE_HEADER] = correlation_id
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(**{FIELD: correlation_id})
        await self.app(scope, receive, send_with_id)
        structlog.contextvars.reset_contextvars(**tokens)
