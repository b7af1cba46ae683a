-- Agencies that may publish, and their API credentials (only hashes of tokens are kept).
CREATE TABLE agency (
    agency_id     text PRIMARY KEY,
    name          text        NOT NULL,
    service_kind  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

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

-- Events accepted through the HTTP gateway: the idempotency record. The content hash tells a
-- retry of the same event (same hash) from a conflicting reuse of its id (different hash).
CREATE TABLE ingest_receipt (
    event_id      uuid PRIMARY KEY,
    agency_id     text        NOT NULL,
    content_hash  text        NOT NULL,
    kafka_partition int,
    kafka_offset  bigint,
    accepted_at   timestamptz NOT NULL DEFAULT now()
);
