"""Named SQL for investigations of one person (`joinedup explain|as-of|replay-person`)."""

# The person ids that resolve to this one now (itself, and those merged into it).
PEOPLE_OF = """
SELECT person_id::text AS person_id FROM person_index WHERE current_id = $1::uuid
ORDER BY created_at, person_id
"""

# A person's archived events in the order the live pipeline applied them (`seq`), known to
# joinedup by $2 (NULL: all): recorded by the agency and archived by joinedup at or before it.
KNOWN_EVENTS = """
SELECT seq, body, person_key, archived_at FROM event_archive
WHERE person_key = ANY($1::text[])
  AND ($2::timestamptz IS NULL OR (recorded_at <= $2 AND archived_at <= $2))
ORDER BY seq
"""

# The possible matches the identity step reported for these person ids (people it would
# not merge), with when it decided; only those decided by $2 (NULL: all).
POSSIBLE_MATCHES = """
SELECT people::text[] AS people, decided_at FROM identity_change
WHERE kind = 'possible_match' AND people && $1::uuid[]
  AND ($2::timestamptz IS NULL OR decided_at <= $2)
ORDER BY seq
"""

CURRENT_OF = """
SELECT person_id::text AS person_id, current_id::text AS current_id FROM person_index
WHERE person_id = ANY($1::uuid[])
"""

# The duty teams' actions on these alerts up to $2 (the rules' raise and resolve are folded
# again from the events; what people did is only in the history).
DUTY_ACTIONS = """
SELECT alert_id::text AS alert_id, action, at, actor FROM alert_history
WHERE alert_id = ANY($1::uuid[]) AND at <= $2
  AND action NOT IN ('raised', 'resolved', 'evidence')
ORDER BY at, alert_event_id
"""

# --- what the live read models hold for a person (replay-person compares) ------------------

LIVE_TIMELINE = """
SELECT source_agency, event_id::text AS event_id, event_type, occurred_at, recorded_at,
       service_kind, sensitivity, summary
FROM timeline_entry WHERE person_key = $1
"""

LIVE_CASELOAD = """
SELECT agency, service_kind, active, since, last_event_at, last_event_id::text AS last_event_id,
       ended_reason
FROM caseload WHERE person_key = $1
"""

LIVE_REFERRALS = """
SELECT referral_id, from_agency, to_agency, to_service_kind, status, status_at,
       last_event_id::text AS last_event_id
FROM referral WHERE person_key = $1
"""

LIVE_EXPECTATIONS = """
SELECT expectation_id::text AS expectation_id, rule_id, status
FROM expectation WHERE person_key = $1
"""
