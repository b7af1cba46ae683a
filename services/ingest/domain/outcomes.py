"""What the gateway answers for one event, whichever endpoint carried it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.common.validation import Problem

Status = Literal["accepted", "already_accepted", "conflict", "in_progress", "forbidden",
                 "refused", "not_written"]

HTTP_STATUS: dict[str, int] = {
    "accepted": 202,          # the broker acknowledged the write (acks=all)
    "already_accepted": 200,  # a retry of an event accepted before: nothing new was written
    "conflict": 409,          # the id was accepted before with different content
    "in_progress": 409,       # another request is writing this event now: retry shortly
    "forbidden": 403,         # source.agency is not the credential's agency
    "refused": 422,           # the event breaks the contract; see problems
    "not_written": 503,       # the broker did not acknowledge in time: retry later
}


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    event_id: str | None = None
    partition: int | None = None
    offset: int | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.status]

    @property
    def written(self) -> bool:
        """True when the event is on the log (now or from an earlier request)."""
        return self.status in ("accepted", "already_accepted")

    @property
    def retryable(self) -> bool:
        """True when the same request, sent again later, can still succeed."""
        return self.status in ("not_written", "in_progress")


def refused(problems: list[Problem], event_id: str | None = None) -> Outcome:
    return Outcome("refused", event_id, problems=tuple(problems))


def forbidden(event_id: str) -> Outcome:
    return Outcome("forbidden", event_id, problems=(Problem(
        "source.agency", "must be the agency the credential belongs to", "forbidden_source"),))


def conflict(event_id: str) -> Outcome:
    return Outcome("conflict", event_id, problems=(Problem(
        "event_id", "was already accepted with different content", "conflict"),))


def not_written(event_id: str) -> Outcome:
    return Outcome("not_written", event_id, problems=(Problem(
        "body", "the event log did not acknowledge the write in time; nothing was recorded, "
                "retry with the same event id", "unavailable"),))


def in_progress(event_id: str) -> Outcome:
    return Outcome("in_progress", event_id, problems=(Problem(
        "event_id", "is being written by another request with the same content; retry "
                    "shortly with the same event id", "in_progress"),))
