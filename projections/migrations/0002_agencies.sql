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

-- The HTTP gateway's idempotency record, one row per event id. A request first claims the id
-- (state 'pending', claimed_at = the claim's token), produces the event with acks=all, then
-- marks the row 'accepted' with where the broker put it, or deletes its claim if the broker did
-- not acknowledge. A claim older than the gateway's stale limit belongs to a request that died
-- and may be taken over. The content hash tells a retry of the same event (same hash) from a
-- conflicting reuse of its id (different hash).
CREATE TABLE ingest_receipt (
    event_id        uuid PRIMARY KEY,
    agency_id       text        NOT NULL,
    content_hash    text        NOT NULL,   -- SHA-256 of the canonical JSON of the event, hex
    state           text        NOT NULL CHECK (state IN ('pending', 'accepted')),
    claimed_at      timestamptz NOT NULL,
    kafka_topic     text,
    kafka_partition int,
    kafka_offset    bigint,
    accepted_at     timestamptz,
    CHECK (state = 'pending' OR (kafka_topic IS NOT NULL AND kafka_partition IS NOT NULL
                                 AND kafka_offset IS NOT NULL AND accepted_at IS NOT NULL))
) WITH (fillfactor = 90);  -- room on the page, so marking a claim accepted is a HOT update
-- Only columns a claim never changes are indexed (HOT updates again).
CREATE INDEX ingest_receipt_agency ON ingest_receipt (agency_id, claimed_at);
