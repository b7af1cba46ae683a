"""Named SQL for onboarding backfills (docs/backfill.md): the backfill record, the
expectations it holds, and the historical alerts."""

OPEN_BACKFILL = """
INSERT INTO backfill (agency, cut_over, opened_by) VALUES ($1, $2, $3)
ON CONFLICT (agency) DO NOTHING
RETURNING agency
"""

# An agency whose events were already applied live cannot be backfilled: a replay would judge
# them as history, which live processing did not (the primary key makes this a short scan).
HAS_EVENTS = """
SELECT EXISTS (SELECT 1 FROM event_archive WHERE source_agency = $1)
"""

FINISH_BACKFILL = """
UPDATE backfill SET finished_at = now(), finished_by = $2
WHERE agency = $1 AND finished_at IS NULL
RETURNING agency
"""

BACKFILL = """
SELECT agency, cut_over, opened_at, opened_by, finished_at, finished_by FROM backfill
WHERE agency = $1
"""

BACKFILLS = """
SELECT agency, cut_over, opened_at, opened_by, finished_at, finished_by FROM backfill
ORDER BY opened_at, agency
"""

CUT_OVERS = """
SELECT agency, cut_over FROM backfill
"""

HISTORY_APPLIED = """
SELECT count(*) FROM event_archive WHERE source_agency = $1 AND recorded_at < $2
"""

HELD = """
SELECT count(*) FROM expectation WHERE status = 'open' AND state->>'history_of' = $1
"""

HISTORICAL_ALERTS = """
SELECT count(*) FROM historical_alert WHERE agency = $1
"""

# The timer's release: open expectations held by a finished backfill, on its partitions,
# locked as DUE_EXPECTATIONS locks them (a batch holding one is about to change it).
RELEASABLE = """
SELECT e.state, e.kafka_partition FROM expectation AS e
JOIN backfill AS b ON b.agency = e.state->>'history_of'
WHERE e.status = 'open' AND e.state->>'history_of' IS NOT NULL
  AND b.finished_at IS NOT NULL AND e.kafka_partition = ANY($1::int[])
LIMIT $2
FOR UPDATE OF e SKIP LOCKED
"""

RECORD_HISTORICAL = """
INSERT INTO historical_alert (alert_id, agency, cut_over, raised_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[])
ON CONFLICT (alert_id) DO NOTHING
"""

HISTORICAL_AMONG = """
SELECT alert_id::text FROM historical_alert WHERE alert_id = ANY($1::uuid[])
"""
