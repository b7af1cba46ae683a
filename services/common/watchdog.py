"""Telling a stalled partition from a busy one: pure, no I/O, no clock of its own.

A consumer can stop making progress on a partition without failing: a fetch that never
returns, a partition paused and never resumed, a handler that hangs. Nothing raises, so
nothing retries; the lag just grows (faust's most reported failure). The watchdog looks at
each assigned partition's stored position (PostgreSQL, the tracking row) and the true end
of its log every few seconds, and folds the readings here:

- a partition is *stalled* when its lag is above zero and its stored position has not moved
  for ``stall_after`` seconds (a partition with nothing to read is never stalled, however
  long its position stays put);
- the first recovery is ``reposition`` (seek to the stored position and resume); if the
  partition is still stalled ``stall_after`` seconds after that, ``restart`` (the consumer is
  stopped and started again, its partitions positioned from PostgreSQL), and again every
  ``stall_after`` seconds while it stays stalled;
- a position that moves, or a lag back to zero, ends the stall and its escalation.

Apart from stalls, a log that ends *before* a stored position has lost records that were
applied (a broker restarted on memory storage, a topic made again): ``behind_the_end`` names
those partitions, to be positioned again at once, which checks the log's identity
(``services/common/log_probe.py``) and replays a replaced log from its start. The check at
assignment alone is not enough: a consumer that keeps its assignment through a broker restart
goes on fetching from its old offset, and once the new log has grown past it, the records
below it would be skipped unseen.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
Action = Literal["reposition", "restart"]


def lag(end: int, position: int) -> int:
    """Records in the log not yet applied. A position beyond the end (a replaced log:
    ``behind_the_end``) is no backlog."""
    return max(0, end - position)


@dataclass(frozen=True, slots=True)
class Reading:
    position: int   # the stored next offset
    end: int        # the true end of the log (the fetch high watermark)

    @property
    def lag(self) -> int:
        return lag(self.end, self.position)


@dataclass(frozen=True, slots=True)
class Progress:
    position: int
    moved_at: float              # when the position last moved (or there was nothing to read)
    acted_at: float | None = None  # when the last recovery was started
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Stall(Generic[K]):
    partition: K
    position: int
    lag: int
    seconds: float               # since the position last moved
    action: Action | None        # what to do now (None: a recovery is under way)


def observe(state: Mapping[K, Progress], now: float, readings: Mapping[K, Reading],
            stall_after: float) -> tuple[dict[K, Progress], list[Stall[K]]]:
    """The next state and the stalled partitions. Partitions without a reading (no longer
    assigned) are forgotten."""
    following: dict[K, Progress] = {}
    stalls: list[Stall[K]] = []
    for key, reading in readings.items():
        before = state.get(key)
        if before is None or reading.position != before.position or reading.lag == 0:
            following[key] = Progress(reading.position, now)
            continue
        idle = now - before.moved_at
        if idle < stall_after:
            following[key] = before
            continue
        action: Action | None = None
        if before.acted_at is None:
            action = "reposition"
        elif now - before.acted_at >= stall_after:
            action = "restart"
        progress = before if action is None else Progress(
            before.position, before.moved_at, now, before.attempts + 1)
        following[key] = progress
        stalls.append(Stall(key, reading.position, reading.lag, idle, action))
    return following, stalls


def behind_the_end(readings: Mapping[K, Reading]) -> list[K]:
    """The partitions whose log ends before their stored position: records applied from them
    are no longer in the log, so it is not the log that was applied."""
    return [key for key, reading in readings.items() if reading.end < reading.position]
