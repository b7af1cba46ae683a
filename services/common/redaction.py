"""Personal data out of log text: bytes, person keys, identifier-shaped tokens.

Our own code logs event ids, topics and offsets, never identifier values; but libraries log
what they hold (aiokafka's debug lines print message keys and Avro values, request structs and
dataclass reprs print identifiers). So every rendered line goes through :func:`scrub_text`:

1. bytes arguments and bytes literals (``b'...'``, ``b"..."``, also inside ``bytearray(...)``)
   become ``<redacted N bytes>``: Kafka keys and Avro values carry identifiers in the clear
   (for a literal, N is what the text showed: aiokafka cuts reprs at 100 bytes);
2. the value after a personal field name (``nhs_number:...``, ``local_id='...'``,
   ``"value": "..."``, ``person_key=...``) becomes ``[redacted]``: that is how person keys and
   reprs carry free-text council ids, which have no shape to recognise;
3. identifier-shaped tokens anywhere become ``[redacted]``: NHS numbers (10 digits, or
   3-3-4 with spaces or dashes), NOMS numbers (A1234BC), CRNs and council ids (1-4 letters,
   then 6-10 digits, as X123456 and HOU0001234), PNC ids (2019/0012345A, 19/12345A).

Canonical UUIDs (event ids) are kept as they are, so logs stay useful for tracing. What this
cannot see: a free-text id outside a personal field (``"Flat 3"`` in a sentence), a value
glued to other letters or digits (``x9434765919``), and encodings of the bytes other than
their repr (hex, base64).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from services.common.events import IDENTIFIER_SCHEMES

REDACTED: Final = "[redacted]"

# A repr never holds a raw newline, so a literal cut short ends at the end of its line.
_BYTES_LITERAL = re.compile(
    r"""(?<!\w)b(?:'(?P<single>(?:[^'\\\n]|\\.)*)(?:(?P<closed>')|\\?$)"""
    r"""|"(?P<double>(?:[^"\\\n]|\\.)*)(?:(?P<closed2>")|\\?$))""",
    re.MULTILINE)
_BYTE_IN_LITERAL = re.compile(r"\\x[0-9a-fA-F]{2}|\\.|.", re.DOTALL)

#: Field names whose value is personal in any rendering (key=value, key: value, 'key': 'v').
_FIELDS: Final = (*IDENTIFIER_SCHEMES, "person_key", "identifier", "value", "date_of_birth",
                  "address")
_FIELD_VALUE = re.compile(
    r"(?<![A-Za-z0-9_])(?P<field>" + "|".join(_FIELDS) + r")(?P<sep>['\"]?\s*[:=]\s*)"
    r"""(?P<value>'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s'",;()\[\]{}<>]+)""",
    re.IGNORECASE)

_NOT_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_NOT_ALNUM_AFTER = r"(?![A-Za-z0-9])"
_TOKEN = re.compile(
    r"(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?<!\d)(?:\d{10}|\d{3}[ -]\d{3}[ -]\d{4})(?!\d)"                       # NHS number
    rf"|{_NOT_ALNUM_BEFORE}[A-Z]\d{{4}}[A-Z]{{2}}{_NOT_ALNUM_AFTER}"          # NOMS number
    rf"|{_NOT_ALNUM_BEFORE}[A-Z]{{1,4}}-?\d{{6,10}}{_NOT_ALNUM_AFTER}"        # CRN, council id
    rf"|{_NOT_ALNUM_BEFORE}(?:\d{{2}}){{1,2}}/\d{{1,7}}[A-Z]{_NOT_ALNUM_AFTER}",  # PNC id
    re.IGNORECASE)


def redacted_bytes(size: int) -> str:
    return f"<redacted {size} bytes>"


def _bytes_literal(match: re.Match[str]) -> str:
    if not (match["closed"] or match["closed2"]):
        return "<redacted bytes>"  # cut short: its size is unknown
    body = match["single"] if match["closed"] else match["double"]
    # Counted, not evaluated: literal_eval warns (through logging, here) on odd escapes.
    return redacted_bytes(len(_BYTE_IN_LITERAL.findall(body)))


def _field_value(match: re.Match[str]) -> str:
    quote = match["value"][0] if match["value"][0] in "'\"" else ""
    return f"{match['field']}{match['sep']}{quote}{REDACTED}{quote}"


def _token(match: re.Match[str]) -> str:
    return match.group() if match["uuid"] else REDACTED


def scrub_text(text: str) -> str:
    """``text`` with bytes, personal field values and identifier-shaped tokens replaced."""
    text = _BYTES_LITERAL.sub(_bytes_literal, text)
    text = _FIELD_VALUE.sub(_field_value, text)
    return _TOKEN.sub(_token, text)


def scrub_value(value: Any) -> Any:
    """A log value with personal data replaced; containers are scrubbed item by item."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return redacted_bytes(memoryview(value).nbytes)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):  # an NHS number may arrive as an int
        return value if scrub_text(str(value)) == str(value) else REDACTED
    if isinstance(value, Mapping):
        return {scrub_value(k): scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_value(v) for v in value]
    return scrub_text(repr(value))  # what the renderer would print, scrubbed


def scrub_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every value, the event text included, scrubbed."""
    for key, value in event_dict.items():
        if not key.startswith("_"):  # structlog's own (_record, _from_structlog)
            event_dict[key] = scrub_value(value)
    return event_dict


class _BytesArg:
    """Stands for a bytes argument in %-formatting, for %s and %r alike."""

    def __init__(self, size: int) -> None:
        self._text = redacted_bytes(size)

    def __str__(self) -> str:
        return self._text

    __repr__ = __str__


def _safe_arg(arg: object) -> object:
    if isinstance(arg, bytes | bytearray | memoryview):
        return _BytesArg(memoryview(arg).nbytes)
    return arg


class PersonalDataFilter(logging.Filter):
    """Renders each record and scrubs it before any formatter or handler sees its parts.

    Installed on the root handler, so it sees every library's records, not only ours. The
    record leaves with ``msg`` the scrubbed text (traceback and stack included) and no
    ``args``, ``exc_info`` or ``stack_info`` left to print in the clear. It never drops a
    record and never raises: a filter that raised would break the caller's log call.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, dict):  # structlog's event dict, via wrap_for_formatter
                record.msg = scrub_value(record.msg)
            else:
                record.msg = scrub_text(self._render(record))
                record.args = ()
                record.exc_info = record.exc_text = record.stack_info = None
        except Exception as exc:  # never let redaction break logging, nor leak on failure
            record.msg = f"<log record withheld: redaction failed ({type(exc).__name__})>"
            record.args = ()
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    @staticmethod
    def _render(record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, Mapping):
            record.args = {k: _safe_arg(v) for k, v in args.items()}
        elif args:
            record.args = tuple(_safe_arg(a) for a in args)
        try:
            text = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a bad format string: show it, not the args
            text = f"{record.msg} <arguments withheld: they do not fit the format>"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            text = f"{text}\n{record.stack_info}"
        return text
