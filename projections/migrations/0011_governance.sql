-- Information governance: who reads (practitioners in teams of agencies), what they may see
-- (governance events: consent, agreements, coordination episodes, grants, disclosures) and
-- who looked (the access audit).

-- Records that are never changed or removed once written: the governance events and the
-- access audit (statement triggers: an UPDATE or DELETE is refused even when it matches no
-- row, so nobody learns what would have matched). (Erasure makes a person's fields unreadable by destroying their key; it
-- does not edit these rows.)
CREATE FUNCTION refuse_change_to_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- Teams within agencies. A team id names its agency: '<agency>/<team>'.
CREATE TABLE team (
    team_id     text PRIMARY KEY,
    agency_id   text        NOT NULL REFERENCES agency (agency_id),
    name        text        NOT NULL,           -- what people call it: "Leeds housing options"
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX team_agency ON team (agency_id);

-- Practitioners' accounts. Passwords are kept only as argon2id hashes.
CREATE TABLE practitioner (
    practitioner_id uuid PRIMARY KEY,
    username        text        NOT NULL UNIQUE,
    agency_id       text        NOT NULL REFERENCES agency (agency_id),
    team_id         text        REFERENCES team (team_id),
    role            text        NOT NULL
        CHECK (role IN ('practitioner', 'business_support', 'information_governance')),
    password_hash   text        NOT NULL,
    failed_sign_ins int         NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);
CREATE INDEX practitioner_team ON practitioner (team_id);

-- Bearer tokens a practitioner signs in for (only SHA-256 hashes are kept).
CREATE TABLE reader_token (
    token_hash      text PRIMARY KEY,
    practitioner_id uuid        NOT NULL REFERENCES practitioner (practitioner_id),
    issued_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz
);
CREATE INDEX reader_token_practitioner ON reader_token (practitioner_id);

-- The governance log: every governance event, once, as recorded (Avro single-object bytes,
-- schemas/governance_event.vN.avsc), numbered in the order recorded. A person's record is
-- the fold of their events in `seq` order; agreements have no person.
CREATE TABLE governance_event (
    seq             bigserial   UNIQUE,
    event_id        uuid PRIMARY KEY,
    event_type      text        NOT NULL,
    person_id       uuid,
    recorded_at     timestamptz NOT NULL,
    agency_id       text,                         -- the recording actor's agency
    body            bytea       NOT NULL
);
CREATE INDEX governance_event_person ON governance_event (person_id, seq);
CREATE INDEX governance_event_agreements ON governance_event (seq)
    WHERE person_id IS NULL;
CREATE TRIGGER governance_event_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON governance_event
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_to_append_only();

-- Governance events waiting to be published to the governance topic (written in the
-- transaction that records them, published after commit, removed once acknowledged).
CREATE TABLE governance_outbox (
    seq        bigserial,
    event_id   uuid PRIMARY KEY,
    key        text        NOT NULL,              -- a person id, or an agreement id
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The access audit: every read of a person's data and every action on it, who, which agency,
-- when, what and for which purpose. No identifier values: the person is their opaque id; a
-- search records the scheme it searched by.
CREATE TABLE access_audit (
    seq             bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    reader_kind     text        NOT NULL,         -- practitioner, agency_system, operator
    agency_id       text,
    practitioner_id uuid,
    team_id         text,
    role            text,
    operator        text,                         -- an operator's --by
    action          text        NOT NULL,         -- e.g. read.timeline, consent.given
    person_id       uuid,
    purpose         text        NOT NULL,
    outcome         text        NOT NULL,         -- ok, refused, not_found
    detail          jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX access_audit_person ON access_audit (person_id, seq);
CREATE INDEX access_audit_reader ON access_audit (practitioner_id, seq);
CREATE TRIGGER access_audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON access_audit
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_to_append_only();
