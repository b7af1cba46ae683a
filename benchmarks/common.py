"""Shared pieces of the benchmark scripts: a throw-away stack and a results table."""

from __future__ import annotations

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
