"""Named SQL for read models: which exist, and how far each has applied each partition.

Lock order, the same in every transaction that takes more than one (so none deadlock): the
`read_model` rows, then `read_model_position` rows, then `consumer_position` rows.
"""

REGISTERED = "SELECT name, status FROM read_model WHERE name = ANY($1::text[])"

REGISTER = """
INSERT INTO read_model (name, status, live_since)
VALUES ($1, $2, CASE WHEN $2 = 'live' THEN now() END)
ON CONFLICT (name) DO NOTHING
"""

ARCHIVE_IS_EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM event_archive)"

# A live batch holds these for its transaction: a read model cannot turn live meanwhile.
LOCK_STATUSES = """
SELECT name, status, generation FROM read_model WHERE name = ANY($1::text[]) FOR SHARE
"""

LOCK_POSITIONS = """
SELECT read_model, topic, partition, next_offset FROM read_model_position
WHERE read_model = ANY($1::text[])
  AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))
FOR UPDATE
"""

ADVANCE = """
INSERT INTO read_model_position (read_model, topic, partition, next_offset)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
ON CONFLICT (read_model, topic, partition) DO UPDATE
    SET next_offset = EXCLUDED.next_offset, updated_at = now()
"""

POSITIONS = """
SELECT read_model, topic, partition, next_offset, archive_seq FROM read_model_position
WHERE read_model = $1 ORDER BY topic, partition
"""

# --- catching up from the archive ---------------------------------------------------------

# The partitions a read model must catch up on: every one the archive or the consumer knows.
PARTITIONS_TO_CATCH_UP = """
SELECT partition FROM consumer_position WHERE consumer = $1 AND topic = $2
UNION
SELECT DISTINCT kafka_partition FROM event_archive WHERE kafka_topic = $2
ORDER BY 1
"""

START_CATCHING_UP = """
INSERT INTO read_model_position (read_model, topic, partition, next_offset, archive_seq)
VALUES ($1, $2, $3, NULL, 0)
ON CONFLICT (read_model, topic, partition) DO NOTHING
"""

LOCK_POSITION = """
SELECT next_offset, archive_seq, log_offset FROM read_model_position
WHERE read_model = $1 AND topic = $2 AND partition = $3
FOR UPDATE
"""

# The partition's archive in the order it was applied, after what was caught up already.
ARCHIVE_AFTER = """
SELECT seq, body, kafka_offset, person_key FROM event_archive
WHERE kafka_topic = $1 AND kafka_partition = $2 AND seq > $3
ORDER BY seq LIMIT $4
"""

ARCHIVE_HAS_MORE = """
SELECT EXISTS (SELECT 1 FROM event_archive
               WHERE kafka_topic = $1 AND kafka_partition = $2 AND seq > $3)
"""

CAUGHT_UP_TO = """
UPDATE read_model_position SET archive_seq = $4, updated_at = now()
WHERE read_model = $1 AND topic = $2 AND partition = $3
"""

# --- catching up from the Kafka log (a rebuild from the log) -------------------------------

CAUGHT_UP_IN_LOG = """
UPDATE read_model_position SET log_offset = $4, updated_at = now()
WHERE read_model = $1 AND topic = $2 AND partition = $3
"""

# How far the live pipeline applied a partition's log: a catch-up from the log stops there.
CONSUMER_AT = """
SELECT next_offset, anchor_digest FROM consumer_position
WHERE consumer = $1 AND topic = $2 AND partition = $3
"""

# The messages the live pipeline parked (undecodable, refused, clashing, poison): skipped.
PARKED_BETWEEN = """
SELECT kafka_offset FROM dead_letter
WHERE topic = $1 AND partition = $2 AND kafka_offset >= $3 AND kafka_offset < $4
"""

# A replaced log (see log_probe) no longer holds what the live pipeline applied before.
LOG_REPLACED = """
SELECT partition, detected_at FROM log_reset WHERE consumer = $1 AND topic = $2
ORDER BY detected_at LIMIT 1
"""

# Held while a read model joins the live pipeline on a partition: the consumer cannot move.
LOCK_CONSUMER = """
SELECT next_offset FROM consumer_position
WHERE consumer = $1 AND topic = $2 AND partition = $3
FOR SHARE
"""

JOIN_LIVE = """
UPDATE read_model_position SET next_offset = $4, updated_at = now()
WHERE read_model = $1 AND topic = $2 AND partition = $3
"""

FORGET_POSITION = """
DELETE FROM read_model_position WHERE read_model = $1 AND topic = $2 AND partition = $3
"""

# Taken first when a read model turns live: waits for the live batches in flight.
TURN_LIVE = """
UPDATE read_model SET status = 'live', live_since = now()
WHERE name = $1 AND status = 'catching-up'
RETURNING name
"""

# Every partition the consumer tracks, and whether the read model is in step there.
IN_STEP_EVERYWHERE = """
SELECT bool_and(m.next_offset IS NOT DISTINCT FROM c.next_offset) AS in_step
FROM (SELECT partition, next_offset FROM consumer_position
      WHERE consumer = $2 AND topic = $3 FOR SHARE) AS c
LEFT JOIN read_model_position AS m
    ON m.read_model = $1 AND m.topic = $3 AND m.partition = c.partition
"""

# The log of a partition was replaced and the consumer starts again at its start: the read
# models in step there follow it.
RESTART_IN_STEP = """
UPDATE read_model_position SET next_offset = $4, updated_at = now()
WHERE topic = $1 AND partition = $2 AND next_offset = $3
"""

# The partitions (of those given) where a read model is applied live: it is live, or it has
# caught up there and joined the live pipeline. The deadline timer fires only those (state
# still catching up from the archive would fire deadlines its later events fulfil).
APPLIED_LIVE_ON = """
SELECT p FROM unnest($3::int[]) AS p
WHERE EXISTS (SELECT 1 FROM read_model WHERE name = $1 AND status = 'live')
   OR EXISTS (SELECT 1 FROM read_model_position
              WHERE read_model = $1 AND topic = $2 AND partition = p
                AND next_offset IS NOT NULL)
ORDER BY p
"""
