"""Request examples of the gateway's operations, by operation id and media type: events the
gateway accepts from the agency ``hmp-leeds`` (shown in the OpenAPI document; the fuzz test
sends them)."""

from __future__ import annotations

from typing import Any, Final

from services.ingest.entrypoints.body import CLOUDEVENT, CLOUDEVENT_BATCH, JSON

_SOURCE: Final = {"service_kind": "PRISON", "system": "NOMIS", "team": "omu",
                  "area": "E08000035"}
_PAYLOAD: Final = {"family": "transition", "transition_id": "rel-2026-0302-017",
                   "kind": "PRISON_RELEASE", "scheduled_for": "2026-03-09",
                   "accommodation_on_leaving": "NO_FIXED_ABODE"}
_IDENTIFIERS: Final = [{"scheme": "nhs_number", "value": "9434765919"},
                       {"scheme": "noms_number", "value": "A1234BC"}]

EVENT: Final[dict[str, Any]] = {
    "event_id": "5f0c6a1e-8a47-4c1b-9d3e-2b7f6c5d4e3a", "event_type": "transition.scheduled",
    "occurred_at": "2026-03-02T09:00:00Z", "recorded_at": "2026-03-02T09:00:04Z",
    "source": {"agency": "hmp-leeds", **_SOURCE}, "identifiers": _IDENTIFIERS,
    "payload": _PAYLOAD, "extra": {"prison": "LEI"}}

CLOUD_EVENT: Final[dict[str, Any]] = {
    "specversion": "1.0", "id": "0d5b1c7a-2e4f-4a8b-9c6d-3e2f1a0b9c8d",
    "source": "/agencies/hmp-leeds", "type": "transition.scheduled",
    "time": "2026-03-02T09:00:00Z", "subject": "noms_number:A1234BC",
    "datacontenttype": "application/json",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "data": {"source": _SOURCE, "identifiers": _IDENTIFIERS[:1], "payload": _PAYLOAD}}

REQUEST_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "publishEvent": {JSON: EVENT, CLOUDEVENT: CLOUD_EVENT},
    "publishEvents": {
        JSON: {"events": [EVENT]},
        CLOUDEVENT_BATCH: [{**CLOUD_EVENT, "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}]},
}
