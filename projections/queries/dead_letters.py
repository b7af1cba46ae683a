"""Named SQL for the dead-letter record: where each parked message was and where its copy is
(the bytes stay on the topic), and what operators did with it (migration 0016)."""

# A message parked again after a re-drive links to the dead letter it was re-driven from,
# only if that one came from the same topic (the link header is the publisher's to forge).
RECORD_DEAD_LETTERS = """
INSERT INTO dead_letter (topic, partition, kafka_offset, reason, stage, exception_class,
                         source_agency, original_timestamp, redrive_of, copy_partition,
                         copy_offset)
SELECT p.topic, p.partition, p.kafka_offset, p.reason, p.stage, p.exception_class,
       p.source_agency, p.original_timestamp,
       (SELECT d.id FROM dead_letter d WHERE d.id = p.redrive_of AND d.topic = p.topic),
       p.copy_partition, p.copy_offset
FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::timestamptz[], $9::bigint[], $10::int[], $11::bigint[])
     AS p(topic, partition, kafka_offset, reason, stage, exception_class, source_agency,
          original_timestamp, redrive_of, copy_partition, copy_offset)
ON CONFLICT DO NOTHING
"""

_COLUMNS = """
d.id, d.topic, d.partition, d.kafka_offset, d.reason, d.stage, d.exception_class,
d.source_agency, d.original_timestamp, d.parked_at, d.redrive_of, d.copy_partition,
d.copy_offset, d.redriven_at, d.redriven_by, d.redriven_reason, d.redriven_partition,
d.redriven_offset, d.purged_at, d.purged_by, d.purged_reason,
(SELECT min(a.id) FROM dead_letter a WHERE a.redrive_of = d.id) AS parked_again_as
"""

# Filters are each NULL (any) or a value: $1 reason contains (case-insensitive), $2 agency or
# topic, $3 stage, $4 parked from, $5 parked before, $6 status (open, redriven, purged, all).
LIST = f"""
SELECT {_COLUMNS} FROM dead_letter d
WHERE ($1::text IS NULL OR strpos(lower(d.reason), lower($1)) > 0)
  AND ($2::text IS NULL OR d.source_agency = $2 OR d.topic = $2)
  AND ($3::text IS NULL OR d.stage = $3)
  AND ($4::timestamptz IS NULL OR d.parked_at >= $4)
  AND ($5::timestamptz IS NULL OR d.parked_at < $5)
  AND CASE $6::text
        WHEN 'open' THEN d.redriven_at IS NULL AND d.purged_at IS NULL
        WHEN 'redriven' THEN d.redriven_at IS NOT NULL
        WHEN 'purged' THEN d.purged_at IS NOT NULL
        ELSE true END
ORDER BY d.parked_at DESC, d.id DESC
LIMIT $7
"""

ONE = f"SELECT {_COLUMNS} FROM dead_letter d WHERE d.id = $1"

# Held while a re-drive or purge decides and records (two operators at once: one wins).
ONE_FOR_UPDATE = f"SELECT {_COLUMNS} FROM dead_letter d WHERE d.id = $1 FOR UPDATE OF d"

MARK_REDRIVEN = """
UPDATE dead_letter SET redriven_at = now(), redriven_by = $2, redriven_reason = $3,
                       redriven_partition = $4, redriven_offset = $5
WHERE id = $1
"""

MARK_PURGED = """
UPDATE dead_letter SET purged_at = now(), purged_by = $2, purged_reason = $3 WHERE id = $1
"""

# For metrics (the observability engineer's gauge): open dead letters by reason and stage.
OPEN_BY_REASON = """
SELECT reason, coalesce(stage, '') AS stage, count(*) AS parked FROM dead_letter
WHERE redriven_at IS NULL AND purged_at IS NULL
GROUP BY reason, stage ORDER BY reason, stage
"""
