"""Named SQL for the backbone read models. Batches go in as arrays (one round trip each)."""

ARCHIVE_COLUMNS = ("event_id", "person_key", "event_type", "source_agency", "occurred_at",
                   "recorded_at", "schema_version", "sensitivity", "body", "kafka_topic",
                   "kafka_partition", "kafka_offset")

# A per-connection staging table: a batch is COPYed in (binary COPY encodes far faster than
# array parameters), then moved into the archive. Emptied at every commit.
CREATE_ARCHIVE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS archive_stage
    (LIKE event_archive INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""

# Returns the events that were new: the rest were archived before (by this batch's earlier
# delivery, or by a concurrent worker whose insert this one waited for).
ARCHIVE_FROM_STAGE = """
INSERT INTO event_archive SELECT * FROM archive_stage
ON CONFLICT (source_agency, event_id) DO NOTHING
RETURNING source_agency, event_id::text AS event_id
"""

# For staged events archived before: the same bytes (a redelivery) or not.
SAME_AS_ARCHIVED = """
SELECT s.source_agency, s.event_id::text AS event_id, a.body = s.body AS same_body
FROM archive_stage s JOIN event_archive a USING (source_agency, event_id)
WHERE (s.source_agency, s.event_id) IN (
    SELECT * FROM unnest($1::text[], $2::uuid[]))
"""

ARCHIVED_BODIES = """
SELECT source_agency, event_id::text AS event_id, body FROM event_archive
JOIN unnest($1::text[], $2::uuid[]) AS k(source_agency, event_id) USING (source_agency, event_id)
"""

TIMELINE_COLUMNS = ("person_key", "occurred_at", "recorded_at", "event_id", "event_type",
                    "source_agency", "service_kind", "sensitivity", "summary")

# The earliest sighting of each identifier under each person is kept.
UPSERT_IDENTIFIERS = """
INSERT INTO person_identifier (scheme, value, person_key, first_seen)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
ON CONFLICT (scheme, value, person_key) DO UPDATE
    SET first_seen = LEAST(person_identifier.first_seen, EXCLUDED.first_seen)
"""

SELECT_REFERRALS = """
SELECT referral_id, person_key, from_agency, to_agency, to_service_kind, status, status_at,
       last_event_id::text AS last_event_id, made_at, decline_reason, cites_service_kind,
       decided_by, outcome
FROM referral WHERE referral_id = ANY($1::text[])
"""

UPSERT_REFERRALS = """
INSERT INTO referral (referral_id, person_key, from_agency, to_agency, to_service_kind, status,
    status_rank, status_at, made_at, decline_reason, cites_service_kind, decided_by, outcome,
    last_event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::int[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[], $12::text[],
    $13::text[], $14::uuid[])
ON CONFLICT (referral_id) DO UPDATE SET
    person_key = EXCLUDED.person_key, from_agency = EXCLUDED.from_agency,
    to_agency = EXCLUDED.to_agency, to_service_kind = EXCLUDED.to_service_kind,
    status = EXCLUDED.status, status_rank = EXCLUDED.status_rank,
    status_at = EXCLUDED.status_at, made_at = EXCLUDED.made_at,
    decline_reason = EXCLUDED.decline_reason, cites_service_kind = EXCLUDED.cites_service_kind,
    decided_by = EXCLUDED.decided_by, outcome = EXCLUDED.outcome,
    last_event_id = EXCLUDED.last_event_id
"""

INSERT_REFERRAL_HISTORY = """
INSERT INTO referral_history (referral_id, event_id, status, occurred_at, set_by)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[])
ON CONFLICT DO NOTHING
"""

SELECT_CASELOAD = """
SELECT person_key, agency, service_kind, active, since, last_event_at,
       last_event_id::text AS last_event_id, ended_reason
FROM caseload WHERE person_key = ANY($1::text[])
"""

UPSERT_CASELOAD = """
INSERT INTO caseload (person_key, agency, service_kind, active, since, last_event_at,
    last_event_id, ended_reason)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[],
    $6::timestamptz[], $7::uuid[], $8::text[])
ON CONFLICT (person_key, agency) DO UPDATE SET
    service_kind = EXCLUDED.service_kind, active = EXCLUDED.active, since = EXCLUDED.since,
    last_event_at = EXCLUDED.last_event_at, last_event_id = EXCLUDED.last_event_id,
    ended_reason = EXCLUDED.ended_reason
"""


# A regroup (records linked or separated) forgets what the read models hold for the people it
# regroups, then folds their archived events again (services/processor/regroup.py).
FORGET_TIMELINES = "DELETE FROM timeline_entry WHERE person_key = ANY($1::text[])"
FORGET_SIGHTINGS = "DELETE FROM person_identifier WHERE person_key = ANY($1::text[])"
FORGET_REFERRALS = """
WITH gone AS (DELETE FROM referral WHERE person_key = ANY($1::text[]) RETURNING referral_id)
DELETE FROM referral_history WHERE referral_id IN (SELECT referral_id FROM gone)
"""
FORGET_CASELOADS = "DELETE FROM caseload WHERE person_key = ANY($1::text[])"

# The archived events that were filed under any of these people, in the order applied.
ARCHIVED_FOR_PEOPLE = """
SELECT seq, person_key, source_agency, event_id::text AS event_id, body, kafka_topic, kafka_partition,
       kafka_offset
FROM event_archive WHERE person_key = ANY($1::text[]) ORDER BY seq
"""

REFILE_ARCHIVED = """
UPDATE event_archive AS a SET person_key = $1
FROM unnest($2::text[], $3::uuid[]) AS k(source_agency, event_id)
WHERE a.source_agency = k.source_agency AND a.event_id = k.event_id AND a.person_key <> $1
"""
