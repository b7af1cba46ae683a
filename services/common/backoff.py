"""Capped exponential backoff with jitter, for loops that retry a server that is down."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._failures = 0

    def next(self) -> float:
        """The delay before the next attempt (full jitter over the upper half)."""
        ceiling = min(self._maximum, self._initial * 2 ** min(self._failures, 30))
        self._failures += 1
        return ceiling * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures
