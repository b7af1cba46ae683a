"""Kafka records as the consumers hand them on, and the digest that identifies one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed record: where it was, and its bytes as received."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = -1                    # milliseconds, as the broker returned it
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    @classmethod
    def of(cls, record: Any) -> Message:
        """From an aiokafka ConsumerRecord."""
        return cls(record.topic, record.partition, record.offset, record.key, record.value,
                   record.timestamp, tuple(record.headers or ()))

    @property
    def digest(self) -> bytes:
        return record_digest(self.timestamp, self.key, self.value)


def record_digest(timestamp: int, key: bytes | None, value: bytes | None) -> bytes:
    """16 bytes that tell one record from another at the same offset of another log.

    The timestamp is part of it: a publisher re-sending the same bytes into a new log after a
    broker reset writes a new timestamp, so a re-published copy is not mistaken for the
    record that was read before.
    """
    digest = hashlib.sha256(timestamp.to_bytes(8, "big", signed=True))
    for part in (key, value):
        digest.update(len(part).to_bytes(4, "big") if part is not None else b"\xff" * 4)
        digest.update(part or b"")
    return digest.digest()[:16]
