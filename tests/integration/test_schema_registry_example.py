"""The direct publishers' example (docs/examples/publish_direct.py) stays runnable: run as a
program against the real broker and the gateway's schema registry, its event is admitted by
the worker and archived, its key no identifier, its value Confluent-framed."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from services.common.serde.avro import agency_codec, confluent_schema_id
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.ingest.conftest import gateway_thread
from tests.integration.processor.conftest import (  # noqa: F401 - running is a fixture
    read_topic,
    running,
    wait_for,
)

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "publish_direct.py"


async def test_the_example_publishes_an_event_the_worker_admits(
        running: Processor) -> None:  # noqa: F811
    settings = running.settings
    source = f.SOURCES["PRISON"]
    with gateway_thread(settings) as url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "--bootstrap", settings.kafka_bootstrap or "",
            "--registry", f"{url}/schema-registry", "--agency", source.agency,
            "--service-kind", source.service_kind, "--system", source.system,
            "--nhs-number", f.NHS,
            env={**os.environ, "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
                 "JOINEDUP_KEY_SECRET": "an agency's own key secret"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    event_id = out.decode().split()[1]

    assert await wait_for(running.pool, "SELECT count(*) FROM event_archive", 1) == 1
    archived = await running.pool.fetchrow("SELECT event_id, event_type FROM event_archive")
    assert (str(archived["event_id"]), archived["event_type"]) == (event_id, "contact.attended")
    assert await running.pool.fetchval("SELECT count(*) FROM dead_letter") == 0

    [message] = await read_topic(settings.kafka_bootstrap or "",
                                 settings.topics.agency(source.agency), 1)
    assert message.value[:5] == b"\x00" + confluent_schema_id(
        agency_codec().current.fingerprint).to_bytes(4, "big")
    assert f.NHS.encode() not in message.key
    assert dict(message.headers)["ce_id"] == event_id.encode()
