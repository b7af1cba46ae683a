"""Reading request bodies: media type, size limit (declared and streamed), JSON."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from services.common.validation import Problem

JSON = "application/json"
CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENT_BATCH = "application/cloudevents-batch+json"


class RequestRefused(Exception):
    """A request refused as a whole, before any event in it is looked at."""

    def __init__(self, status: int, title: str, problems: list[Problem],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.problems = problems
        self.headers = headers or {}


def media_type(request: Request, accepted: tuple[str, ...]) -> str:
    """The request's media type if it is one of `accepted` (parameters like charset ignored)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in accepted:
        raise RequestRefused(415, "Unsupported media type", [Problem(
            "content-type", f"must be one of: {', '.join(accepted)}", "unsupported_media_type")])
    return kind


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, refusing bodies over `limit` bytes before and while reading them."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a missing or understated Content-Length (chunked uploads)
            raise _too_large(limit)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise RequestRefused(422, "Unprocessable event", [Problem(
            "body", "is not valid UTF-8 JSON", "invalid_json")]) from None


def _too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, "Body too large", [Problem(
        "body", f"is larger than {limit} bytes; split it into smaller batches", "too_large")])
