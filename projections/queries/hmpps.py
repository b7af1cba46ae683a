"""Queries for HMPPS domain events (services/ingest/formats/hmpps)."""

# The unmapped HMPPS event types still parked (not re-driven, not purged), per agency and
# type, from the dead letters' reasons ("unmapped: HMPPS event type <type> has no mapping
# ..."; the type is checked to look like one before it is written there). The newest five
# dead-letter ids of each, for `joinedup dead-letters show|redrive`.
UNMAPPED_TYPES = """
SELECT source_agency AS agency,
       split_part(split_part(reason, 'HMPPS event type ', 2), ' ', 1) AS event_type,
       count(*) AS seen, min(parked_at) AS first_parked, max(parked_at) AS last_parked,
       (array_agg(id ORDER BY id DESC))[1:5] AS newest_ids
FROM dead_letter
WHERE stage = $1 AND reason LIKE 'unmapped: HMPPS event type %'
  AND redriven_at IS NULL AND purged_at IS NULL
GROUP BY 1, 2
ORDER BY seen DESC, event_type, agency
"""
