"""The FHIR Task status table: which referral action each Task status is.

joinedup's referral states are the Gravity Project's closed loop, in the Task vocabulary
(services/processor/domain/referrals.py): requested, received, accepted, rejected,
cancelled, completed. Task statuses the loop has no state of their own for are the state
they stand in: ready, in-progress and on-hold are all an accepted referral being worked
(the detail is kept: the Task as posted is in the event); failed and completed both close
it (the outcome says which); entered-in-error withdraws it (it should never have existed).
A draft is not a referral yet: it is refused, nothing is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: Task.status -> the referral action (event type ``referral.<action>``); None: refused.
ACTION_BY_STATUS: Final[Mapping[str, str | None]] = MappingProxyType({
    "draft": None,
    "requested": "made",
    "received": "acknowledged",
    "accepted": "accepted",
    "rejected": "declined",
    "ready": "accepted",
    "in-progress": "accepted",
    "on-hold": "accepted",
    "cancelled": "withdrawn",
    "failed": "closed",
    "completed": "closed",
    "entered-in-error": "withdrawn",
})

#: Task.status -> Referral.outcome, for the statuses that close a referral.
OUTCOME_BY_STATUS: Final[Mapping[str, str]] = MappingProxyType({
    "completed": "completed", "failed": "failed"})

#: The forward edges of the FHIR R4 Task state machine
#: (https://hl7.org/fhir/R4/task.html#statemachine). cancelled and entered-in-error can
#: follow any state that is not terminal (entered-in-error any state at all); they are
#: left out here and checked on their own in the tests.
TASK_TRANSITIONS: Final[frozenset[tuple[str, str]]] = frozenset({
    ("draft", "requested"), ("draft", "ready"), ("requested", "received"),
    ("requested", "accepted"),
    ("requested", "rejected"), ("received", "accepted"), ("received", "rejected"),
    ("accepted", "ready"), ("accepted", "in-progress"), ("ready", "in-progress"),
    ("in-progress", "on-hold"), ("on-hold", "in-progress"), ("in-progress", "completed"),
    ("in-progress", "failed"), ("ready", "completed"), ("ready", "failed"),
    ("in-progress", "ready"),   # work stopped, to be picked up again
})

#: States with no way out but entered-in-error.
TERMINAL: Final = frozenset({"rejected", "cancelled", "failed", "completed",
                             "entered-in-error"})


def referral_action(status: str) -> str | None:
    """The referral action of a Task status; None for a draft. KeyError: not a status."""
    return ACTION_BY_STATUS[status]
