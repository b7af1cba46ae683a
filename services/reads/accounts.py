"""Readers: teams, practitioners' accounts and the tokens they sign in for.

Passwords are kept only as argon2id hashes (argon2-cffi's defaults, rehashed when they
change). Ten failed sign-ins in a row lock an account for fifteen minutes. A sign-in gives a
bearer token (``jdr_`` + 32 random bytes; only its SHA-256 is stored, as for agency tokens)
that works until it expires or the account is disabled. Agency systems read with their
agency credentials (``services/ingest/auth.py``) and read as their agency.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from projections.queries import ingest as ingest_sql
from projections.queries import reads as q
from services.common.settings import AGENCY_ID
from services.ingest.auth import token_hash
from services.reads.domain.visibility import AGENCY_SYSTEM, ROLES, Reader

TOKEN_PREFIX: Final = "jdr_"
MAX_FAILED_SIGN_INS: Final = 10
LOCKED_FOR: Final = timedelta(minutes=15)
USERNAME: Final = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,62}[a-z0-9]$")
TEAM_SLUG: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MIN_PASSWORD: Final = 12

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a sign-in takes as long either way.
_UNKNOWN_USER_HASH: Final = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Practitioner:
    practitioner_id: str
    username: str
    agency_id: str
    team_id: str | None
    role: str

    @property
    def reader(self) -> Reader:
        return Reader(self.agency_id, self.team_id, self.practitioner_id, self.role)


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    expires_at: datetime
    practitioner: Practitioner


def team_id(agency_id: str, slug: str) -> str:
    return f"{agency_id}/{slug}"


def agency_reader(agency_id: str) -> Reader:
    """How an agency's own system reads: as its agency, with no team and no grants."""
    return Reader(agency_id, role=AGENCY_SYSTEM)


def _practitioner(row: asyncpg.Record) -> Practitioner:
    return Practitioner(row["practitioner_id"], row["username"], row["agency_id"],
                        row["team_id"], row["role"])


async def create_team(conn: asyncpg.Connection, agency_id: str, slug: str, name: str) -> str:
    if not TEAM_SLUG.match(slug):
        raise AccountError("a team id is 1-63 lower-case letters, digits and inner hyphens")
    if not name.strip():
        raise AccountError("a team has a name people know it by")
    if not await conn.fetchval(ingest_sql.AGENCY_EXISTS, agency_id):
        raise AccountError(f"no agency {agency_id!r}; register it first")
    return str(await conn.fetchval(q.UPSERT_TEAM, team_id(agency_id, slug), agency_id,
                                   name.strip()))


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"a password has at least {MIN_PASSWORD} characters"
    if len(password) > 1024:
        return "a password has at most 1024 characters"
    return None


async def create_practitioner(conn: asyncpg.Connection, username: str, agency_id: str,
                              team: str | None, role: str, password: str) -> Practitioner:
    if not USERNAME.match(username):
        raise AccountError("a username is 3-64 lower-case letters, digits and . _ @ -")
    if role not in ROLES:
        raise AccountError(f"a role is one of {', '.join(ROLES)}")
    if not AGENCY_ID.match(agency_id):
        raise AccountError("not an agency id")
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    if team is not None:
        found = await conn.fetchrow(q.TEAM, team)
        if found is None or found["agency_id"] != agency_id:
            raise AccountError(f"no team {team!r} in agency {agency_id!r}")
    practitioner_id = str(uuid.uuid4())
    try:
        await conn.execute(q.INSERT_PRACTITIONER, uuid.UUID(practitioner_id), username,
                           agency_id, team, role, _hasher.hash(password))
    except asyncpg.UniqueViolationError:
        raise AccountError(f"the username {username!r} is taken") from None
    except asyncpg.ForeignKeyViolationError:
        raise AccountError(f"no agency {agency_id!r}; register it first") from None
    return Practitioner(practitioner_id, username, agency_id, team, role)


async def set_password(conn: asyncpg.Connection, username: str, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    if await conn.fetchval(q.SET_PASSWORD, username, _hasher.hash(password)) is None:
        raise AccountError(f"no practitioner {username!r}")


async def disable_practitioner(conn: asyncpg.Connection, username: str) -> None:
    """The account stops working at once: sign-in refused, every token dead."""
    async with conn.transaction():
        found = await conn.fetchval(q.DISABLE_PRACTITIONER, username)
        if found is None:
            raise AccountError(f"no enabled practitioner {username!r}")
        await conn.execute(q.REVOKE_TOKENS_OF, found)


async def sign_in(conn: asyncpg.Connection, username: str, password: str,
                  lifetime: timedelta) -> SignedIn | None:
    """A token for the account, or None (unknown user, wrong password, disabled, locked:
    one answer, so a caller cannot tell which)."""
    row = await conn.fetchrow(q.PRACTITIONER_BY_USERNAME, username)
    if row is None:
        _verify(_UNKNOWN_USER_HASH, password)
        return None
    if row["disabled_at"] is not None:
        _verify(_UNKNOWN_USER_HASH, password)
        return None
    locked_until = row["locked_until"]
    if locked_until is not None and locked_until > await conn.fetchval("SELECT now()"):
        _verify(_UNKNOWN_USER_HASH, password)
        return None
    if not _verify(row["password_hash"], password):
        await conn.execute(q.SIGN_IN_FAILED, uuid.UUID(row["practitioner_id"]),
                           MAX_FAILED_SIGN_INS, LOCKED_FOR)
        return None
    current_hash = row["password_hash"]
    if _hasher.check_needs_rehash(current_hash):
        current_hash = _hasher.hash(password)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        await conn.execute(q.SIGNED_IN, row["practitioner_id"], current_hash)
        expires_at = await conn.fetchval(q.INSERT_TOKEN, token_hash(token),
                                         row["practitioner_id"], lifetime)
    return SignedIn(token, expires_at, _practitioner(row))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def practitioner_for(conn: asyncpg.Connection, token: str) -> Practitioner | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = await conn.fetchrow(q.READER_BY_TOKEN, token_hash(token))
    return None if row is None else _practitioner(row)


async def sign_out(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute(q.REVOKE_TOKEN, token_hash(token))


async def find_practitioner(conn: asyncpg.Connection, username: str) -> Practitioner | None:
    row = await conn.fetchrow(q.PRACTITIONER_BY_USERNAME, username)
    return None if row is None or row["disabled_at"] is not None else _practitioner(row)


async def practitioner_by_id(conn: asyncpg.Connection, practitioner_id: str
                             ) -> Practitioner | None:
    try:
        key = uuid.UUID(practitioner_id)
    except ValueError:
        return None
    row = await conn.fetchrow(q.PRACTITIONER_BY_ID, key)
    return None if row is None or row["disabled_at"] is not None else _practitioner(row)
