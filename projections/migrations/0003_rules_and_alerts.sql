-- Transition rules: expectations are durable, replayable state (a row per rule, person and
-- trigger event, with a due time computed from event time). Timers only ask for what is due.
CREATE TABLE expectation (
    expectation_id   uuid PRIMARY KEY,          -- equals the id of the alert it would raise
    rule_id          text        NOT NULL,
    person_key       text        NOT NULL,
    kafka_partition  int         NOT NULL,      -- the person's partition: whose timer fires it
    trigger_event_id uuid        NOT NULL,
    due_at           timestamptz,
    status           text        NOT NULL,      -- open, fulfilled, withdrawn, alerted, resolved
    state            jsonb       NOT NULL,      -- the domain Expectation, field for field
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX expectation_due ON expectation (kafka_partition, due_at) WHERE status = 'open';
-- A batch loads its people's expectations (live ones and recently closed ones).
CREATE INDEX expectation_person ON expectation (person_key);

-- Remembered events a rule may need later (fulfilments that arrived before their trigger,
-- the first half of a "stuck between services" pair, recent transitions for context).
CREATE TABLE rule_marker (
    person_key  text        NOT NULL,
    rule_id     text        NOT NULL,
    role        text        NOT NULL,
    event_id    uuid        NOT NULL,
    occurred_at timestamptz NOT NULL,
    state       jsonb       NOT NULL,
    PRIMARY KEY (person_key, rule_id, role, event_id)
);

-- Per-person facts the rules route on (the lead professional's team).
CREATE TABLE person_rule_state (
    person_key      text PRIMARY KEY,
    lead_team       text,
    lead_team_since timestamptz   -- so a late, older lead-professional change cannot win
);

-- Alert events waiting to be published (written with the effects, published after commit).
CREATE TABLE alert_outbox (
    seq            bigserial,                   -- publication order (raised before resolved)
    alert_event_id uuid PRIMARY KEY,
    person_key     text        NOT NULL,
    body           bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The alert read model, projected from the alerts topic.
CREATE TABLE alert (
    alert_id         uuid PRIMARY KEY,
    person_key       text        NOT NULL,
    rule_id          text        NOT NULL,
    rule_version     text        NOT NULL,
    severity         text        NOT NULL,
    duty_team        text        NOT NULL,
    title            text        NOT NULL,
    explanation      text        NOT NULL,
    source_reference text        NOT NULL,
    trigger_event_id uuid        NOT NULL,
    expected         text        NOT NULL,
    window_start     timestamptz NOT NULL,
    due_at           timestamptz,
    status           text        NOT NULL,      -- open, resolved (acknowledged... later)
    raised_at        timestamptz NOT NULL,
    resolved_at      timestamptz,
    resolution       text,
    resolving_event_id uuid,
    projected_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_open_by_team ON alert (duty_team, raised_at) WHERE status = 'open';
CREATE INDEX alert_person ON alert (person_key);

CREATE TABLE alert_history (
    alert_event_id uuid PRIMARY KEY,
    alert_id       uuid        NOT NULL,
    action         text        NOT NULL,
    at             timestamptz NOT NULL,
    actor          text,
    resolution     text
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, at);
