-- Agencies that may publish, and their API credentials (only hashes of tokens are kept).
CREATE TABLE agency (
    agency_id     text PRIMARY KEY,
    name          text        NOT NULL,
    service_kind  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

-- A credential works while revoked_at is NULL or still in the future: rotation sets the old
-- credential's revoked_at to the end of its grace period; revocation sets it to now().
CREATE TABLE agency_credential (
    credential_id uuid PRIMARY KEY,
    agency_id     text        NOT NULL REFERENCES agency (agency_id),
    token_hash    text        NOT NULL UNIQUE,   -- SHA-256 of the token, hex
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX agency_credential_agency ON agency_credential (agency_id);

-- Events accepted through the HTTP gateway: the idempotency record, written in the same
-- transaction (under an advisory lock on the event id) once the broker acknowledged the write.
-- The content hash tells a retry of the same event (same hash) from a conflicting reuse of its
-- id (different hash).
CREATE TABLE ingest_receipt (
    event_id        uuid PRIMARY KEY,
    agency_id       text        NOT NULL,
    content_hash    text        NOT NULL,   -- SHA-256 of the canonical JSON of the event, hex
    kafka_topic     text        NOT NULL,
    kafka_partition int         NOT NULL,
    kafka_offset    bigint      NOT NULL,
    accepted_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_receipt_agency ON ingest_receipt (agency_id, accepted_at);
