"""Reading request bodies: media type, size limit (declared and streamed), JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request

from services.common.validation import Problem

JSON = "application/json"
CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENT_BATCH = "application/cloudevents-batch+json"
MAX_INTEGER_DIGITS = 64


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
        return json.loads(b"".join(chunks), parse_int=_integer, parse_float=_real,
                          parse_constant=_constant)
    except _NumberRefused as exc:
        raise RequestRefused(422, "Unprocessable event", [Problem(
            "body", exc.reason, "invalid_number")]) from None
    # ValueError covers JSONDecodeError and int()'s own digit limit; UnicodeDecodeError is one.
    except (ValueError, RecursionError):
        raise RequestRefused(422, "Unprocessable event", [Problem(
            "body", "is not valid UTF-8 JSON", "invalid_json")]) from None


class _NumberRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _integer(literal: str) -> int:
    # No field takes more than a few digits; converting a long literal is quadratic, and
    # past 4,300 digits int() refuses it with a ValueError of its own.
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _NumberRefused(f"has an integer of more than {MAX_INTEGER_DIGITS} digits")
    return int(literal)


def _real(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e999 reads as infinity
        raise _NumberRefused("has a number too large for a double")
    return value


def _constant(name: str) -> float:
    # Python's json reads NaN, Infinity and -Infinity, which JSON (RFC 8259) does not allow.
    raise _NumberRefused(f"has {name}, which is not a JSON number")


def _too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, "Body too large", [Problem(
        "body", f"is larger than {limit} bytes; split it into smaller batches", "too_large")])
