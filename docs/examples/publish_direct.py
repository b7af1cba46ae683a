"""Publish one agency event straight to joinedup's Kafka topic, as an agency system would.

Needs only aiokafka, fastavro and httpx (no joinedup code): the schema and its id come from
the schema registry the gateway serves (docs/publishing-to-kafka.md). Run:

    JOINEDUP_KEY_SECRET=... python docs/examples/publish_direct.py \\
        --bootstrap localhost:9092 --registry http://127.0.0.1:8080/schema-registry \\
        --agency hmp-leeds --service-kind PRISON --system NOMIS --nhs-number 9434765919

It prints the event id, the topic, the partition and the offset. On a secured cluster add
your SASL/TLS settings to the producer (see deploy/kafka/agency-principal.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import io
import json
import os
import uuid
from datetime import UTC, datetime

import fastavro
import httpx
from aiokafka import AIOKafkaProducer

TOPIC_PREFIX = os.environ.get("JOINEDUP_TOPIC_PREFIX", "joinedup")


def latest_schema(registry: str, topic: str) -> tuple[int, dict]:
    """The newest schema of the topic's subject (TopicNameStrategy) and its id."""
    answer = httpx.get(f"{registry.rstrip('/')}/subjects/{topic}-value/versions/latest",
                       timeout=10)
    answer.raise_for_status()
    found = answer.json()
    return found["id"], fastavro.parse_schema(json.loads(found["schema"]))


def person_key(secret: bytes, scheme: str, value: str) -> bytes:
    """A key that keeps one person's events in order without being personal data: a keyed
    hash of their strongest identifier (never the identifier itself: admission refuses it)."""
    return hmac.new(secret, f"{scheme}:{value}".encode(), hashlib.sha256).hexdigest()[:32].encode()


def confluent_value(schema_id: int, schema: dict, record: dict) -> bytes:
    """The Confluent wire format: magic byte 0, the schema id (4 bytes, big-endian), Avro."""
    buffer = io.BytesIO()
    buffer.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def contact_attended(agency: str, service_kind: str, system: str, nhs_number: str) -> dict:
    """A `contact.attended` event: the person came to an appointment."""
    now = datetime.now(UTC)
    return {
        "event_id": str(uuid.uuid4()),      # yours to choose: the idempotency key
        "event_type": "contact.attended",
        "schema_version": 3,
        "occurred_at": now,
        "recorded_at": now,
        "causation_id": None,
        "source": {"agency": agency, "service_kind": service_kind, "system": system,
                   "team": None, "area": None},
        "identifiers": [{"scheme": "nhs_number", "value": nhs_number}],
        "sensitivity": "GENERAL",
        "payload": ("joinedup.Contact", {"contact_id": f"c-{uuid.uuid4().hex[:8]}",
                                         "mode": "in person", "referral_id": None}),
        "extra": {},
    }


async def publish(bootstrap: str, registry: str, agency: str, service_kind: str, system: str,
                  nhs_number: str, secret: bytes) -> str:
    topic = f"{TOPIC_PREFIX}.agency-events.{agency}"
    schema_id, schema = latest_schema(registry, topic)
    record = contact_attended(agency, service_kind, system, nhs_number)
    headers = [  # CloudEvents Kafka binding, binary mode: readable without decoding
        ("content-type", b"application/avro"),
        ("ce_specversion", b"1.0"),
        ("ce_id", record["event_id"].encode()),
        ("ce_source", f"/agencies/{agency}".encode()),
        ("ce_type", record["event_type"].encode()),
        ("ce_time", record["occurred_at"].isoformat(timespec="milliseconds")
         .replace("+00:00", "Z").encode()),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            topic, confluent_value(schema_id, schema, record),
            key=person_key(secret, "nhs_number", nhs_number), headers=headers)
    finally:
        await producer.stop()
    print(f"published {record['event_id']} to {topic} "
          f"partition {sent.partition} offset {sent.offset}")
    return str(record["event_id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="a Kafka bootstrap server")
    parser.add_argument("--registry", required=True, help="the schema registry URL")
    parser.add_argument("--agency", required=True, help="your agency id (your topic's)")
    parser.add_argument("--service-kind", required=True, help="PRISON, HOUSING, ...")
    parser.add_argument("--system", required=True, help="the system that recorded it")
    parser.add_argument("--nhs-number", required=True, help="the person's NHS number")
    args = parser.parse_args()
    secret = os.environ.get("JOINEDUP_KEY_SECRET", "")
    if len(secret) < 16:
        parser.error("set JOINEDUP_KEY_SECRET to your key secret (16 characters or more)")
    asyncio.run(publish(args.bootstrap, args.registry, args.agency, args.service_kind,
                        args.system, args.nhs_number, secret.encode()))


if __name__ == "__main__":
    main()
