"""Named SQL for the read side: readers (teams, practitioners, tokens), the governance log,
the access audit, and a person's read models as a reader is shown them
(``0011_governance.sql``)."""

# --- readers -------------------------------------------------------------------------------

UPSERT_TEAM = """
INSERT INTO team (team_id, agency_id, name) VALUES ($1, $2, $3)
ON CONFLICT (team_id) DO UPDATE SET name = EXCLUDED.name
RETURNING team_id
"""

TEAMS = """
SELECT t.team_id, t.agency_id, t.name, count(p.practitioner_id) AS members
FROM team t LEFT JOIN practitioner p ON p.team_id = t.team_id AND p.disabled_at IS NULL
WHERE $1::text IS NULL OR t.agency_id = $1
GROUP BY t.team_id ORDER BY t.agency_id, t.team_id
"""

TEAM = "SELECT team_id, agency_id, name FROM team WHERE team_id = $1"

INSERT_PRACTITIONER = """
INSERT INTO practitioner (practitioner_id, username, agency_id, team_id, role, password_hash)
VALUES ($1, $2, $3, $4, $5, $6)
"""

PRACTITIONER_BY_USERNAME = """
SELECT practitioner_id::text AS practitioner_id, username, agency_id, team_id, role,
       password_hash, failed_sign_ins, locked_until, disabled_at
FROM practitioner WHERE username = $1
"""

PRACTITIONER_BY_ID = """
SELECT practitioner_id::text AS practitioner_id, username, agency_id, team_id, role,
       disabled_at
FROM practitioner WHERE practitioner_id = $1::uuid
"""

PRACTITIONERS = """
SELECT practitioner_id::text AS practitioner_id, username, agency_id, team_id, role,
       created_at, disabled_at
FROM practitioner WHERE $1::text IS NULL OR agency_id = $1
ORDER BY agency_id, username
"""

SIGNED_IN = """
UPDATE practitioner SET failed_sign_ins = 0, locked_until = NULL, password_hash = $2
WHERE practitioner_id = $1::uuid
"""

# Counts a failed sign-in; the `max_failures`-th locks the account for `lock_for`.
SIGN_IN_FAILED = """
UPDATE practitioner SET
    failed_sign_ins = failed_sign_ins + 1,
    locked_until = CASE WHEN failed_sign_ins + 1 >= $2 THEN now() + $3::interval
                        ELSE locked_until END
WHERE practitioner_id = $1::uuid
"""

SET_PASSWORD = """
UPDATE practitioner SET password_hash = $2, failed_sign_ins = 0, locked_until = NULL
WHERE username = $1 RETURNING practitioner_id::text
"""

DISABLE_PRACTITIONER = """
UPDATE practitioner SET disabled_at = now()
WHERE username = $1 AND disabled_at IS NULL RETURNING practitioner_id::text
"""

REVOKE_TOKENS_OF = """
UPDATE reader_token SET revoked_at = now()
WHERE practitioner_id = $1::uuid AND revoked_at IS NULL
"""

INSERT_TOKEN = """
INSERT INTO reader_token (token_hash, practitioner_id, expires_at)
VALUES ($1, $2::uuid, now() + $3::interval)
RETURNING expires_at
"""

# A working token's practitioner (an enabled account, a token not expired nor revoked).
READER_BY_TOKEN = """
SELECT p.practitioner_id::text AS practitioner_id, p.username, p.agency_id, p.team_id, p.role
FROM reader_token t JOIN practitioner p USING (practitioner_id)
WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
  AND p.disabled_at IS NULL
"""

REVOKE_TOKEN = "UPDATE reader_token SET revoked_at = now() WHERE token_hash = $1"

AGENCY_IDS = "SELECT agency_id FROM agency WHERE agency_id = ANY($1::text[])"

# --- the governance log --------------------------------------------------------------------

# One recorder of a person's governance events at a time (their refusal checks read the log).
LOCK_PERSON = "SELECT pg_advisory_xact_lock(hashtext('joinedup.governance.' || $1::text))"
LOCK_AGREEMENTS = "SELECT pg_advisory_xact_lock(hashtext('joinedup.governance.agreements'))"

RECORD_GOVERNANCE_EVENT = """
WITH recorded AS (
    INSERT INTO governance_event (event_id, event_type, person_id, recorded_at, agency_id, body)
    VALUES ($1::uuid, $2, $3::uuid, $4, $5, $6)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
)
INSERT INTO governance_outbox (event_id, key, body)
SELECT event_id, $7, $6 FROM recorded
"""

# A person's governance events, under every person id that resolves to them now.
PERSON_GOVERNANCE = """
SELECT g.body FROM governance_event g
JOIN person_index p ON p.person_id = g.person_id
WHERE p.current_id = $1::uuid
ORDER BY g.seq
"""

AGREEMENT_EVENTS = """
SELECT body FROM governance_event WHERE person_id IS NULL ORDER BY seq
"""

PENDING_GOVERNANCE_OUTBOX = """
SELECT event_id::text AS id, key, body FROM governance_outbox ORDER BY seq LIMIT $1
"""

CLEAR_GOVERNANCE_OUTBOX = "DELETE FROM governance_outbox WHERE event_id = ANY($1::uuid[])"

# --- the person ----------------------------------------------------------------------------

# The live person an id (perhaps merged since) resolves to.
CURRENT_PERSON = """
SELECT current_id::text FROM person_index WHERE person_id = $1::uuid
"""

# --- a person's read models, with what deciding visibility needs ---------------------------

