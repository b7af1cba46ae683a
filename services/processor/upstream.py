"""Whether admission, across every worker of the group, has forwarded all it was given.

The deadline timer fires a partition only when nothing upstream could still meet one of its
deadlines. A worker knows whether its own admission is caught up; with several workers, the
events of a person on this worker's partition can be waiting in another worker's admission
(each admits its share of the agency topics' partitions), or in the share of a worker that
was killed and not taken over yet. Firing then raises an alert that one worker would not
have raised (resolved "late" when the event arrives): found by tests/faults/test_scale_out.py.

So the group's own record is asked: admission's tracking rows in PostgreSQL (every agency
partition a member has positioned) against the true end of each of those logs. A "clear"
answer is trusted for ``every`` seconds (events published since are live ones, which the
publishing grace covers); a "not clear" one is measured again at the next tick. An agency
partition no member has positioned yet (a topic created a moment ago) has no row to ask.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import TopicPartition

from projections.queries import positions as positions_sql
from services.common.log_ends import LogEnds
from services.common.settings import Settings


class AdmissionBacklog:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, every: float) -> None:
        self._group = settings.admission_group
        self._pool = pool
        self._every = every
        self._ends = LogEnds(settings)
        self._clear_at: float | None = None

    async def clear(self) -> bool:
        """True when every agency partition the admission group tracks has been forwarded
        to its end. Raises what the database or the broker raise (the tick is skipped)."""
        now = asyncio.get_running_loop().time()
        if self._clear_at is not None and now - self._clear_at < self._every:
            return True
        rows = await self._pool.fetch(positions_sql.GROUP_POSITIONS, self._group)
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        ends = await self._ends.measure(stored.keys())
        # a partition whose end did not answer in time counts as behind
        clear = all(tp in ends and at >= ends[tp] for tp, at in stored.items())
        self._clear_at = now if clear else None
        return clear

    async def close(self) -> None:
        await self._ends.close()
