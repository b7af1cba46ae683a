"""The access audit: who read or acted on a person's records, when, what and why. Pure.

Every read of a person's data and every action on it is one audit record, written in the
transaction that read or recorded, so nothing is shown that is not audited. A record names
the person by their opaque id and holds no identifier values: a search records the scheme
it searched by, never the value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from services.reads.domain.views import Shown
from services.reads.domain.visibility import AGENCY_SYSTEM, OWN_AGENCY, Reader

#: Why someone reads (NHS and social-care purposes of processing, in brief).
PURPOSES: Final = (
    "direct_care", "care_coordination", "safeguarding", "duty_alert", "investigation",
    "subject_access", "audit",
)
CALLER_KINDS: Final = ("practitioner", AGENCY_SYSTEM, "operator")
OUTCOMES: Final = ("ok", "refused", "not_found")


@dataclass(frozen=True, slots=True)
class Caller:
    """The reader and how they came: through the API or the CLI; an operator names
    themselves (``--by``)."""
    reader: Reader
    kind: str
    channel: str = "api"
    operator: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in CALLER_KINDS:
            raise ValueError(f"a caller is one of {', '.join(CALLER_KINDS)}")

    @classmethod
    def for_operator(cls, name: str) -> Caller:
        """An operator at the command line (no agency: they read as nobody's reader and
        are named by their own ``--by``)."""
        return cls(Reader(""), "operator", "cli", name)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    caller: Caller
    action: str
    person_id: str | None
    purpose: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)


def read_record(caller: Caller, action: str, person_id: str, purpose: str,
                shown: Iterable[Shown], extra: dict[str, Any] | None = None) -> AuditRecord:
    """A read: how many items, how many withheld, on what grounds each was shown, and
    which items were shown to the reader from *another* agency's records (the shares a
    subject-access report lists)."""
    items = list(shown)
    because = Counter(s.because for s in items)
    shared = [s.item_id for s in items if not s.confidential and s.because != OWN_AGENCY]
    detail: dict[str, Any] = {
        "channel": caller.channel, "items": len(items),
        "withheld": sum(1 for s in items if s.confidential),
        "because": dict(sorted(because.items())), "shared": shared, **(extra or {})}
    return AuditRecord(caller, action, person_id, purpose, "ok", detail)


def action_record(caller: Caller, action: str, person_id: str | None, purpose: str,
                  outcome: str, detail: dict[str, Any] | None = None) -> AuditRecord:
    return AuditRecord(caller, action, person_id, purpose, outcome,
                       {"channel": caller.channel, **(detail or {})})
