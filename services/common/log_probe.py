"""Reading a partition's anchor record back, to tell whether a stored position still holds.

Tansu on memory storage starts every topic again from offset 0 after a restart; a topic that
is deleted and created again does the same on Apache Kafka. A stored position then points into
a different log: beyond its end (the consumer would wait silently for offsets that are not
coming), or onto other records (it would skip the new log's first records). So before a
consumer applies anything from a partition it reads the record just below its stored position
and compares it with the digest it stored with the position.

On Tansu a fetch beyond the end returns no records and no error, with the right high watermark
in the fetch response (ListOffsets "latest" can lag it), so the high watermark decides there;
Apache Kafka answers OffsetOutOfRange.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from aiokafka import TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from services.common.kafka import make_consumer, stop_consumer
from services.common.positions import Tracked
from services.common.records import Message
from services.common.settings import Settings

Kind = Literal["same", "replaced", "unverified"]


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    reason: str
    anchor: bytes | None = None  # the digest found below the position (rows without one)


SAME_START = Verdict("same", "nothing applied yet")


async def verify(settings: Settings, tracked: dict[TopicPartition, Tracked],
                 log_starts: dict[TopicPartition, int], timeout: float = 10.0,
                 **consumer_options: object) -> dict[TopicPartition, Verdict]:
    """A verdict for every partition in `tracked`, given each log's start offset."""
    verdicts: dict[TopicPartition, Verdict] = {}
    wanted: dict[TopicPartition, Tracked] = {}
    for tp, row in tracked.items():
        start = log_starts[tp]
        if row.next_offset == start:
            verdicts[tp] = SAME_START
        elif row.next_offset < start:
            verdicts[tp] = Verdict("replaced", f"the log now starts at {start}, after the "
                                   f"stored position {row.next_offset}")
        else:
            wanted[tp] = row
    if wanted:
        verdicts.update(await _read_anchors(settings, wanted, timeout, consumer_options))
    return verdicts


async def _read_anchors(settings: Settings, wanted: dict[TopicPartition, Tracked], timeout: float,
                        options: dict[str, object]) -> dict[TopicPartition, Verdict]:
    consumer = make_consumer(
        settings, group_id=None, enable_auto_commit=False, auto_offset_reset="none",
        fetch_max_wait_ms=100, **options)
    await consumer.start()
    verdicts: dict[TopicPartition, Verdict] = {}
    try:
        consumer.assign(list(wanted))
        for tp, row in wanted.items():
            consumer.seek(tp, row.next_offset - 1)
        deadline = asyncio.get_running_loop().time() + timeout
        pending = set(wanted)
        while pending and asyncio.get_running_loop().time() < deadline:
            try:
                fetched = await consumer.getmany(*pending, timeout_ms=200, max_records=1)
            except OffsetOutOfRangeError as exc:
                for tp in exc.args[0] if exc.args and isinstance(exc.args[0], dict) else ():
                    verdicts[tp] = Verdict("replaced", "the stored position is out of the "
                                           "log's range")
                    pending.discard(tp)
                continue
            for tp, records in fetched.items():
                if records and tp in pending:
                    verdicts[tp] = _judge(wanted[tp], Message.of(records[0]))
                    pending.discard(tp)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater < wanted[tp].next_offset:
                    verdicts[tp] = Verdict("replaced", f"the log ends at {highwater}, before "
                                           f"the stored position {wanted[tp].next_offset}")
                    pending.discard(tp)
        for tp in pending:
            verdicts[tp] = Verdict("unverified", "the anchor record could not be read in time")
    finally:
        await stop_consumer(consumer)
    return verdicts


def _judge(row: Tracked, record: Message) -> Verdict:
    expected = row.next_offset - 1
    if record.offset != expected:
        return Verdict("replaced", f"no record at offset {expected} any more (the next one "
                       f"is at {record.offset})")
    if row.anchor is None:
        return Verdict("same", "anchor recorded now", record.digest)
    if record.digest != row.anchor:
        return Verdict("replaced", f"the record at offset {expected} is not the one applied")
    return Verdict("same", "anchor matches")
