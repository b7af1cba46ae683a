"""The producers' partitioner is Kafka's default one, only faster: every key lands on the
partition aiokafka's (and the Java client's) murmur2 gives it, so one person's events stay on
one partition whoever produced them."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from services.common.kafka import key_partitioner


@given(st.binary(max_size=80), st.integers(min_value=1, max_value=64))
def test_a_key_lands_where_kafkas_default_partitioner_puts_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert key_partitioner(key, partitions, partitions) == expected
    assert key_partitioner(key, partitions, partitions) == expected  # memoised, the same


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    assert key_partitioner(None, [0, 1, 2, 3], [2]) == 2
