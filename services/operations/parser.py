"""How every `joinedup` command reads its arguments and reports what went wrong.

Every parser shows each option's default in ``--help`` (unless its help says it already), a
usage error is one line naming the command (``joinedup rebuild: unrecognized arguments: -x
(see joinedup rebuild --help)``), and a command that fails (no stack running, a server
unreachable, a missing file) says so in one line with a non-zero exit code, never a
traceback. Exception messages of our own code carry no personal data; those of libraries
are reduced to what went wrong and where (never a value they echo).
"""

from __future__ import annotations

import argparse
import errno
import sys
from datetime import UTC, datetime
from typing import NoReturn

import asyncpg
from aiokafka.errors import KafkaError
from pydantic import ValidationError


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """The parser of `joinedup` and of each of its commands (subparsers are of this class
    too: argparse makes them of their parent's)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _DefaultsShown)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def what_went_wrong(exc: BaseException) -> str:
    """One line for a command that failed."""
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, IsADirectoryError | PermissionError):
        return f"cannot read {exc.filename}: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError) or (
            isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED):
        return ("a server refused the connection: is the stack running? (joinedup up, or set "
                "DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS)")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "the port is in use by another program: choose another (JOINEDUP_*_PORT)"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return f"PostgreSQL refused: {type(exc).__name__}"
    if isinstance(exc, KafkaError):
        return f"the Kafka broker: {type(exc).__name__}"
    if isinstance(exc, TimeoutError):
        return "a server did not answer in time: is the stack running?"
    if isinstance(exc, ValidationError):  # a setting: name it and why, never its value
        error = exc.errors(include_input=False, include_url=False)[0]
        name = "_".join(str(part) for part in error["loc"]).upper()
        return f"setting JOINEDUP_{name}: {error['msg']}" if name else error["msg"]
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, RuntimeError) and first:  # ours: the message says it all
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def fail(command: str, exc: BaseException) -> int:
    sys.stderr.write(f"joinedup {command}: {what_went_wrong(exc)}\n")
    return 1


def moment(text: str) -> datetime:
    """An option's date and time: ISO 8601, UTC when it names no zone."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date and time: {text!r} (ISO 8601, e.g. 2026-01-05T09:00)") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def positive(text: str) -> int:
    """An option's count: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
