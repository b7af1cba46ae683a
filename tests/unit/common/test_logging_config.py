"""One logging set-up (services.common.logging): levels, the filtered stderr handler, structlog
through it, and mode's worker keeping it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from mode.utils.logging import setup_logging
from pydantic import ValidationError

from services.common.logging import (
    LIBRARY_LOGGERS,
    OWN_LOGGERS,
    configure_logging,
    logging_config,
)
from services.common.redaction import PersonalDataFilter
from services.common.settings import Settings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """These tests configure the process's logging; put back what pytest had."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = (*LIBRARY_LOGGERS, *OWN_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)
        logging.captureWarnings(False)
        structlog.reset_defaults()


def _lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_libraries_stay_at_info_when_ours_is_debug() -> None:
    config = logging_config("DEBUG", library_level="INFO")
    assert config["root"]["level"] == "INFO"
    assert all(config["loggers"][name]["level"] == "INFO" for name in LIBRARY_LOGGERS)
    assert all(config["loggers"][name]["level"] == "DEBUG" for name in OWN_LOGGERS)
    assert {"aiokafka", "kafka", "faust", "mode", "asyncpg", "uvicorn", "httpx", "httpcore",
            "fastapi", "starlette", "hpack"} <= set(LIBRARY_LOGGERS)


def test_quieter_ours_makes_libraries_quieter_too() -> None:
    config = logging_config("WARNING", library_level="INFO")
    assert config["root"]["level"] == config["loggers"]["aiokafka"]["level"] == "WARNING"


def test_one_stderr_handler_with_the_filter() -> None:
    config = logging_config("DEBUG")
    handler = config["handlers"]["stderr"]
    assert handler["stream"] == "ext://sys.stderr" and handler["filters"] == ["personal_data"]
    assert config["filters"]["personal_data"]["()"] is PersonalDataFilter
    assert config["root"]["handlers"] == ["stderr"]
    assert config["disable_existing_loggers"] is False


def test_library_debug_is_dropped_and_everything_else_scrubbed(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", json=True)
    logging.getLogger("aiokafka.producer.producer").debug(
        "Sending (key=%s value=%s)", b"nhs_number:9434765919", b"\x02A1234BC")
    logging.getLogger("aiokafka.consumer").info("joined %s", "nhs_number:9434765919")
    structlog.get_logger("joinedup.intake").debug(
        "batch applied", applied=3, note="crn:X123456", person_key="nhs_number:9434765919")
    err = capsys.readouterr().err
    assert "9434765919" not in err and "A1234BC" not in err and "X123456" not in err
    lines = _lines(err)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("aiokafka.consumer", "info"), ("joinedup.intake", "debug")]
    assert lines[0]["event"] == "joined nhs_number:[redacted]"
    assert lines[1]["applied"] == 3 and lines[1]["note"] == "crn:[redacted]"


def test_an_operator_can_lower_the_library_level_and_the_filter_still_scrubs(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", json=False, library_level="DEBUG")
    logging.getLogger("aiokafka.producer.producer").debug(
        "Sending (key=%s value=%s)", b"nhs_number:9434765919", b"\x02A1234BC")
    err = capsys.readouterr().err
    assert "Sending (key=<redacted 21 bytes> value=<redacted 8 bytes>)" in err
    assert "9434765919" not in err


def test_exceptions_are_plain_and_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=False)
    secret = "9434765919"  # a local the rich traceback would print
    try:
        raise ValueError(f"no person nhs_number:{secret}")
    except ValueError:
        structlog.get_logger("joinedup.x").exception("failed")
        logging.getLogger("faust.agents").exception("Agent crashed")
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 2 and secret not in err


def test_the_worker_keeps_our_handler(capsys: pytest.CaptureFixture[str]) -> None:
    """faust.Worker runs mode's setup_logging, which clears the root handlers first."""
    configure_logging("DEBUG")
    setup_logging(loglevel="debug", logging_config=logging_config("DEBUG"))
    [handler] = logging.getLogger().handlers
    assert any(isinstance(f, PersonalDataFilter) for f in handler.filters)
    assert logging.getLogger("aiokafka").getEffectiveLevel() == logging.INFO
    logging.getLogger("mode.worker").info("started for %s", b"k")
    assert "<redacted 1 bytes>" in capsys.readouterr().err


def test_settings_take_a_library_level_and_refuse_unknown_levels() -> None:
    assert Settings().log_library_level == "INFO"
    assert Settings(log_level="debug", log_library_level="warning").log_library_level == "WARNING"
    with pytest.raises(ValidationError):
        Settings(log_library_level="LOUD")
