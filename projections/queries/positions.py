"""Named SQL for the tracking rows: how far each consumer has applied each partition.

A position only ever moves from exactly where it is stored (compare-and-set): a batch names
the offset it starts from, and if the row holds anything else the batch's transaction fails,
so a gap can never be recorded, whatever the consumer in front of it did.
"""

SELECT_TRACKED = """
SELECT topic, partition, next_offset, anchor_digest FROM consumer_position
WHERE consumer = $1 AND topic = ANY($2::text[])
"""

# A partition seen for the first time starts at the log's start offset.
START_TRACKING = """
INSERT INTO consumer_position (consumer, topic, partition, next_offset, updated_at)
SELECT $1, s.*, now() FROM unnest($2::text[], $3::int[], $4::bigint[]) AS s
ON CONFLICT (consumer, topic, partition) DO NOTHING
"""

# Returns the rows that moved; the caller fails the transaction unless every one did.
ADVANCE = """
UPDATE consumer_position AS p
SET next_offset = m.end_offset, anchor_digest = m.anchor,
    stream_clock = GREATEST(p.stream_clock, m.clock), updated_at = now()
FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bytea[], $7::timestamptz[])
    AS m(topic, partition, start_offset, end_offset, anchor, clock)
WHERE p.consumer = $1 AND p.topic = m.topic AND p.partition = m.partition
  AND p.next_offset = m.start_offset
RETURNING p.topic, p.partition
"""

# Rows written before log identity existed get their anchor the first time it is read back.
RECORD_ANCHOR = """
UPDATE consumer_position SET anchor_digest = $5
WHERE consumer = $1 AND topic = $2 AND partition = $3 AND next_offset = $4
  AND anchor_digest IS NULL
"""

# The log was replaced: start again at its start (the archive de-duplicates what comes again).
RESTART_TRACKING = """
UPDATE consumer_position
SET next_offset = $5, anchor_digest = NULL, updated_at = now()
WHERE consumer = $1 AND topic = $2 AND partition = $3 AND next_offset = $4
RETURNING partition
"""

RECORD_LOG_RESET = """
INSERT INTO log_reset (consumer, topic, partition, stored_offset, log_start, reason)
VALUES ($1, $2, $3, $4, $5, $6)
"""

PARTITION_CLOCKS = """
SELECT partition, stream_clock FROM consumer_position
WHERE consumer = $1 AND topic = $2 AND partition = ANY($3::int[])
"""

# Every partition a consumer group tracks, wherever its members are (the deadline timer asks
# whether admission, across the whole group, has forwarded everything: processor/upstream.py).
GROUP_POSITIONS = """
SELECT topic, partition, next_offset FROM consumer_position WHERE consumer = $1
"""
