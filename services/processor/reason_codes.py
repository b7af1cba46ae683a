"""Dead-letter reasons as short, stable codes for metric labels: pure, no I/O.

The ``dead_letter.reason`` column holds a sentence (it may name a field, a rule, an error
type, and for an unknown event type the type as the publisher wrote it). Metric labels
carry only the code: a fixed vocabulary, never anything a publisher wrote.
"""

from __future__ import annotations

from typing import Final

#: refusals ("refused: ..."), by a phrase of their sentence
_REFUSALS: Final = (
    ("already published a different event with this event id", "event_id_clash"),
    ("not an agency topic", "not_agency_topic"),
    ("not the agency that owns the topic", "wrong_agency"),
    ("not registered to publish", "agency_not_registered"),
    ("message key carries an identifier", "identifier_in_key"),
    ("seal", "seal_refused"),
)
#: everything else, by how the sentence starts
_PREFIXES: Final = (
    ("undecodable: empty message", "empty_message"),
    ("undecodable", "undecodable"),
    ("invalid", "invalid"),
    ("processing failed", "processing_failed"),
)
CODES: Final = frozenset({code for _, code in (*_REFUSALS, *_PREFIXES)}
                         | {"refused", "other"})


def reason_code(reason: str) -> str:
    """The code for a dead-letter reason; "other" for one this mapping does not know."""
    text = reason.strip().lower()
    if text.startswith("refused"):
        return next((code for phrase, code in _REFUSALS if phrase in text), "refused")
    return next((code for prefix, code in _PREFIXES if text.startswith(prefix)), "other")
