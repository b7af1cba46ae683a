"""Correlation ids (services.common.correlation): which id a request gets, and every line
logged inside a request or a bound piece of work carrying it, library lines included."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from services.common import correlation
from services.common.correlation import CorrelationMiddleware, from_headers, trace_id
from services.common.redaction import scrub_text

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _hex(size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=size, max_size=size).filter(
        lambda text: text != "0" * size)


@given(_hex(32), _hex(16), st.sampled_from(["00", "01"]))
def test_a_valid_traceparent_gives_its_trace_id(trace: str, parent: str, flags: str) -> None:
    assert trace_id(f"00-{trace}-{parent}-{flags}") == trace


@pytest.mark.parametrize("header", [
    f"ff-{TRACE}-00f067aa0ba902b7-01",           # version ff is invalid
    f"00-{'0' * 32}-00f067aa0ba902b7-01",        # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-01",                 # all-zero parent id
    f"00-{TRACE.upper()}-00f067aa0ba902b7-01",   # upper case is not the format
    f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",      # short
    f"00-{TRACE}-00f067aa0ba902b7-01-extra",     # version 00 has four fields
    "",
])
def test_an_invalid_traceparent_gives_none(header: str) -> None:
    assert trace_id(header) is None


def test_a_later_version_may_add_fields() -> None:
    assert trace_id(f"01-{TRACE}-00f067aa0ba902b7-01-more") == TRACE


def test_the_trace_id_comes_first_then_the_callers_request_id_then_a_new_one() -> None:
    traceparent = f"00-{TRACE}-00f067aa0ba902b7-01"
    assert from_headers(traceparent, "upload-7") == TRACE
    assert from_headers("not a traceparent", "upload-7") == "upload-7"
    assert from_headers(None, " upload-7 ") == "upload-7"
    made = {from_headers(None, None) for _ in range(3)}
    assert len(made) == 3 and all(str(uuid.UUID(i)) == i for i in made)


@given(st.text(max_size=200) | st.from_regex(r"[A-Za-z0-9:-]{1,20}", fullmatch=True))
def test_a_request_id_is_kept_only_when_short_plain_and_not_like_an_identifier(
        request_id: str) -> None:
    chosen = from_headers(None, request_id)
    if chosen != request_id.strip():  # not kept: a new id instead
        assert str(uuid.UUID(chosen)) == chosen
    else:
        assert 1 <= len(chosen) <= 128 and not any(c.isspace() or c in "\"'" for c in chosen)
        assert scrub_text(chosen) == chosen


@pytest.mark.parametrize("request_id", ["9434765919", "nhs_number:9434765919", "A1234BC",
                                        "HOU0001234", "a" * 129, "two words", ""])
def test_a_request_id_like_an_identifier_or_odd_is_replaced(request_id: str) -> None:
    chosen = from_headers(None, request_id)
    assert chosen != request_id and str(uuid.UUID(chosen)) == chosen


def test_new_ids_are_never_cut_by_the_log_scrubber() -> None:
    """A bare hex id is, about one in 27 times (a run of ten decimal digits)."""
    assert all(scrub_text(i) == i for i in (correlation.new_id() for _ in range(2000)))


async def test_tasks_created_inside_a_bound_block_keep_its_id() -> None:
    async def seen() -> object:
        await asyncio.sleep(0)
        return structlog.contextvars.get_contextvars().get("correlation_id")

    with correlation.bound() as batch:
        task = asyncio.create_task(seen())
    assert "correlation_id" not in structlog.contextvars.get_contextvars()
    assert await task == batch


def _app() -> Starlette:
    async def record(request: Request) -> Response:
        logging.getLogger("uvicorn.error").info("a library line")
        structlog.get_logger("joinedup.reads").info("our line")
        return PlainTextResponse("ok")

    async def stream(request: Request) -> Response:
        async def parts() -> AsyncIterator[str]:
            yield "one "
            logging.getLogger("starlette").warning("while streaming")
            yield "two"
        return StreamingResponse(parts())

    return Starlette(routes=[Route("/record", record), Route("/stream", stream)])


def _text(log: Path) -> str:
    return log.read_text()


def _lines(log: Path) -> list[dict]:
    """The lines these tests log (not the test client's, nor a warning about something
    garbage-collected meanwhile)."""
    lines = [json.loads(line) for line in _text(log).splitlines() if line.strip()]
    return [line for line in lines
            if line["logger"] in {"uvicorn.error", "joinedup.reads", "starlette", "aiokafka"}]


async def test_every_line_of_a_request_carries_its_id_and_the_response_says_which(
        process_log: Path) -> None:
    transport = httpx.ASGITransport(app=CorrelationMiddleware(_app()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        traced = await http.get("/record", headers={
            "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
        fresh = await http.get("/record")
        streamed = await http.get("/stream", headers={"x-request-id": "upload-7"})
    logging.getLogger("aiokafka").info("outside any request")
    assert traced.headers["x-request-id"] == TRACE
    assert streamed.text == "one two" and streamed.headers["x-request-id"] == "upload-7"
    lines = _lines(process_log)
    assert [(line["event"], line["correlation_id"]) for line in lines] == [
        ("a library line", TRACE), ("our line", TRACE),
        ("a library line", fresh.headers["x-request-id"]),
        ("our line", fresh.headers["x-request-id"]),
        ("while streaming", "upload-7"),
        ("outside any request", correlation.process_id())]
    assert all({"level", "timestamp", "logger"} <= set(line) for line in lines)


async def test_a_callers_request_id_shaped_like_an_identifier_is_neither_logged_nor_kept(
        process_log: Path) -> None:
    transport = httpx.ASGITransport(app=CorrelationMiddleware(_app()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/record", headers={"x-request-id": "9434765919"})
    made = answer.headers["x-request-id"]
    assert made != "9434765919" and "9434765919" not in _text(process_log)
    assert {line["correlation_id"] for line in _lines(process_log)} == {made}



async def test_the_servers_line_about_a_failed_request_carries_its_id(process_log: Path) -> None:
    """uvicorn logs an app's exception after the app returned, in the request's own task."""
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bug")

    async def request_task() -> None:
        try:
            await CorrelationMiddleware(fails)(
                {"type": "http", "headers": [(b"x-request-id", b"upload-7")]}, _nothing, _drop)
        except RuntimeError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    await asyncio.create_task(request_task())
    [line] = _lines(process_log)
    assert line["correlation_id"] == "upload-7" and "RuntimeError: bug" in line["event"]


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def _drop(message: Message) -> None:
    pass
