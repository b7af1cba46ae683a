"""What each event family changes in the read models: one handler per family, in a registry.

Handlers are pure: they read the state loaded for the batch (`PersonView`) and record what
must be written (`Changes`). The adapter loads and writes whole batches; handlers see one
event at a time, in log order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from services.common.events import AgencyEvent, Identifier, Referral
from services.processor.domain.caseload import CaseloadEntry, apply_caseload_event
from services.processor.domain.referrals import ReferralState, StatusChange, apply_referral_event
from services.processor.domain.timeline import TimelineEntry, timeline_entry


@dataclass
class PersonView:
    """The current state, loaded once per batch, that handlers fold events into."""

    referrals: dict[str, ReferralState] = field(default_factory=dict)
    caseload: dict[str, dict[str, CaseloadEntry]] = field(default_factory=dict)


@dataclass
class Changes:
    timeline: list[TimelineEntry] = field(default_factory=list)
    identifiers: dict[Identifier, tuple[str, object]] = field(default_factory=dict)
    referrals: dict[str, ReferralState] = field(default_factory=dict)
    referral_history: list[StatusChange] = field(default_factory=list)
    caseload: dict[tuple[str, str], CaseloadEntry] = field(default_factory=dict)


Handler = Callable[[AgencyEvent, PersonView, Changes], None]
HANDLERS: dict[str, list[Handler]] = {}


def handles(*families: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for family in families:
            HANDLERS.setdefault(family, []).append(handler)
        return handler
    return register


@handles("referral", "transition", "discharge", "contact")
def record_on_timeline(event: AgencyEvent, view: PersonView, changes: Changes) -> None:
    changes.timeline.append(timeline_entry(event))
    for identifier in event.identifiers:
        changes.identifiers.setdefault(identifier, (event.person_key, event.occurred_at))


@handles("referral")
def track_referral(event: AgencyEvent, view: PersonView, changes: Changes) -> None:
    assert isinstance(event.payload, Referral)
    referral_id = event.payload.referral_id
    state, change = apply_referral_event(view.referrals.get(referral_id), event)
    view.referrals[referral_id] = changes.referrals[referral_id] = state
    changes.referral_history.append(change)


@handles("referral", "transition", "discharge", "contact")
def update_caseload(event: AgencyEvent, view: PersonView, changes: Changes) -> None:
    person = view.caseload.setdefault(event.person_key, {})
    for entry in apply_caseload_event(person, event):
        changes.caseload[(entry.person_key, entry.agency)] = entry


def fold(events: Iterable[AgencyEvent], view: PersonView) -> Changes:
    changes = Changes()
    for event in events:
        for handler in HANDLERS[event.family]:
            handler(event, view, changes)
    return changes
