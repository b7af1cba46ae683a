"""Out-of-order arrival: agencies publish independently, so their streams interleave."""

from __future__ import annotations

import random
from collections import deque

from services.common.events import AgencyEvent


def shuffle_across_agencies(events: list[AgencyEvent], rng: random.Random) -> list[AgencyEvent]:
    """A random interleaving of the agencies' streams that keeps each agency's own order.

    Every interleaving is equally likely: one label per event is shuffled, and each label
    takes the next event of its agency. Events of one person from two agencies can swap;
    events from the same agency never do (one producer publishes in order).
    """
    queues: dict[str, deque[AgencyEvent]] = {}
    for event in events:
        queues.setdefault(event.source.agency, deque()).append(event)
    labels = [event.source.agency for event in events]
    rng.shuffle(labels)
    return [queues[label].popleft() for label in labels]
