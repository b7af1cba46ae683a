"""`joinedup backfill` as an operator runs it: start, upload, status, finish, and every
refusal one line with a non-zero exit code."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.common.events import Source
from services.common.serde.agency_json import event_to_json
from services.common.settings import Settings
from services.processor.bootstrap import Processor
from tests.integration.processor.conftest import register_sources, wait_for
from tests.integration.processor.test_backfill import _contact, _discharge

JOINING = Source("mh-trust-calderdale", "MENTAL_HEALTH", "RiO", "ward-1", "E08000033")
NHS = "9434765919"
H = timedelta(hours=1)
M = timedelta(minutes=1)


async def backfill(settings: Settings, *args: str) -> tuple[int | None, str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
           "JOINEDUP_DB_SCHEMA": settings.db_schema,
           "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix, "JOINEDUP_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.operations.cli", "backfill", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode()


def _lines(path: Path, events: list) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(event_to_json(e), default=str) + "\n" for e in events))
    return path


async def test_an_operator_backfills_an_agency_from_the_command_line(
        running: Processor, tmp_path: Path) -> None:
    settings, agency = running.settings, JOINING.agency
    await register_sources(running.pool, [(agency, "MENTAL_HEALTH")])
    cut_over = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    at = cut_over - timedelta(days=100)
    history = [_discharge(JOINING, NHS, at), _contact(JOINING, "follow_up", NHS, at + 24 * H)]

    code, out = await backfill(settings, "upload", "--agency", agency,
                               str(_lines(tmp_path / "h.jsonl", history)))
    assert (code, out.strip()) == (2, f"joinedup backfill upload: {agency} has no open "
                                      "backfill (joinedup backfill start)")
    code, out = await backfill(settings, "start", "--agency", "nobody-registered", "--until",
                               cut_over.isoformat(), "--by", "j.smith")
    assert code == 2 and len(out.strip().splitlines()) == 1 and "no agency" in out
    code, out = await backfill(settings, "start", "--agency", agency, "--until",
                               cut_over.isoformat(), "--by", "j.smith")
    assert code == 0, out

    live = _contact(JOINING, "follow_up", NHS, cut_over + 10 * M)  # after the cut-over
    code, out = await backfill(settings, "upload", "--agency", agency,
                               str(_lines(tmp_path / "bad.jsonl", [*history, live])))
    assert code == 2 and out.strip().endswith("line 3: not mh-trust-calderdale's history "
                                              "(another agency's event, or recorded at or "
                                              "after the cut-over)")
    code, out = await backfill(settings, "upload", "--agency", agency,
                               str(_lines(tmp_path / "h.jsonl", history)))
    assert (code, out.strip()) == (0, f"uploaded 2 events of {agency}'s history")
    await wait_for(running.pool, f"SELECT count(*) FROM event_archive WHERE source_agency = "
                                 f"'{agency}'", 2)

    code, out = await backfill(settings, "status", "--agency", agency)
    assert code == 0 and "history applied 2, deadlines held 1" in out, out  # the care plan
    code, out = await backfill(settings, "finish", "--agency", agency, "--by", "j.smith")
    assert code == 0, out
    code, out = await backfill(settings, "finish", "--agency", agency, "--by", "j.smith")
    assert (code, out.strip()) == (2, f"joinedup backfill finish: {agency}'s backfill is "
                                      "finished already")
    code, out = await backfill(settings, "status")
    assert code == 0 and f"{agency}: finished" in out and "by j.smith" in out
