"""Named SQL for rule state: expectations, markers and per-person routing facts."""

# Row locks: the deadline timer takes open expectations with SKIP LOCKED, so it never fires
# an expectation that the batch holding the lock is about to fulfil.
PERSON_EXPECTATIONS = """
SELECT state FROM expectation
WHERE person_key = ANY($1::text[])
  AND (status IN ('open', 'alerted') OR due_at IS NULL OR due_at > $2)
FOR UPDATE
"""

PERSON_MARKERS = """
SELECT state FROM rule_marker WHERE person_key = ANY($1::text[])
"""

PERSON_LEAD_TEAMS = """
SELECT person_key, lead_team, lead_team_since FROM person_rule_state
WHERE person_key = ANY($1::text[])
"""

UPSERT_EXPECTATIONS = """
INSERT INTO expectation (expectation_id, rule_id, person_key, trigger_event_id, due_at, status,
    state, kafka_partition, updated_at)
SELECT e.*, now() FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[],
    $6::text[], $7::jsonb[], $8::int[]) AS e
ON CONFLICT (expectation_id) DO UPDATE SET
    due_at = EXCLUDED.due_at, status = EXCLUDED.status, state = EXCLUDED.state,
    -- a regroup can file an expectation under another person (and partition) before the
    -- regroup of the person it was filed under has forgotten it
    person_key = EXCLUDED.person_key, kafka_partition = EXCLUDED.kafka_partition,
    updated_at = now()
"""

INSERT_MARKERS = """
INSERT INTO rule_marker (person_key, rule_id, role, agency, event_id, occurred_at, state)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[],
    $6::timestamptz[], $7::jsonb[])
ON CONFLICT DO NOTHING
"""

DELETE_MARKERS = """
DELETE FROM rule_marker AS m
USING unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[])
    AS d(person_key, rule_id, role, agency, event_id)
WHERE m.person_key = d.person_key AND m.rule_id = d.rule_id AND m.role = d.role
  AND m.agency = d.agency AND m.event_id = d.event_id
"""

UPSERT_LEAD_TEAMS = """
INSERT INTO person_rule_state (person_key, lead_team, lead_team_since)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT (person_key) DO UPDATE
    SET lead_team = EXCLUDED.lead_team, lead_team_since = EXCLUDED.lead_team_since
"""

# Per partition: only partitions this worker owns and has caught up on are asked, each with
# its own cut-off, so a worker replaying a backlog never fires a deadline that the person's
# next event in the backlog would have met. Expectations a backfill still holds
# (``history_of``, see queries/backfill.py) wait for its release instead.
DUE_EXPECTATIONS = """
SELECT e.state, e.kafka_partition FROM expectation AS e
JOIN unnest($1::int[], $2::timestamptz[]) AS c(kafka_partition, cutoff)
  ON e.kafka_partition = c.kafka_partition
WHERE e.status = 'open' AND e.due_at < c.cutoff AND e.state->>'history_of' IS NULL
ORDER BY e.due_at LIMIT $3
FOR UPDATE OF e SKIP LOCKED
"""

FORGET_RULE_STATE = """
WITH e AS (DELETE FROM expectation WHERE person_key = ANY($1::text[])),
     m AS (DELETE FROM rule_marker WHERE person_key = ANY($1::text[]))
DELETE FROM person_rule_state WHERE person_key = ANY($1::text[])
"""
