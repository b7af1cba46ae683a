"""`joinedup up` keeps its children running: a child that dies is started again, with backoff.

Children are the embedded servers (PostgreSQL, the Tansu broker) and the `joinedup worker` and
`joinedup api` processes. A crashed worker or gateway is restarted rather than stopping the
stack; a restarted broker gets its topics again (Tansu on memory storage comes back empty, and
the consumers detect the replaced log themselves). A child that exits with status 2 refused
its configuration (an invalid rule pack, say): restarting it cannot help, so the stack stops
and says so. A child that keeps failing is retried with capped exponential backoff, reset
once it has run for a minute.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from rich.console import Console

from services.common.backoff import Backoff

log = structlog.get_logger("joinedup.supervisor")

CONFIGURATION_REFUSED = 2
_STABLE_AFTER_SECONDS = 60.0


class ConfigurationRefused(RuntimeError):
    pass


@dataclass
class Child:
    """Something the supervisor keeps alive: how to start it, whether it is alive."""

    name: str
    start: Callable[[], None]
    alive: Callable[[], bool]
    exit_code: Callable[[], int | None] = lambda: None
    after_restart: Callable[[], None] | None = None
    log: Path | None = None  # where its output goes (None: the terminal)
    started_at: float = 0.0
    restarts: int = 0
    backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 30.0))
    restart_at: float | None = None


@dataclass
class ProcessChild:
    """A `joinedup <command>` child process, its stdout and stderr appended to ``log`` (its
    JSON log lines; the terminal stays for the stack's own messages) or inherited."""

    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> None:
        if self.log is None:
            self.process = subprocess.Popen(self.argv, env=self.env)
            return
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()


class Supervisor:
    def __init__(self, children: list[Child], console: Console | None = None) -> None:
        self.children = children
        self._console = console or Console(stderr=True)

    def check(self) -> None:
        """One round: restart what died (when its backoff allows). Raises
        ConfigurationRefused when a child refused its configuration."""
        now = time.monotonic()
        for child in self.children:
            if child.alive():
                if child.restart_at is None and now - child.started_at > _STABLE_AFTER_SECONDS:
                    child.backoff.reset()
                continue
            if child.restart_at is None:
                code = child.exit_code()
                if code == CONFIGURATION_REFUSED:
                    raise ConfigurationRefused(f"{child.name} refused its configuration "
                                               f"(exit status {code}); see {_output(child)}")
                delay = child.backoff.next()
                child.restart_at = now + delay
                log.warning("child stopped; starting it again", child=child.name,
                            exit_status=code, retry_in=round(delay, 1))
                self._console.print(f"[red]{child.name} stopped[/red] (exit status {code}); "
                                    f"starting it again in {delay:.1f}s")
            elif now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                try:
                    child.start()
                    if child.after_restart is not None:
                        child.after_restart()
                except Exception as exc:  # it is retried on the next round, with backoff
                    self._console.print(f"[red]{child.name} did not start[/red] "
                                        f"({type(exc).__name__}: {exc})")
                    child.restart_at = time.monotonic() + child.backoff.next()
                    continue
                child.started_at = time.monotonic()
                log.info("child started again", child=child.name, restarts=child.restarts)
                self._console.print(f"[yellow]{child.name} started again[/yellow] "
                                    f"(restart {child.restarts})")


def _output(child: Child) -> str:
    return "its output above" if child.log is None else f"its log {child.log}"
