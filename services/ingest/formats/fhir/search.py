"""The search parameters of ``GET /fhir/Task``, read (pure); and its keyset page cursor."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Final

from services.ingest.formats.fhir import systems as uri
from services.ingest.formats.fhir.task import Issue

DEFAULT_COUNT: Final = 50
MAX_COUNT: Final = 500
_PREFIXES: Final = ("gt", "ge", "lt", "le")


class SearchRefused(Exception):
    """A search parameter that cannot be read (answered 400)."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.expression)
        self.issue = issue


def organization(name: str, value: str | None) -> str | None:
    """The agency id of an ``Organization/<agency id>`` parameter."""
    if value is None:
        return None
    agency = value.removeprefix(uri.ORGANIZATION)
    if not agency or "/" in agency:
        raise SearchRefused(Issue(name, "must be Organization/<agency id>", "value"))
    return agency


def bounds(values: list[str]) -> list[datetime | None]:
    """_lastUpdated values as the (gt, ge, lt, le) bounds of the query."""
    found: dict[str, datetime | None] = dict.fromkeys(_PREFIXES)
    for value in values:
        # an unencoded "+01:00" in a query string arrives as " 01:00"
        prefix, text = value[:2], value[2:].replace(" ", "+")
        try:
            instant = datetime.fromisoformat(text) if prefix in _PREFIXES else None
        except ValueError:
            instant = None
        if instant is None:
            raise SearchRefused(Issue("_lastUpdated", "must be gt, ge, lt or le followed by "
                                      "an instant or a date", "value"))
        found[prefix] = _aware(instant)
    return list(found.values())


def page_size(value: str | None) -> int:
    """``_count``: the page size."""
    if value is None:
        return DEFAULT_COUNT
    if not value.isdigit() or not 1 <= int(value) <= MAX_COUNT:
        raise SearchRefused(Issue("_count", f"must be a whole number 1-{MAX_COUNT}", "value"))
    return int(value)


def encode(last_updated: datetime, key: str) -> str:
    """The ``_page`` after the row (last_updated, referral id): opaque to clients."""
    text = json.dumps([last_updated.isoformat(), key])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor(page: str | None) -> tuple[datetime | None, str | None]:
    """(last_updated, referral_id) of the last row of the previous page."""
    if page is None:
        return None, None
    try:
        when, key = json.loads(base64.urlsafe_b64decode(page + "=" * (-len(page) % 4)))
        return _aware(datetime.fromisoformat(when)), str(key)
    except (ValueError, TypeError, binascii.Error):
        raise SearchRefused(Issue("_page", "is not a page this server gave", "value")
                            ) from None


def _aware(instant: datetime) -> datetime:
    """A date or an instant without an offset is UTC."""
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
