-- Each read model records its own position, so one can be rebuilt, or a new one added to a
-- running system, without touching the others.
--
-- The archive gets a sequence number in the order events were applied (per partition the
-- log's order, across a replaced log too, where Kafka offsets start again): replaying the
-- archive of a partition in `seq` order is replaying its log.
ALTER TABLE event_archive ADD COLUMN seq bigint;
UPDATE event_archive AS a SET seq = o.n
FROM (SELECT source_agency, event_id,
             row_number() OVER (ORDER BY archived_at, kafka_partition, kafka_offset) AS n
      FROM event_archive) AS o
WHERE a.source_agency = o.source_agency AND a.event_id = o.event_id;
CREATE SEQUENCE event_archive_seq OWNED BY event_archive.seq;
SELECT setval('event_archive_seq', COALESCE((SELECT max(seq) FROM event_archive), 0) + 1, false);
ALTER TABLE event_archive ALTER COLUMN seq SET DEFAULT nextval('event_archive_seq'),
                          ALTER COLUMN seq SET NOT NULL;
CREATE INDEX event_archive_replay ON event_archive (kafka_topic, kafka_partition, seq);

-- The read models this database holds. 'live': applied by the live pipeline wherever its
-- position is in step; 'catching-up': being brought up to date from the archive first.
CREATE TABLE read_model (
    name          text PRIMARY KEY,
    status        text        NOT NULL CHECK (status IN ('live', 'catching-up')),
    registered_at timestamptz NOT NULL DEFAULT now(),
    live_since    timestamptz
);
-- The read models that existed before positions per read model were kept are in step.
INSERT INTO read_model (name, status, live_since)
SELECT name, 'live', now()
FROM unnest(ARRAY['timeline', 'identifiers', 'referrals', 'caseload', 'rules']) AS name;

-- How far each read model has applied each partition of the topic it reads. A live read
-- model without a row on a partition is in step with the consumer there. `next_offset` is
-- NULL while the read model catches up on the partition from the archive (up to
-- `archive_seq`); it takes the consumer's position when it has caught up.
CREATE TABLE read_model_position (
    read_model  text   NOT NULL REFERENCES read_model (name) ON DELETE CASCADE,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint,
    archive_seq bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (read_model, topic, partition)
);
