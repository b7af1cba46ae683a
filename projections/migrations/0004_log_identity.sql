-- Which log a tracking row belongs to. `anchor_digest` is the digest of the last record applied
-- from the partition (its timestamp, key and value). When a partition is assigned, the
-- consumer reads that record back before applying anything: a different record, or none (the
-- position is beyond the log's end), means the log was replaced (a broker restarted on memory
-- storage, a topic deleted and created again). Positions are never trusted blindly.
ALTER TABLE consumer_position ADD COLUMN anchor_digest bytea;

-- Every replaced log a consumer detected, and what it did about it. Nothing is skipped
-- silently: operators see here (and in the logs and metrics) that a partition was replayed
-- from the start of its new log or refused.
CREATE TABLE log_reset (
    reset_id       bigserial PRIMARY KEY,
    consumer       text        NOT NULL,
    topic          text        NOT NULL,
    partition      int         NOT NULL,
    stored_offset  bigint      NOT NULL,   -- the position the old log had reached
    log_start      bigint,                 -- where the consumer starts again (NULL: refused)
    reason         text        NOT NULL,
    detected_at    timestamptz NOT NULL DEFAULT now()
);