# A page of the timeline after a cursor (occurred_at, recorded_at, event_id), in order.
TIMELINE_PAGE = """
SELECT occurred_at, recorded_at, event_id::text AS event_id, event_type, source_agency,
       service_kind, sensitivity, summary
FROM timeline_entry
WHERE person_key = $1
  AND ($2::timestamptz IS NULL
       OR (occurred_at, recorded_at, event_id) > ($2::timestamptz, $3::timestamptz, $4::uuid))
ORDER BY occurred_at, recorded_at, event_id
LIMIT $5
"""

TIMELINE_ENTRY = """
SELECT occurred_at, recorded_at, event_id::text AS event_id, event_type, source_agency,
       service_kind, sensitivity, summary
FROM timeline_entry WHERE person_key = $1 AND event_id = $2::uuid AND source_agency = $3
"""

CASELOAD = """
SELECT agency, service_kind, active, since, last_event_at, last_event_id::text AS last_event_id,
       ended_reason
FROM caseload WHERE person_key = $1 ORDER BY active DESC, since, agency
"""

# Referrals, each with the most sensitive category any of its events was recorded under.
REFERRALS = """
SELECT r.referral_id, r.from_agency, r.to_agency, r.to_service_kind, r.status, r.status_at,
       r.made_at, r.decline_reason, r.cites_service_kind, r.last_event_id::text AS last_event_id,
       coalesce(array_agg(DISTINCT t.sensitivity) FILTER (WHERE t.sensitivity IS NOT NULL),
                '{}') AS sensitivities
FROM referral r
LEFT JOIN referral_history h ON h.referral_id = r.referral_id
LEFT JOIN timeline_entry t ON t.person_key = r.person_key AND t.event_id = h.event_id
WHERE r.person_key = $1
GROUP BY r.referral_id
ORDER BY r.made_at NULLS LAST, r.referral_id
"""

# Open expectations with their trigger's agency and sensitivity (with the rule's category,
# they decide who may see that something is expected).
OPEN_EXPECTATIONS = """
SELECT e.expectation_id::text AS expectation_id, e.rule_id, e.due_at,
       e.state->>'title' AS title, e.state->>'expected' AS expected,
       e.state->>'severity' AS severity, e.state->>'duty_team' AS duty_team,
       e.trigger_event_id::text AS trigger_event_id,
       t.source_agency, t.service_kind, t.sensitivity, t.occurred_at
FROM expectation e
LEFT JOIN LATERAL (
    SELECT source_agency, service_kind, sensitivity, occurred_at FROM timeline_entry
    WHERE person_key = e.person_key AND event_id = e.trigger_event_id LIMIT 1) t ON true
WHERE e.person_key = $1 AND e.status = 'open'
ORDER BY e.due_at NULLS LAST, e.expectation_id
"""

ALERTS = """
SELECT a.alert_id::text AS alert_id, a.rule_id, a.severity, a.duty_team, a.title,
       a.explanation, a.expected, a.source_reference, a.status, a.raised_at, a.due_at,
       a.resolved_at, a.resolution, a.trigger_event_id::text AS trigger_event_id,
       t.source_agency, t.service_kind, t.sensitivity, t.occurred_at,
       r.sensitivity AS resolving_sensitivity, r.service_kind AS resolving_service_kind,
       h.alert_id IS NOT NULL AS historical
FROM alert a
LEFT JOIN historical_alert h ON h.alert_id = a.alert_id
LEFT JOIN LATERAL (
    SELECT source_agency, service_kind, sensitivity, occurred_at FROM timeline_entry
    WHERE person_key = a.person_key AND event_id = a.trigger_event_id LIMIT 1) t ON true
LEFT JOIN LATERAL (
    SELECT service_kind, sensitivity FROM timeline_entry
    WHERE person_key = a.person_key AND event_id = a.resolving_event_id LIMIT 1) r ON true
WHERE a.person_key = $1
ORDER BY a.raised_at, a.alert_id
"""

# --- the access audit ----------------------------------------------------------------------

AUDIT = """
INSERT INTO access_audit (reader_kind, agency_id, practitioner_id, team_id, role, operator,
                          action, person_id, purpose, outcome, detail)
VALUES ($1, $2, $3::uuid, $4, $5, $6, $7, $8::uuid, $9, $10, $11::jsonb)
"""

# Who looked at a person's records (under every person id that resolves to them now).
AUDIT_OF_PERSON = """
SELECT a.seq, a.at, a.reader_kind, a.agency_id, a.practitioner_id::text AS practitioner_id,
       pr.username, a.team_id, a.role, a.operator, a.action, a.purpose, a.outcome, a.detail
FROM access_audit a
LEFT JOIN practitioner pr ON pr.practitioner_id = a.practitioner_id
WHERE a.person_id IN (SELECT person_id FROM person_index WHERE current_id = $1::uuid)
ORDER BY a.seq
"""


# --- subject access ------------------------------------------------------------------------

# Every identifier the index gives the person (under every person id resolving to them).
IDENTIFIERS_OF_PERSON = """
SELECT i.scheme, i.value FROM person_index_identifier i
JOIN person_index p ON p.person_id = i.person_id
WHERE p.current_id = $1::uuid ORDER BY i.scheme, i.value
"""

ARCHIVED_BODIES = """
SELECT source_agency, event_id::text AS event_id, kafka_topic, archived_at, body
FROM event_archive WHERE person_key = $1 ORDER BY occurred_at, recorded_at, event_id
"""

ALL_TIMELINE = """
SELECT occurred_at, recorded_at, event_id::text AS event_id, event_type, source_agency,
       service_kind, sensitivity, summary
FROM timeline_entry WHERE person_key = $1 ORDER BY occurred_at, recorded_at, event_id
"""
