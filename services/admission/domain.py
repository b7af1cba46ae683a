"""Whether an event read from an agency's topic may be admitted: pure, no I/O."""

from __future__ import annotations

from services.common.events import AgencyEvent
from services.common.validation import message_refusal


def refusal(topic_agency: str | None, event: AgencyEvent, key: bytes | None,
            registered: bool) -> str | None:
    """The reason to refuse `event` (read from `topic_agency`'s topic), or None to admit.

    Reasons name fields and rules, never values (values can be personal data)."""
    if topic_agency is None:
        return "refused: not an agency topic"
    if event.source.agency != topic_agency:
        return "refused: source.agency is not the agency that owns the topic it came on"
    if not registered:
        return "refused: the agency is not registered to publish (or is disabled)"
    return message_refusal(event, key)
