"""The HMPPS intake's metrics, on the gateway's registry. Labels are agency ids, outcome
words, reason codes and HMPPS event types (only ones shaped like an event type; anything
else is counted as "malformed"): never an identifier or anything else from a message body."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class HmppsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "joinedup_hmpps_events", "HMPPS domain events taken, by agency and outcome "
            "(accepted, copy, repeat, parked)", ["agency", "outcome"], registry=registry)
        self.unmapped = Counter(
            "joinedup_hmpps_unmapped", "HMPPS domain events of a type the mapping does not "
            "know, parked on the dead-letter topic", ["event_type"], registry=registry)
        self.deliveries = Counter(
            "joinedup_hmpps_sns_deliveries", "SNS deliveries answered, by message type and "
            "outcome", ["type", "outcome"], registry=registry)
        self.unverified = Counter(
            "joinedup_hmpps_sns_unverified", "SNS deliveries whose signature was not "
            "verified: refused (403) or the signing certificate not fetched (502), by reason "
            "code", ["reason"], registry=registry)
