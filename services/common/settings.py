"""One typed settings object per process, read from the environment and checked at start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Topics:
    agency_events: str
    alerts: str
    dead_letter: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(f"{prefix}.agency-events", f"{prefix}.alerts", f"{prefix}.dead-letter")

    def all(self) -> tuple[str, ...]:
        return (self.agency_events, self.alerts, self.dead_letter)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOINEDUP_", extra="ignore", populate_by_name=True)

    environment: Literal["development", "test", "production"] = "development"

    # Servers. When unset, `joinedup up` starts the embedded PostgreSQL and Tansu broker.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "JOINEDUP_DATABASE_URL"))
    kafka_bootstrap: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "JOINEDUP_KAFKA_BOOTSTRAP"))
    db_schema: str = "joinedup"
    data_dir: Path = Path(".joinedup")

    # Kafka
    topic_prefix: str = "joinedup"
    topic_partitions: int = 4
    topic_replication: int = 1
    # Apache Kafka supports the idempotent producer; the embedded Tansu build fails
    # InitProducerId, so it stays off unless a real cluster is configured.
    kafka_idempotence: bool = False
    processor_group: str = "joinedup-processor"
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000

    # Processor
    batch_max_events: int = 5_000
    batch_wait_ms: int = 50
    rule_pack: Path | None = None   # defaults to the packaged services/processor/rules/pack.toml
    clock: Literal["wall", "stream"] = "wall"
    deadline_grace_seconds: float = 0.0
    timer_interval_seconds: float = 1.0
    check_direct_publishers: bool = True

    # Ingest gateway
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_max_batch_events: int = 500
    api_max_body_bytes: int = 2 * 1024 * 1024
    api_future_tolerance_seconds: int = 300
    api_produce_timeout_seconds: float = 10.0
    # How long a post waits for another request writing the same event before answering 409
    # "in_progress" (with Retry-After).
    api_claim_wait_seconds: float = 2.0
    # How long a gateway trusts a token it has checked: revocation takes effect within this.
    api_credential_cache_seconds: float = 10.0
    # Deadlines for the gateway's database work. Its statements take milliseconds; one held
    # up by a locked table, a stalled server or an exhausted pool answers 503 (retry) within
    # about these bounds instead of holding the request and a pooled connection.
    api_statement_timeout_ms: int = Field(default=2_000, gt=0)
    api_lock_timeout_ms: int = Field(default=1_000, gt=0)
    api_pool_acquire_timeout_seconds: float = Field(default=2.0, gt=0)
    # Requests being handled at once; more are answered 503 at once rather than queued
    # behind the ten pooled connections and the broker. Probes and metrics are not counted.
    api_max_in_flight: int = Field(default=200, gt=0)
    # Request line and headers together, and the number of headers: over either is 431.
    api_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    api_max_headers: int = Field(default=100, gt=0)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError("must be a lower-case SQL identifier")
        return value

    @model_validator(mode="after")
    def _production_needs_real_servers(self) -> Settings:
        if self.environment == "production" and not (self.database_url and self.kafka_bootstrap):
            raise ValueError("production needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
        return self

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)

    def require_servers(self) -> tuple[str, str]:
        if not self.database_url or not self.kafka_bootstrap:
            raise RuntimeError(
                "no servers configured: run `joinedup up` or set DATABASE_URL and "
                "KAFKA_BOOTSTRAP_SERVERS")
        return self.database_url, self.kafka_bootstrap
