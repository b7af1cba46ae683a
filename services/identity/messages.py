"""The identity changes that go on the person-events topic, as messages.

Only a merge or a separation changes what the read models hold; it goes to the topic keyed
by each live person it regroups (``index_store.regrouped_by``), so that person's partition
regroups them in order with their events. The other changes stay in the index's own log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.common.serde.headers import Headers, identity_event_headers
from services.identity.codec import IdentityEvent, encode_identity_event, kind_of
from services.identity.index_store import REGROUPING, regrouped_by


@dataclass(frozen=True, slots=True)
class IdentityMessage:
    key: bytes
    value: bytes
    headers: Headers


def regroup_messages(events: Iterable[IdentityEvent]) -> list[IdentityMessage]:
    messages = []
    for event in events:
        if isinstance(event.change, REGROUPING):
            value = encode_identity_event(event)
            headers = identity_event_headers(kind_of(event.change), event.change_id, event.at)
            messages += [IdentityMessage(person.encode(), value, headers)
                         for person in regrouped_by(event.change)]
    return messages
