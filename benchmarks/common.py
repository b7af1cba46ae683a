"""Shared pieces of the benchmark scripts: a throw-away stack and a results table."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.common.settings import Settings
from services.stack.local import local_stack


@contextmanager
def bench_settings(**overrides: object) -> Iterator[Settings]:
    """Embedded servers in a temporary folder (or the configured ones), unique names."""
    base = Settings()
    with tempfile.TemporaryDirectory(prefix="joinedup-bench-") as tmp, local_stack(
            Path(tmp), base.database_url, base.kafka_bootstrap, durable=True) as stack:
        tag = uuid.uuid4().hex[:8]
        values: dict[str, object] = {
            "database_url": stack.database_url, "kafka_bootstrap": stack.kafka_bootstrap,
            "db_schema": f"bench_{tag}", "topic_prefix": f"bench{tag}",
            "processor_group": f"bench{tag}", "admission_group": f"bench{tag}-admission",
            "log_level": "WARNING", "data_dir": Path(tmp),
        }
        values.update(overrides)
        yield base.model_copy(update=values)


def print_table(title: str, rows: list[tuple[str, float, str]], note: str = "") -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("events/s", justify="right")
    table.add_column("ratio", justify="right")
    for name, rate, ratio in rows:
        table.add_row(name, f"{rate:,.0f}", ratio)
    console = Console()
    console.print(table)
    if note:
        console.print(note)


class KeepAliveClient:
    """A bare HTTP/1.1 keep-alive client for one request shape. httpx spends more CPU per
    request than the servers under test do, so on a small machine it would measure itself."""

    def __init__(self, url: str, method: str, path: str, headers: dict[str, str]) -> None:
        self._host, _, port = url.removeprefix("http://").partition(":")
        self._port = int(port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self._head = ("\r\n".join(lines) + "\r\n").encode()
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, body: bytes = b"") -> tuple[int, int]:
        """(status, length of the response body); the connection goes back to the idle list."""
        request = self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        while True:
            reused = bool(self._idle)
            reader, writer = (self._idle.pop() if reused
                              else await asyncio.open_connection(self._host, self._port))
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                if reused:  # the server closed it as idle before reading: send again
                    continue
                raise
            length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                          if line.startswith(b"content-length:"))
            await reader.readexactly(length)
            self._idle.append((reader, writer))
            return int(head[9:12]), length

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
