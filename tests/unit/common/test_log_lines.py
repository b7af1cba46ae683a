"""What would escape the JSON formatter otherwise: uncaught exceptions (main thread, other
threads, asyncio tasks nobody awaited) come out as JSON lines, scrubbed, with a
correlation id (the batch's inside a bound block, the process's outside)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
import threading
from pathlib import Path

import structlog

from services.common import correlation

SECRET = "9434765919"  # an NHS-number-shaped value that must never be printed


def _lines(log: Path, *loggers: str) -> list[dict]:
    """The lines of these loggers (not a warning about something collected meanwhile)."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [line for line in lines if line["logger"] in loggers]


def test_an_uncaught_exception_is_one_scrubbed_json_line(process_log: Path) -> None:
    try:
        raise ValueError(f"no person nhs_number:{SECRET}")
    except ValueError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    [line] = _lines(process_log, "joinedup.uncaught")
    assert line["event"] == "uncaught exception" and line["level"] == "critical"
    assert "Traceback" in line["exception"] and SECRET not in process_log.read_text()
    assert line["correlation_id"] == correlation.process_id()


def test_an_uncaught_exception_in_a_thread_is_one_scrubbed_json_line(process_log: Path
                                                                     ) -> None:
    def work() -> None:
        raise RuntimeError(f"crn:X123456 {SECRET}")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    [line] = _lines(process_log, "joinedup.uncaught")
    assert line["event"] == "uncaught exception" and "RuntimeError" in line["exception"]
    assert line["correlation_id"] == correlation.process_id()
    assert SECRET not in process_log.read_text() and "X123456" not in process_log.read_text()


def test_a_task_exception_nobody_retrieved_is_logged_by_asyncio_as_json(
        process_log: Path) -> None:
    async def fails() -> None:
        raise LookupError(SECRET)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(fails())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        del task
        gc.collect()  # the "never retrieved" line is logged when the task is collected

    asyncio.run(main())
    lines = _lines(process_log, "asyncio")
    assert lines and "never retrieved" in lines[0]["event"]
    assert SECRET not in process_log.read_text()


def test_library_lines_in_a_batch_carry_its_id(process_log: Path) -> None:
    with correlation.bound() as batch:
        logging.getLogger("aiokafka.consumer").info("fetched %s", b"nhs_number:" + SECRET.encode())
        structlog.get_logger("joinedup.consumer").info("batch applied", records=3)
    logging.getLogger("faust.worker").info("idle")
    lines = _lines(process_log, "aiokafka.consumer", "joinedup.consumer", "faust.worker")
    assert [(line["logger"], line["correlation_id"]) for line in lines] == [
        ("aiokafka.consumer", batch), ("joinedup.consumer", batch),
        ("faust.worker", correlation.process_id())]
    assert lines[0]["event"] == "fetched <redacted 21 bytes>"
