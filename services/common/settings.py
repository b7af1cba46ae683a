"""One typed settings object per process, read from the environment and checked at start."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.message_keys import SubjectKeys

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Agency ids name Kafka topics and principals: lower-case letters, digits and inner hyphens.
AGENCY_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
#: For development and tests only (production refuses them).
_DEVELOPMENT_KEY_SECRET = "joinedup-development-message-keys"
_DEVELOPMENT_SEALING_KEY = base64.b64encode(b"joinedup-development-sealing-key").decode()


@dataclass(frozen=True)
class Topics:
    """The topic names, from one prefix.

    - ``<prefix>.agency-events.<agency>``: one per agency, written only by that agency's
      principal (directly, or through the gateway, which writes as the agency it
      authenticated). The topic, not a field in the payload, says who published.
    - ``<prefix>.person-events``: what admission let through, keyed by person, in the one
      order every read model folds (written only by joinedup's own principal).
    - ``<prefix>.alerts`` and ``<prefix>.dead-letter``.
    - ``<prefix>.governance``: consent, agreements, coordination episodes, grants and
      disclosures, as recorded (keyed by person id, or agreement id).
    """

    prefix: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(prefix)

    @property
    def person_events(self) -> str:
        return f"{self.prefix}.person-events"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def governance(self) -> str:
        return f"{self.prefix}.governance"

    def agency(self, agency_id: str) -> str:
        if not AGENCY_ID.match(agency_id):
            raise ValueError("an agency id is 1-63 lower-case letters, digits and inner hyphens")
        return f"{self.prefix}.agency-events.{agency_id}"

    @property
    def agency_pattern(self) -> str:
        """A regular expression matching every agency topic (a pattern subscription)."""
        return "^" + re.escape(f"{self.prefix}.agency-events.") + "[a-z0-9-]+$"

    def agency_of(self, topic: str) -> str | None:
        """The agency whose topic this is, or None."""
        stem = f"{self.prefix}.agency-events."
        agency = topic[len(stem):] if topic.startswith(stem) else ""
        return agency if AGENCY_ID.match(agency) else None

    def all(self) -> tuple[str, ...]:
        """The topics every deployment has (agency topics come with their agencies)."""
        return (self.person_events, self.alerts, self.dead_letter, self.governance)


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
    # The worker's statements (a batch's are a few milliseconds to a few seconds).
    db_statement_timeout_ms: int = 60_000
    data_dir: Path = Path(".joinedup")

    # Kafka
    topic_prefix: str = "joinedup"
    # Keys agency-topic messages by a keyed hash of the person's strongest identifier (see
    # services/common/message_keys.py). Every writer of one deployment must share it;
    # production must set its own.
    message_key_secret: SecretStr = SecretStr(_DEVELOPMENT_KEY_SECRET)
    # The key-encryption key (base64 of 32 bytes) that wraps every person's data key (see
    # services/identity/key_ring.py). Losing it loses every sealed field; production must
    # set its own and keep it outside the database (a secrets manager or KMS).
    sealing_key: SecretStr = SecretStr(_DEVELOPMENT_SEALING_KEY)
    topic_partitions: int = 4
    topic_replication: int = 1
    # Apache Kafka supports the idempotent producer; the embedded Tansu build fails
    # InitProducerId, so it stays off unless a real cluster is configured.
    kafka_idempotence: bool = False
    processor_group: str = "joinedup-processor"
    # Admission's consumer group and tracking name; by default the processor group's, plus
    # "-admission" (so isolating a processor group isolates its admission too).
    admission_group: str = ""
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    # How soon a pattern subscription sees a new topic (a newly registered agency's).
    kafka_metadata_max_age_ms: int = 30_000

    # --- Kafka client security (docs/deploy-compose.md): every producer,
    # consumer and admin client joinedup builds, Faust's included, gets these through
    # services/common/kafka.py. PLAINTEXT suits the embedded broker; a shared cluster wants
    # SASL_SSL (SCRAM-SHA-512) or SSL with a client certificate.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT")
    kafka_ssl_cafile: Path | None = None     # None: the system's trusted CAs
    kafka_ssl_certfile: Path | None = None   # a client certificate (mutual TLS), PEM
    kafka_ssl_keyfile: Path | None = None    # its private key, PEM
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    # OAUTHBEARER reads a bearer token from kafka_sasl_oauth_token_file at each login (a
    # projected service-account token, or one a sidecar refreshes).
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER"] = (
        "SCRAM-SHA-512")
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_sasl_oauth_token_file: Path | None = None

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        # RuntimeError, not ValueError: pydantic passes it through unwrapped, so the command
        # line prints this one line instead of "1 validation error for Settings".
        protocol, mechanism = self.kafka_security_protocol, self.kafka_sasl_mechanism
        if protocol.startswith("SASL_") and mechanism == "OAUTHBEARER":
            if self.kafka_sasl_oauth_token_file is None:
                raise RuntimeError(f"JOINEDUP_KAFKA_SECURITY_PROTOCOL={protocol} with "
                                   "OAUTHBEARER needs JOINEDUP_KAFKA_SASL_OAUTH_TOKEN_FILE")
        elif protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()):
            raise RuntimeError(f"JOINEDUP_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                               "JOINEDUP_KAFKA_SASL_USERNAME and JOINEDUP_KAFKA_SASL_PASSWORD")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise RuntimeError("a Kafka client certificate needs both "
                               "JOINEDUP_KAFKA_SSL_CERTFILE and JOINEDUP_KAFKA_SSL_KEYFILE")
        return self

    # Faults: servers that are down are retried with capped exponential backoff.
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    # A replaced log (a broker restarted on memory storage, a topic created again): replay the
    # new log from its start (the archive recognises events applied before by their ids), or
    # refuse to apply it and keep the partition paused until an operator decides.
    on_log_reset: Literal["replay", "refuse"] = "replay"

    # --- Kafka wire format and schema registry (issue 18; docs/publishing-to-kafka.md).
    # How joinedup frames the Avro it writes: single-object encoding (C3 01 + fingerprint), or
    # the Confluent wire format (0 + 4-byte schema id) standard Kafka tools decode with a
    # schema registry. Every process reads both, so switching needs no downtime.
    kafka_wire_format: Literal["single-object", "confluent"] = "single-object"
    # An external Confluent-compatible registry: joinedup's schemas are registered there (at
    # the process's first Confluent message) and the ids it gives are written. Unset: the
    # stable ids the gateway serves read-only under /schema-registry.
    schema_registry_url: str | None = None

    # Processor
    batch_max_events: int = 5_000
    batch_wait_ms: int = 50
    # How long the broker may hold a fetch that finds nothing new. The local broker (Tansu)
    # holds it that long even when records arrive meanwhile (it does not wake a waiting
    # fetch), so with aiokafka's 500 ms each hop of a quiet stream added up to half a second
    # (admission, then the processor: the duty teams' alert latency doubled it).
    kafka_fetch_max_wait_ms: int = Field(default=50, ge=1, le=500)
    rule_pack: Path | None = None   # defaults to the packaged services/processor/rules/pack.toml
    clock: Literal["wall", "stream"] = "wall"
    # Publishing grace (docs/backfill.md): the live deadline timer judges a deadline this long
    # after it, so an event recorded on time but delivered up to this late meets it and no
    # alert is raised (the gateway tolerates 5 minutes of clock skew; retries add minutes).
    deadline_grace_seconds: float = Field(default=600.0, ge=0)
    timer_interval_seconds: float = 1.0
    # The worker's /healthz, /readyz and /metrics (0: not served).
    worker_health_host: str = "127.0.0.1"
    worker_health_port: int = 8081

    # --- processor metrics and the consumer watchdog (docs/observability.md)
    # How often the gauges read from PostgreSQL (open expectations, alerts, dead letters) are
    # refreshed: scrapes read the last values, so scrapes never query the database.
    metrics_refresh_seconds: float = Field(default=15.0, gt=0)
    # How often each tracked consumer measures its lag (true end of log - stored position).
    watchdog_interval_seconds: float = Field(default=10.0, gt=0)
    # A partition whose stored position has not moved for this long while its lag is above
    # zero is stalled: it is positioned again, and if still stalled after as long again,
    # the consumer is restarted.
    watchdog_stall_seconds: float = Field(default=120.0, gt=0)
    # `joinedup rebuild` serves its progress on this port for Prometheus (0: not served).
    rebuild_metrics_port: int = Field(default=0, ge=0, le=65535)

    # --- rule what-if over the API (docs/what-if.md): run in the request only while the
    # archive holds at most this many events (about 10 s of folding); above, use the CLI.
    what_if_api_max_events: int = Field(default=100_000, ge=0)

    # Ingest gateway
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_max_batch_events: int = 500
    api_max_body_bytes: int = 2 * 1024 * 1024
    api_future_tolerance_seconds: int = 300
    api_produce_timeout_seconds: float = 10.0
    # Answer 2xx only for an event whose topic the broker lists after the acknowledgement, and
    # 200 "already accepted" only for a receipt whose record is read back (an acknowledgement
    # is not always a record: Tansu acknowledges writes to a topic it lost in a restart).
    # Apache Kafka with acks=all and min.insync.replicas=2 hardly needs it; it costs one
    # metadata request per round of requests. See services/ingest/adapters/log_check.py.
    api_confirm_writes: bool = True
    api_confirm_timeout_seconds: float = 2.0
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

    # HMPPS domain events (issue 18 item 1; docs/formats-hmpps.md): the gateway's intake that
    # maps <prefix>.hmpps-domain-events.<agency> onto agency events (off: the SNS endpoint
    # still writes that topic, another gateway maps it), its consumer group (default
    # <processor_group>-hmpps) and the mapping file (default: the packaged mapping.toml).
    hmpps_intake: bool = True
    hmpps_group: str = ""
    hmpps_mapping: Path | None = None
    # Verify every SNS delivery's signature against AWS's signing certificate (fetched from
    # the SigningCertURL, only if it is SNS's). Turn it off only for a delivery path that has
    # verified the signature already (a bridge that checks it before posting): off, anyone
    # holding the agency's token can post deliveries SNS never sent.
    hmpps_verify_signatures: bool = True

    # Read API (a person's records for practitioners and agency systems; services/reads)
    reads_host: str = "127.0.0.1"
    reads_port: int = 8082
    # How long a practitioner's sign-in lasts (a working day by default).
    reads_token_lifetime_seconds: int = Field(default=8 * 3600, gt=0)

    # Duty teams (alert API, live stream, duty board, escalation; services/alerts)
    duty_host: str = "127.0.0.1"
    duty_port: int = 8083
    # Where members reach the board: the links in webhooks and notifications.
    duty_public_url: str = "http://127.0.0.1:8083"
    # Minutes an open alert of each severity may go unacknowledged before it escalates to
    # the next tier (JSON, e.g. {"critical": 15, "high": 30}); absent severities never do.
    duty_escalate_after_minutes: dict[str, float] = Field(
        default_factory=lambda: {"critical": 15.0, "high": 30.0})
    # An acknowledged alert left unresolved this long goes back to open.
    duty_acknowledgement_timeout_minutes: float = Field(default=240.0, gt=0)
    # How often the duty service looks for timers due and for new feed entries.
    duty_timer_interval_seconds: float = Field(default=1.0, gt=0)
    duty_stream_poll_seconds: float = Field(default=0.1, gt=0)
    # The board's session cookie: Secure when served over HTTPS (set it true in production).
    duty_cookie_secure: bool = False

    log_level: str = "INFO"
    log_json: bool = True
    # Third-party loggers (aiokafka, faust, mode, asyncpg, uvicorn, httpx...) stay at this
    # level even when log_level is DEBUG: their debug lines print Kafka message keys (person
    # keys) and Avro values, and request parts. Lower it only to chase a library problem; the
    # redaction filter still scrubs those lines (see services.common.redaction).
    log_library_level: str = "INFO"

    # --- webhooks (services/alerts/webhooks); their links use duty_public_url
    # One attempt's deadline (connect, send, the answer's status and headers).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # How often the dispatcher looks for new feed entries and deliveries due.
    webhook_poll_seconds: float = Field(default=0.2, gt=0)
    # Attempts in flight at once, across every endpoint.
    webhook_concurrency: int = Field(default=16, gt=0)

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError("must be a lower-case SQL identifier")
        return value

    @field_validator("sealing_key")
    @classmethod
    def _sealing_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 of 32 random bytes") from None
        if len(raw) != 32:
            raise ValueError("must be base64 of 32 random bytes")
        return value

    @field_validator("log_level", "log_library_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if not isinstance(logging.getLevelName(value.upper()), int):
            raise ValueError("must be a log level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @model_validator(mode="after")
    def _admission_group_follows_the_processor_group(self) -> Settings:
        if not self.admission_group:
            self.admission_group = f"{self.processor_group}-admission"
        return self

    @model_validator(mode="after")
    def _production_needs_real_servers(self) -> Settings:
        if self.environment == "production" and not (self.database_url and self.kafka_bootstrap):
            raise ValueError("production needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
        if (self.environment == "production"
                and self.message_key_secret.get_secret_value() == _DEVELOPMENT_KEY_SECRET):
            raise ValueError("production needs its own JOINEDUP_MESSAGE_KEY_SECRET")
        if (self.environment == "production"
                and self.sealing_key.get_secret_value() == _DEVELOPMENT_SEALING_KEY):
            raise ValueError("production needs its own JOINEDUP_SEALING_KEY")
        return self

    def key_encryption_key(self) -> bytes:
        return base64.b64decode(self.sealing_key.get_secret_value())

    def subject_keys(self) -> SubjectKeys:
        return SubjectKeys(self.message_key_secret.get_secret_value().encode())

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)

    def require_servers(self) -> tuple[str, str]:
        if not self.database_url or not self.kafka_bootstrap:
            raise RuntimeError(
                "no servers configured: run `joinedup up` or set DATABASE_URL and "
                "KAFKA_BOOTSTRAP_SERVERS")
        return self.database_url, self.kafka_bootstrap
