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
SELECT person_key, lead_team FROM person_rule_state WHERE person_key = ANY($1::text[])
"""

UPSERT_EXPECTATIONS = """
INSERT INTO expectation (expectation_id, rule_id, person_key, trigger_event_id, due_at, status,
    state, updated_at)
SELECT e.*, now() FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[],
    $6::text[], $7::jsonb[]) AS e
ON CONFLICT (expectation_id) DO UPDATE SET
    due_at = EXCLUDED.due_at, status = EXCLUDED.status, state = EXCLUDED.state,
    updated_at = now()
"""

INSERT_MARKERS = """
INSERT INTO rule_marker (person_key, rule_id, role, event_id, occurred_at, state)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[],
    $6::jsonb[])
ON CONFLICT DO NOTHING
"""

DELETE_MARKERS = """
DELETE FROM rule_marker AS m
USING unnest($1::text[], $2::text[], $3::text[], $4::uuid[]) AS d(person_key, rule_id, role, event_id)
WHERE m.person_key = d.person_key AND m.rule_id = d.rule_id AND m.role = d.role
  AND m.event_id = d.event_id
"""

UPSERT_LEAD_TEAMS = """
INSERT INTO person_rule_state (person_key, lead_team)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (person_key) DO UPDATE SET lead_team = EXCLUDED.lead_team
"""

DUE_EXPECTATIONS = """
SELECT state FROM expectation
WHERE status = 'open' AND due_at < $1
ORDER BY due_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""
