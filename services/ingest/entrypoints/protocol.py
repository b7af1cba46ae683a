"""uvicorn's httptools protocol with a bound on the request head (request line and headers).

httptools buffers a head of any size (a 10 MB header was taken whole when tried) and uvicorn
offers no limit for it: ``h11_max_incomplete_event_size`` is for the h11 parser only. Once an
unfinished head passes `max_head_bytes`, this answers 431 and ends the connection, so a client
cannot make the gateway hold more than the limit (plus one read) per connection. A head that
arrives whole in one read is measured by ``RequestLimits`` instead.
"""

from __future__ import annotations

import json
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.ingest.entrypoints import schemas as s
from services.ingest.entrypoints.problem_types import problem_type

HEAD_TOO_LARGE = "Request header fields too large"


def head_reason(limit: int) -> str:
    return f"the request line and headers are over {limit} bytes"


class BoundedHead(HttpToolsProtocol):
    max_head_bytes: ClassVar[int] = 16 * 1024

    linger_seconds: ClassVar[float] = 2.0

    _in_head = True      # the parser is between two messages or inside a head
    _head_bytes = 0      # bytes read of the unfinished head
    _messages = 0        # messages completed on this connection
    _refused = False     # answered 431: what else arrives is dropped

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        in_head, messages = self._in_head, self._messages
        super().data_received(data)
        if not (in_head and self._in_head) or self.transport.is_closing():
            return
        # A read that finished a message (pipelining) may hold its body: start counting anew.
        self._head_bytes = 0 if self._messages != messages else self._head_bytes + len(data)
        if self._head_bytes > self.max_head_bytes:
            reason = head_reason(self.max_head_bytes)
            body = json.dumps(s.ProblemDetails(
                type=problem_type(431).uri, title=HEAD_TOO_LARGE, status=431,
                detail=f"headers: {reason}", problems=[
                    s.ProblemItem(field="headers", reason=reason, code="headers_too_large")]
            ).model_dump()).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: " + s.PROBLEM_JSON.encode() + b"\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + body)
            # Half-close and linger rather than close: closing with unread input makes the
            # kernel reset the connection, and the client would never read the 431.
            self._refused = True
            self.transport.write_eof()
            self.loop.call_later(self.linger_seconds, self.transport.close)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0
        self._messages += 1


def bounded_head(max_head_bytes: int) -> type[BoundedHead]:
    """The protocol class for one server's limit (uvicorn builds it with its own arguments)."""
    return type("BoundedHead", (BoundedHead,), {"max_head_bytes": max_head_bytes})
