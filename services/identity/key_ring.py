"""The key ring: one data key per person id, the key that seals that person's fields
(``services/common/serde/sealing.py``). Destroying a person's keys is erasure: every copy of
their sealed fields, in the archive, the topics and the identity log, becomes unreadable.

Keys are stored wrapped under the deployment's key-encryption key (``JOINEDUP_SEALING_KEY``),
so a copy of the database alone opens nothing. A key is made when the identity step first
meets a person (in its transaction). Readers lock the rows they use ``FOR SHARE`` for their
transaction (``keys``): an erasure waits for them to commit, and whoever comes after it
finds the key gone; unwrapped keys are cached in memory, the rows are always asked. The
identity step itself holds the identity lock, which an erasure takes too, and learns of an
erasure from the identity log (``forget``): it uses its cache without asking
(``keys_of_people``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg
from cachetools import LRUCache

from projections.queries import sealing as sql
from services.common.serde.sealing import new_key, person_of_ref, person_ref, unwrap, wrap

#: A person ref whose key is destroyed maps to None.
Keys = dict[str, bytes | None]


class KeyRing:
    def __init__(self, key_encryption_key: bytes, cache_size: int = 200_000) -> None:
        self._kek = key_encryption_key
        self._cache: LRUCache[str, bytes] = LRUCache(maxsize=cache_size)

    async def create(self, conn: asyncpg.Connection, person_ids: Sequence[str]) -> None:
        """A key for each person id that has none (in the caller's transaction)."""
        if not person_ids:
            return
        made = {person: new_key() for person in person_ids}
        wrapped = [wrap(made[person], self._kek, person) for person in person_ids]
        for row in await conn.fetch(sql.CREATE_KEYS, list(person_ids), wrapped):
            # cached once stored (a rolled-back transaction's person id is never used again)
            self._cache[row["person_id"]] = made[row["person_id"]]

    def forget(self, person_ids: Iterable[str]) -> None:
        """Drop cached keys of people erased (the identity log says so)."""
        for person in person_ids:
            self._cache.pop(person, None)

    async def keys(self, conn: asyncpg.Connection, refs: Iterable[str], *,
                   hold: bool = True) -> Keys:
        """The keys these person refs name; a destroyed key is None; a person with no key is
        left out. ``hold``: their rows held FOR SHARE to the end of the caller's transaction,
        for a caller that writes what it opens (a read model); a reader that only shows it
        needs no lock (what it read was readable when it read it)."""
        wanted = sorted({p for r in refs if (p := person_of_ref(r)) is not None})
        if not wanted:
            return {}
        found: Keys = {}
        for row in await conn.fetch(sql.KEYS_FOR_SHARE if hold else sql.KEYS, wanted):
            person = row["person_id"]
            if row["wrapped"] is None:
                self._cache.pop(person, None)
                found[person_ref(person)] = None
                continue
            key = self._cache.get(person)
            if key is None:
                key = unwrap(bytes(row["wrapped"]), self._kek, person)
                self._cache[person] = key
            found[person_ref(person)] = key
        return found

    async def keys_of_people(self, conn: asyncpg.Connection, person_ids: Sequence[str]
                             ) -> dict[str, bytes]:
        """Each person's key, for sealing, made now for a person who has none yet. For a
        caller holding the identity lock (no erasure can run meanwhile, and the identity
        log told it of any before): cached keys are used as they are, only the others are
        asked. A destroyed key is an error (the identity step no longer knows an erased
        person, so nothing more is sealed for them)."""
        out = {p: key for p in person_ids if (key := self._cache.get(p)) is not None}
        asked = [p for p in dict.fromkeys(person_ids) if p not in out]
        if asked:
            found = await self.keys(conn, [person_ref(p) for p in asked])
            missing = [p for p in asked if person_ref(p) not in found]
            if missing:
                await self.create(conn, missing)
                found.update(await self.keys(conn, [person_ref(p) for p in missing]))
            for person in asked:
                key = found.get(person_ref(person))
                if key is None:
                    raise LookupError("a person whose data key is destroyed")
                out[person] = key
        return out

    async def destroy(self, conn: asyncpg.Connection, person_ids: Sequence[str], by: str,
                      reason: str) -> int:
        """Erase: the keys are gone once the caller's transaction commits (it waits for
        readers holding them). Returns how many were destroyed."""
        for person in person_ids:
            self._cache.pop(person, None)
        return len(await conn.fetch(sql.DESTROY_KEYS, list(person_ids), by, reason))
