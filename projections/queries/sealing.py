"""Named SQL for the key ring and transit keys (``0012_sealing.sql``)."""

CREATE_KEYS = """
INSERT INTO person_data_key (person_id, wrapped)
SELECT * FROM unnest($1::uuid[], $2::bytea[])
ON CONFLICT (person_id) DO NOTHING
RETURNING person_id::text AS person_id
"""

# Held FOR SHARE to the end of the reader's transaction: an erasure waits for it.
KEYS_FOR_SHARE = """
SELECT person_id::text AS person_id, wrapped FROM person_data_key
WHERE person_id = ANY($1::uuid[]) ORDER BY person_id
FOR SHARE
"""

# For reading only (nothing derived is written): no row lock, no write to the key rows.
KEYS = """
SELECT person_id::text AS person_id, wrapped FROM person_data_key
WHERE person_id = ANY($1::uuid[])
"""

DESTROY_KEYS = """
UPDATE person_data_key
SET wrapped = NULL, destroyed_at = now(), destroyed_by = $2, reason = $3
WHERE person_id = ANY($1::uuid[]) AND wrapped IS NOT NULL
RETURNING person_id
"""

# The gateway's transit key for each event it holds a claim on: the one already there (a
# retry of the same write), else the new one given. Returned wrapped.
HOLD_TRANSIT_KEYS = """
UPDATE ingest_receipt r SET transit_key = COALESCE(r.transit_key, k.wrapped)
FROM unnest($2::uuid[], $3::bytea[]) AS k(id, wrapped)
WHERE r.agency_id = $1 AND r.event_id = k.id
RETURNING r.event_id::text AS event_id, r.transit_key
"""

# The transit keys of the events a batch of admission reads, by (agency, event id).
TRANSIT_KEYS = """
SELECT r.agency_id, r.event_id::text AS event_id, r.transit_key
FROM ingest_receipt r
JOIN unnest($1::text[], $2::uuid[]) AS k(agency_id, event_id) USING (agency_id, event_id)
"""

# Once admission has re-sealed the events for their people: the copies on the agency topics
# can never be opened again.
FORGET_TRANSIT_KEYS = """
UPDATE ingest_receipt AS r SET transit_key = NULL
FROM unnest($1::text[], $2::uuid[]) AS k(agency_id, event_id)
WHERE r.agency_id = k.agency_id AND r.event_id = k.event_id AND r.transit_key IS NOT NULL
"""
