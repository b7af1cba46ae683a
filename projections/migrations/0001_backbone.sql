-- The event backbone's read models. Every table is written idempotently: a row is keyed by
-- the event id (or by what the event is about), so at-least-once delivery has exactly-once
-- effects. The consumer position is written in the same transaction as the effects.

-- Every accepted event, once, exactly as it was received (Avro single-object bytes).
CREATE TABLE event_archive (
    event_id        uuid PRIMARY KEY,
    person_key      text        NOT NULL,
    event_type      text        NOT NULL,
    source_agency   text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    schema_version  int         NOT NULL,
    sensitivity     text        NOT NULL,
    body            bytea       NOT NULL,
    kafka_topic     text        NOT NULL,
    kafka_partition int         NOT NULL,
    kafka_offset    bigint      NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now()
);
-- Replay from a point in time reads the archive by recorded-at, not broker timestamps.
CREATE INDEX event_archive_recorded_at ON event_archive (recorded_at);
CREATE INDEX event_archive_person ON event_archive (person_key, occurred_at);

-- One timeline per person across agencies, ordered by occurred-at (ties: recorded-at, id).
CREATE TABLE timeline_entry (
    person_key    text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    event_id      uuid        NOT NULL,
    event_type    text        NOT NULL,
    source_agency text        NOT NULL,
    service_kind  text        NOT NULL,
    sensitivity   text        NOT NULL,
    summary       text        NOT NULL,
    PRIMARY KEY (person_key, occurred_at, recorded_at, event_id)
);

-- Every identifier seen for a person, so a timeline can be found by any of them.
CREATE TABLE person_identifier (
    scheme      text        NOT NULL,
    value       text        NOT NULL,
    person_key  text        NOT NULL,
    first_seen  timestamptz NOT NULL,
    PRIMARY KEY (scheme, value)
);
CREATE INDEX person_identifier_person ON person_identifier (person_key);

-- Closed-loop referral state (FHIR Task vocabulary). `status_rank` orders statuses that
-- share an occurred-at so that a late "acknowledged" never undoes an "accepted".
CREATE TABLE referral (
    referral_id      text PRIMARY KEY,
    person_key       text        NOT NULL,
    from_agency      text        NOT NULL,
    to_agency        text        NOT NULL,
    to_service_kind  text        NOT NULL,
    status           text        NOT NULL,
    status_rank      int         NOT NULL,
    status_at        timestamptz NOT NULL,
    made_at          timestamptz,
    decline_reason   text,
    cites_service_kind text,
    decided_by       text,
    outcome          text,
    last_event_id    uuid        NOT NULL
);
CREATE INDEX referral_person ON referral (person_key);

-- Each status a referral passed through, with who set it (an event id and agency).
CREATE TABLE referral_history (
    referral_id  text        NOT NULL,
    event_id     uuid        NOT NULL,
    status       text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    set_by       text        NOT NULL,
    PRIMARY KEY (referral_id, event_id)
);

-- Caseload: which agencies and services currently work with the person.
CREATE TABLE caseload (
    person_key     text        NOT NULL,
    agency         text        NOT NULL,
    service_kind   text        NOT NULL,
    active         boolean     NOT NULL,
    since          timestamptz NOT NULL,
    last_event_at  timestamptz NOT NULL,
    last_event_id  uuid        NOT NULL,
    ended_reason   text,
    PRIMARY KEY (person_key, agency)
);

-- The tracking row: how far each consumer has applied each partition (pyeventsourcing's
-- pattern). Written in the same transaction as the effects.
CREATE TABLE consumer_position (
    consumer    text   NOT NULL,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    -- The latest recorded-at applied from this partition. The lowest of these over a
    -- consumer's partitions is its stream clock (a watermark): replays evaluate deadlines
    -- against it instead of the wall clock.
    stream_clock timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);

-- Messages parked on the dead-letter topic, with the reason (no message content here).
CREATE TABLE dead_letter (
    topic        text        NOT NULL,
    partition    int         NOT NULL,
    kafka_offset bigint      NOT NULL,
    reason       text        NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, kafka_offset)
);
