"""Limits checked before any work: header size and count (431), requests in flight (503).

Over `max_in_flight`, a publish request is answered 503 with Retry-After at once rather than
queued: the work it would wait for (ten pooled connections, the broker) is what is
overloaded, and a client that retries later is better off than one whose request times out
in a queue. Probes and metrics are never shed, so an overloaded gateway can still say so (and
is not restarted for failing its liveness probe).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.validation import Problem
from services.ingest.entrypoints.metrics import UNAUTHENTICATED
from services.ingest.entrypoints.protocol import HEAD_TOO_LARGE, head_reason
from services.ingest.entrypoints.publishing import problem_response

SHED_RETRY_AFTER_SECONDS = "1"
_SHED = "/v1/"  # the publishing API; /healthz, /readyz and /metrics are never shed


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_in_flight: int, max_header_bytes: int,
                 max_headers: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.in_flight = 0  # one event loop: no await between the check and the count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
            len(name) + len(value) for name, value in headers)
        reason = (f"has more than {self.max_headers} header fields"
                  if len(headers) > self.max_headers else
                  head_reason(self.max_header_bytes) if size > self.max_header_bytes else None)
        if reason is not None:
            _metrics(scope, "headers_too_large")
            await problem_response(431, [Problem("headers", reason, "headers_too_large")],
                                   HEAD_TOO_LARGE)(scope, receive, send)
            return
        if not scope["path"].startswith(_SHED):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            _metrics(scope, "overloaded")
            await problem_response(503, [Problem(
                "body", f"more than {self.max_in_flight} requests are being handled; retry",
                "overloaded")], headers={"Retry-After": SHED_RETRY_AFTER_SECONDS}
                                   )(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def _metrics(scope: Scope, code: str) -> None:
    app = scope.get("app")
    if app is not None:
        app.state.metrics.refused_request(UNAUTHENTICATED, [code])
