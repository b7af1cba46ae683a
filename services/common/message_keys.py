"""Kafka message keys that are not personal data.

An agency topic keeps one person's events from that agency in order by keying them all
alike, but the key must not be an identifier: topic keys are printed by tools, logged by
libraries and kept as long as the log. The gateway (and the simulator) key by a keyed hash
of the strongest identifier: HMAC-SHA256 under the deployment's secret, so the key is stable
per person and agency topic, yet nobody without the secret can recompute it from an NHS
number (a plain hash of a 10-digit number is reversed by trying them all). After the identity
step the person-events topic is keyed by the opaque person id instead.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from services.common.events import AgencyEvent, Identifier


class SubjectKeys:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the message-key secret must be at least 16 bytes")
        self._secret = secret
        self.key = functools.lru_cache(maxsize=1 << 16)(self._key)

    def _key(self, identifier: Identifier) -> bytes:
        digest = hmac.new(self._secret, f"{identifier.scheme}:{identifier.value}".encode(),
                          hashlib.sha256).hexdigest()
        return digest[:32].encode()

    def of(self, event: AgencyEvent) -> bytes:
        """The agency-topic key of this event's person."""
        return self.key(event.strongest)


def carries_identifier(event: AgencyEvent, key: bytes | None) -> bool:
    """Whether a message key holds any of its event's identifier values."""
    return key is not None and any(i.value.encode() in key for i in event.identifiers
                                   if i.value)
