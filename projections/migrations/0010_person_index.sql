-- The person index (services/identity): which records are one person, under an opaque
-- person id (a random UUID, never derived from an identifier).
--
-- `identity_change` is the index's own log: every decision of the identity step (a person
-- identified, identifiers attached, people merged or separated, a possible match) as an
-- identity_event (Avro), numbered in commit order. Writers hold the identity lock (see
-- projections/queries/identity.py) from the first read to the commit, so `seq` order is
-- the order the decisions were taken, and an index in memory catches up by reading what
-- follows the last `seq` it applied.
CREATE TABLE identity_change (
    seq          bigserial   PRIMARY KEY,
    change_id    uuid        NOT NULL UNIQUE,
    kind         text        NOT NULL,
    decided_at   timestamptz NOT NULL,
    asserted_by  text,                    -- merged/separated: 'rule', an agency, 'operator'
    actor        text,                    -- an operator's change: who (the audit trail)
    reason       text,                    -- and why, in their words
    people       uuid[]      NOT NULL,    -- the person ids it concerns (`joinedup person`)
    body         bytea       NOT NULL
);
CREATE INDEX identity_change_people ON identity_change USING gin (people);

-- Derived from the log in the same transaction, for lookups without the index in memory
-- (the processor's resolution, the operator's `joinedup person`, the read path).
CREATE TABLE person_index (
    person_id    uuid        PRIMARY KEY,
    current_id   uuid        NOT NULL,    -- itself while live; where it went once merged
    created_at   timestamptz NOT NULL
);
CREATE INDEX person_index_current ON person_index (current_id);

CREATE TABLE person_index_identifier (
    scheme       text        NOT NULL,
    value        text        NOT NULL,
    person_id    uuid        NOT NULL,    -- the live person holding it
    PRIMARY KEY (scheme, value)
);
CREATE INDEX person_index_identifier_person ON person_index_identifier (person_id);

-- The processor's sightings (the `identifiers` read model) are kept per identifier and
-- person: an identifier the index gives one person at a time can have been seen under
-- another before a link or separation, and a possible match shows as two rows.
ALTER TABLE person_identifier DROP CONSTRAINT person_identifier_pkey,
    ADD PRIMARY KEY (scheme, value, person_key);
