"""The read-model registry: each read model is one entry, and the processor applies them all.

An entry is a name, a table from event type (or event family) to its pure fold, the key
whose state an event folds into, and the store that loads and saves that state. Every fold
has the one signature ``(state, event) -> (new state, changes)``: the state of one key (a
referral, a person's caseload, a person's rule state; ``None`` when the key has none yet,
or for read models that keep no state, such as the timeline) and the changes to write.

For a batch the registry asks each store for the states its events need (one query), folds
the events in log order, and hands the store the final states and the changes (one write
each), all inside the batch's transaction. Adding a read model is adding an entry in
``services/processor/read_models/__init__.py``, not editing the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from services.alerts.events import AlertEvent
from services.common.events import AgencyEvent
from services.processor.adapters.store import Received

K = TypeVar("K", bound=Hashable)
S = TypeVar("S")
C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)

#: (state of one key or None, event) -> (new state, changes to write)
Fold = Callable[[S | None, AgencyEvent], tuple[S | None, Sequence[C]]]


class Store(Protocol[K, S, C_contra]):
    """A read model's asyncpg edge. ``load`` and ``save`` run inside the batch transaction;
    ``save`` returns the alert events it put in the outbox (published after commit).
    ``committed``/``rolled_back`` tell a store with a cache how the transaction ended."""

    @property
    def lock(self) -> asyncio.Lock | None:
        """Held for the batch when others write this store too (the deadline timer)."""

    async def load(self, conn: asyncpg.Connection, keys: Sequence[K],
                   batch: Sequence[Received]) -> dict[K, S]: ...

    async def save(self, conn: asyncpg.Connection, states: Mapping[K, S | None],
                   changes: Sequence[C_contra], batch: Sequence[Received]
                   ) -> Sequence[AlertEvent]: ...

    def committed(self) -> None: ...

    def rolled_back(self) -> None: ...

    def reset(self) -> None:
        """Forget any cache: the read model's tables were replaced (a rebuild switched)."""

    async def forget(self, conn: asyncpg.Connection, people: Sequence[str]) -> None:
        """Delete what the read model holds for these person ids (cache included): records
        were linked or separated, and their archived events are folded again."""


class Uncached:
    """Base for stores that keep no cache and share their tables with no timer: no lock, and
    nothing to do when a transaction ends or the tables are replaced."""

    lock: asyncio.Lock | None = None

    def committed(self) -> None:
        pass

    def rolled_back(self) -> None:
        pass

    def reset(self) -> None:
        pass


class Stateless(Uncached, Generic[C]):
    """Base for stores of read models that only append (no state to load)."""

    async def load(self, conn: asyncpg.Connection, keys: Sequence[None],
                   batch: Sequence[Received]) -> dict[None, None]:
        return {}

    async def save(self, conn: asyncpg.Connection, states: Mapping[None, None],
                   changes: Sequence[C], batch: Sequence[Received]) -> Sequence[AlertEvent]:
        await self.write(conn, changes)
        return ()

    async def write(self, conn: asyncpg.Connection, changes: Sequence[C]) -> None:
        raise NotImplementedError


def no_key(event: AgencyEvent) -> None:
    """The key of a read model without state."""
    return None


@dataclass(frozen=True)
class ReadModel(Generic[K, S, C]):
    name: str
    folds: Mapping[str, Fold[S, C]]          # event type or family -> fold
    key: Callable[[AgencyEvent], K]
    store: Store[K, S, C]
    #: its tables (for a rebuild into a shadow schema, and its comparison with the live one)
    tables: tuple[str, ...] = ()
    _by_type: dict[str, Fold[S, C] | None] = field(default_factory=dict, compare=False,
                                                   repr=False)

    def fold_for(self, event: AgencyEvent) -> Fold[S, C] | None:
        """The fold for this event: its exact type first, else its family, else none."""
        event_type = event.event_type
        if event_type not in self._by_type:  # a few dozen event types: looked up once each
            self._by_type[event_type] = (self.folds.get(event_type)
                                         or self.folds.get(event.family))
        return self._by_type[event_type]

    def concerned(self, events: Sequence[AgencyEvent]) -> list[AgencyEvent]:
        return [e for e in events if self.fold_for(e) is not None]

    def fold_all(self, states: dict[K, S | None], events: Sequence[AgencyEvent]
                 ) -> list[C]:
        """Fold ``events`` in order into ``states`` (updated in place, key by key); returns
        the changes. Pure apart from that dict: tests run it without a database."""
        changes: list[C] = []
        for event in events:
            fold = self.fold_for(event)
            if fold is None:
                continue
            key = self.key(event)
            states[key], out = fold(states.get(key), event)
            changes.extend(out)
        return changes

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Received]
                    ) -> Sequence[AlertEvent]:
        events = self.concerned([r.event for r in batch])
        if not events:
            return ()
        keys = list(dict.fromkeys(self.key(e) for e in events))
        states: dict[K, S | None] = dict(await self.store.load(conn, keys, batch))
        changes = self.fold_all(states, events)
        touched = {k: states.get(k) for k in keys}
        return await self.store.save(conn, touched, changes, batch)


class Registry:
    """The read models the processor keeps, applied to every batch in this order."""

    def __init__(self, models: Sequence[ReadModel[Any, Any, Any]]) -> None:
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"read model names must be unique: {names}")
        self.models = tuple(models)
        self._generations: dict[str, int] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def __getitem__(self, name: str) -> ReadModel[Any, Any, Any]:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f"no read model named {name!r} (known: {', '.join(self.names)})")

    def only(self, names: Sequence[str]) -> Registry:
        """These read models only (in registry order): for a rebuild of some of them."""
        wanted = [self[n] for n in names]
        return Registry([m for m in self.models if m in wanted])

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the locks of stores that someone else writes too (the deadline timer)."""
        async with contextlib.AsyncExitStack() as stack:
            for model in self.models:
                if model.store.lock is not None:
                    await stack.enter_async_context(model.store.lock)
            yield

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Received],
                    in_step: Mapping[str, set[tuple[str, int]]] | None = None
                    ) -> list[AlertEvent]:
        """Every read model's effects for ``batch`` (the new events, in log order), inside
        the caller's transaction; returns the alert events to publish after commit.
        With ``in_step``, a read model sees only the events of the partitions it is in step
        on (a read model catching up from the archive sees none)."""
        alerts: list[AlertEvent] = []
        for model in self.models:
            part = batch
            if in_step is not None:
                pairs = in_step.get(model.name, set())
                part = [r for r in batch if (r.topic, r.partition) in pairs]
            if part:
                alerts.extend(await model.apply(conn, part))
        return alerts

    def committed(self) -> None:
        for model in self.models:
            model.store.committed()

    def rolled_back(self) -> None:
        for model in self.models:
            model.store.rolled_back()

    def follow(self, generations: Mapping[str, int]) -> None:
        """Drop the caches of read models whose tables were replaced since last seen."""
        for model in self.models:
            seen = self._generations.get(model.name)
            now = generations.get(model.name)
            if seen is not None and now is not None and now != seen:
                model.store.reset()
            if now is not None:
                self._generations[model.name] = now
