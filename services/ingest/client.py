"""A small client agencies can use to publish through the gateway.

Retries are idempotent: the event id is the gateway's idempotency key and it is set before the
first attempt, so a retry after a lost answer gets "already accepted", never a second copy.
Retried: 503 (honouring Retry-After), 502/504, 409 "in_progress" (another request is writing
the same event) and connection errors, with capped exponential backoff and jitter. Everything
else is answered at once (other 4xx are not going to change).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.common.events import AgencyEvent
from services.common.serde.agency_json import event_to_json

_RETRY_STATUS = frozenset({502, 503, 504})
_RETRY_ITEMS = frozenset({"not_written", "in_progress"})


@dataclass(frozen=True, slots=True)
class Published:
    """The gateway's answer for one event."""

    event_id: str
    status: str                      # accepted, already_accepted, refused, conflict, ...
    http_status: int
    partition: int | None = None
    offset: int | None = None
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return self.status in ("accepted", "already_accepted")


class GatewayUnavailable(Exception):
    """Still unavailable after every attempt; nothing was reported as written."""


class JoinedupClient:
    def __init__(self, base_url: str, token: str, *, attempts: int = 6, backoff: float = 0.5,
                 max_backoff: float = 30.0, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}"})
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff

    async def __aenter__(self) -> JoinedupClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def publish(self, event: AgencyEvent) -> Published:
        body = event_to_json(event)
        for attempt in range(self._attempts):
            response = await self._post("/v1/events", body)
            if response is not None and response.status_code not in _RETRY_STATUS:
                published = _published(event.event_id, response.status_code, response.json())
                if published.status not in _RETRY_ITEMS:
                    return published
            await self._wait(attempt, response)
        raise GatewayUnavailable(f"event {event.event_id} not written after "
                                 f"{self._attempts} attempts")

    async def publish_batch(self, events: Sequence[AgencyEvent]) -> list[Published]:
        """Publish in one request; items not written are resent (only those) until written."""
        results: dict[int, Published] = {}
        pending = list(range(len(events)))
        for attempt in range(self._attempts):
            response = await self._post(
                "/v1/events:batch", {"events": [event_to_json(events[i]) for i in pending]})
            if response is not None and response.headers.get("content-type", "").startswith(
                    "application/json"):
                for item in response.json()["items"]:
                    index = pending[item["index"]]
                    results[index] = _published(events[index].event_id, item["http_status"], item)
                pending = [i for i in pending if results[i].status in _RETRY_ITEMS]
            elif response is not None and response.status_code not in _RETRY_STATUS:
                response.raise_for_status()  # the batch as a whole was refused (401, 413...)
            if not pending:
                return [results[i] for i in range(len(events))]
            await self._wait(attempt, response)
        raise GatewayUnavailable(f"{len(pending)} of {len(events)} events not written after "
                                 f"{self._attempts} attempts")

    async def _post(self, path: str, body: Any) -> httpx.Response | None:
        try:
            return await self._http.post(path, json=body)
        except httpx.TransportError:  # connection refused or reset, timeouts
            return None

    async def _wait(self, attempt: int, response: httpx.Response | None) -> None:
        if attempt == self._attempts - 1:
            return
        delay = min(self._max_backoff, self._backoff * 2 ** attempt) * random.uniform(0.5, 1.0)
        retry_after = response.headers.get("retry-after", "") if response is not None else ""
        if retry_after.isdigit():
            delay = min(self._max_backoff, max(delay, float(retry_after)))
        await asyncio.sleep(delay)


def _published(event_id: str, http_status: int, body: dict[str, Any]) -> Published:
    if http_status in (200, 202) and "status" in body:
        return Published(event_id, body["status"], http_status, body.get("partition"),
                         body.get("offset"))
    given = body.get("status")
    codes = {p.get("code") for p in body.get("problems") or [] if isinstance(p, dict)}
    status = given if isinstance(given, str) else "in_progress" if "in_progress" in codes else {
        401: "unauthenticated", 403: "forbidden", 409: "conflict", 413: "too_large",
        415: "unsupported_media_type", 422: "refused"}.get(http_status, "refused")
    return Published(event_id, status, http_status, body.get("partition"), body.get("offset"),
                     list(body.get("problems") or []))
