-- Dead-letter tooling (issue 17): what `joinedup dead-letters show|redrive|purge` need, and
-- what operators did. The bytes stay on the dead-letter topic (Kafka records cannot be deleted
-- from an infinite-retention topic); this table says where they are and what became of them.
ALTER TABLE dead_letter
    -- a short number operators name a dead letter by (rows parked before this get one too)
    ADD COLUMN id                 bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN stage              text,         -- admission, intake, alert-projector
    ADD COLUMN exception_class    text,         -- as __connect.errors.exception.class.name
    ADD COLUMN source_agency      text,         -- whose message, when its topic says so
    ADD COLUMN original_timestamp timestamptz,  -- the parked record's own timestamp
    -- the dead letter this message was re-driven from (it failed again): the chain of tries
    ADD COLUMN redrive_of         bigint,
    -- where the copy is on the dead-letter topic (NULL for rows parked before this)
    ADD COLUMN copy_partition     int,
    ADD COLUMN copy_offset        bigint,
    -- re-driven: by whom, why, and where the re-driven copy went (the source topic)
    ADD COLUMN redriven_at        timestamptz,
    ADD COLUMN redriven_by        text,
    ADD COLUMN redriven_reason    text,
    ADD COLUMN redriven_partition int,
    ADD COLUMN redriven_offset    bigint,
    -- purged: marked dealt with, by whom and why (the record stays on the topic)
    ADD COLUMN purged_at          timestamptz,
    ADD COLUMN purged_by          text,
    ADD COLUMN purged_reason      text;
ALTER TABLE dead_letter ADD CONSTRAINT dead_letter_id_key UNIQUE (id);
-- listing newest first, and by reason (the observability engineer's count by reason too)
CREATE INDEX dead_letter_parked_at ON dead_letter (parked_at DESC, id DESC);
CREATE INDEX dead_letter_reason ON dead_letter (reason);
CREATE INDEX dead_letter_redrive_of ON dead_letter (redrive_of) WHERE redrive_of IS NOT NULL;
