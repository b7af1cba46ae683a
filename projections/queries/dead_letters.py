"""Named SQL for the dead-letter record (positions and reasons; the bytes stay on the topic)."""

RECORD_DEAD_LETTERS = """
INSERT INTO dead_letter (topic, partition, kafka_offset, reason)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[])
ON CONFLICT DO NOTHING
"""
