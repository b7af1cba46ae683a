"""Named SQL for the alert outbox and the alert read model."""

ADD_TO_OUTBOX = """
INSERT INTO alert_outbox (alert_event_id, person_key, body)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])
ON CONFLICT DO NOTHING
"""

PENDING_OUTBOX = """
SELECT alert_event_id::text AS id, person_key AS key, body
FROM alert_outbox ORDER BY seq LIMIT $1
"""

CLEAR_OUTBOX = "DELETE FROM alert_outbox WHERE alert_event_id = ANY($1::uuid[])"

# Returns the alert events not seen before: the rest were projected already.
RECORD_HISTORY = """
INSERT INTO alert_history (alert_event_id, alert_id, action, at, actor, resolution, event_id,
    event_agency, detail, team_id, tier, assignee, until, comment, version)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[],
    $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[],
    $13::timestamptz[], $14::text[], $15::int[])
ON CONFLICT DO NOTHING
RETURNING alert_event_id::text AS alert_event_id
"""

# One alert's life in the order it happened: a raise and a resolution may share an instant
# (a fulfilment known before its trigger), and the raise reads first; a duty team's actions
# in one instant read in the order of the versions they were based on.
ALERT_HISTORY = """
SELECT alert_event_id::text AS alert_event_id, action, at, actor, resolution, event_id,
       event_agency, detail, team_id, tier, assignee, until, comment, version
FROM alert_history WHERE alert_id = $1
ORDER BY at, CASE WHEN action = 'raised' THEN 0 WHEN action = 'resolved' AND version IS NULL
              THEN 2 ELSE 1 END, version, alert_event_id
"""

# The alerts a batch of alert events folds into, locked (in id order: see the caller).
ALERTS_TO_FOLD = """
SELECT alert_id::text AS alert_id, person_key, rule_id, rule_version, severity, duty_team,
       title, explanation, source_reference, trigger_event_id::text AS trigger_event_id,
       expected, window_start, due_at, status, raised_at, resolved_at, resolution,
       resolving_event_id::text AS resolving_event_id, evidence_count, last_evidence_at,
       version, team_id, tier, acknowledged_at, acknowledged_by, assignee, snoozed_until, area
FROM alert WHERE alert_id = ANY($1::uuid[]) ORDER BY alert_id
FOR UPDATE
"""

# The fold's results: what a raise fixes is written once; what later events change, always.
SAVE_ALERTS = """
INSERT INTO alert (alert_id, person_key, rule_id, rule_version, severity, duty_team, title,
    explanation, source_reference, trigger_event_id, expected, window_start, due_at, status,
    raised_at, resolved_at, resolution, resolving_event_id, evidence_count, last_evidence_at,
    version, team_id, tier, acknowledged_at, acknowledged_by, assignee, snoozed_until, area)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::uuid[], $11::text[], $12::timestamptz[],
    $13::timestamptz[], $14::text[], $15::timestamptz[], $16::timestamptz[], $17::text[],
    $18::uuid[], $19::int[], $20::timestamptz[], $21::int[], $22::text[], $23::int[],
    $24::timestamptz[], $25::text[], $26::text[], $27::timestamptz[], $28::text[])
ON CONFLICT (alert_id) DO UPDATE SET
    person_key = EXCLUDED.person_key, status = EXCLUDED.status,
    resolved_at = EXCLUDED.resolved_at,
    resolution = EXCLUDED.resolution, resolving_event_id = EXCLUDED.resolving_event_id,
    evidence_count = EXCLUDED.evidence_count, last_evidence_at = EXCLUDED.last_evidence_at,
    version = EXCLUDED.version, team_id = EXCLUDED.team_id, tier = EXCLUDED.tier,
    acknowledged_at = EXCLUDED.acknowledged_at, acknowledged_by = EXCLUDED.acknowledged_by,
    assignee = EXCLUDED.assignee, snoozed_until = EXCLUDED.snoozed_until,
    projected_at = now()
"""

ALERTS_FOR_PERSON = """
SELECT alert_id::text AS alert_id, rule_id, severity, duty_team, title, status, raised_at,
       due_at, resolved_at, resolution, expected, evidence_count
FROM alert WHERE person_key = $1 ORDER BY raised_at, alert_id
"""

# Alerts being worked, by the team working them (its display name; routed or not yet).
OPEN_ALERTS_BY_TEAM = """
SELECT coalesce(t.name, 'not yet routed (' || a.duty_team || ')') AS team, a.severity,
       count(*) AS alerts
FROM alert a LEFT JOIN team t ON t.team_id = a.team_id
WHERE a.status <> 'resolved' GROUP BY 1, 2 ORDER BY 1, 2
"""

ALERTS_BY_RULE = """
SELECT rule_id, count(*) AS raised, count(*) FILTER (WHERE status = 'resolved') AS resolved
FROM alert GROUP BY rule_id ORDER BY raised DESC, rule_id
"""

PEOPLE_WITH_MOST_ALERTS = """
SELECT person_key FROM alert GROUP BY person_key
ORDER BY count(DISTINCT rule_id) DESC, count(*) DESC, person_key LIMIT $1
"""

# The alerts a regroup brings in line: those of the people regrouped, and those of the
# expectations the person now has (wherever they were filed before).
ALERTS_TO_RECONCILE = """
SELECT alert_id::text AS alert_id, person_key, status FROM alert
WHERE person_key = ANY($1::text[]) OR alert_id = ANY($2::uuid[])
ORDER BY alert_id
"""

# --- routing (services/alerts/routing.py) -------------------------------------------------

ROUTES = "SELECT route, team_id FROM alert_route"
TEAM_IDS = "SELECT team_id FROM team"

# --- live delivery: timers and the team feed (written only by live processing) ------------

SET_TIMERS = """
INSERT INTO alert_timer (alert_id, kind, due_at, version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[])
ON CONFLICT (alert_id) DO UPDATE SET kind = EXCLUDED.kind, due_at = EXCLUDED.due_at,
    version = EXCLUDED.version
"""

CLEAR_TIMERS = "DELETE FROM alert_timer WHERE alert_id = ANY($1::uuid[])"

ADD_TO_FEED = """
INSERT INTO team_feed (team_id, alert_id, alert_event_id, action, version)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::int[])
ON CONFLICT DO NOTHING
"""
