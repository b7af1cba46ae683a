"""Prometheus metrics for the gateway, in a registry per app (no process-wide globals).

Labels are the agency id (an organisation, not a person) and fixed reason codes; never an
identifier, event id or anything else from an event body.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.ingest.domain.outcomes import Outcome

UNAUTHENTICATED = "unauthenticated"  # the agency label before a token was accepted


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "joinedup_ingest_events", "Events answered, by agency and outcome",
            ["agency", "outcome"], registry=self.registry)
        self.refusals = Counter(
            "joinedup_ingest_refusals", "Refusals, by agency and reason code",
            ["agency", "reason"], registry=self.registry)
        self.latency = Histogram(
            "joinedup_ingest_request_seconds", "Time to answer a publish request",
            ["endpoint"], registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

    def outcomes(self, agency: str, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.events.labels(agency, outcome.status).inc()
            for code in {p.code for p in outcome.problems}:
                self.refusals.labels(agency, code).inc()

    def refused_request(self, agency: str, codes: Iterable[str]) -> None:
        for code in set(codes):
            self.refusals.labels(agency, code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
