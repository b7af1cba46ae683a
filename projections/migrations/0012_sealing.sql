-- Sealing and erasure: personal fields are stored encrypted, each person's under their own
-- data key; destroying the key erases them everywhere (services/common/serde/sealing.py).

-- One data key per person id, wrapped under the deployment's key-encryption key. Erasure
-- sets `wrapped` to NULL: the row stays, so every reader learns the key is gone (rather than
-- "never existed"), and who erased and why stays on record.
CREATE TABLE person_data_key (
    person_id    uuid PRIMARY KEY,
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    destroyed_by text,
    reason       text,
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);

-- The gateway seals each event's personal fields for its journey over the agency's topic
-- under a key of that event's own, kept (wrapped) with its receipt. Admission opens the
-- event, seals it for its person, and forgets the transit key in the transaction that moves
-- its position: from then on the agency topic's copy opens for nobody.
ALTER TABLE ingest_receipt ADD COLUMN transit_key bytea;
