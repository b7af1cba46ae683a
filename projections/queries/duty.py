"""Named SQL for duty teams: members and tokens, routes, the alert list, timers and the feed."""

# --- who works which team ------------------------------------------------------------------

MEMBER_TEAMS = """
SELECT team_id FROM team_member WHERE practitioner_id = $1::uuid
UNION
SELECT team_id FROM practitioner WHERE practitioner_id = $1::uuid AND team_id IS NOT NULL
"""

IS_MEMBER = """
SELECT EXISTS (
    SELECT 1 FROM practitioner p
    LEFT JOIN team_member m ON m.practitioner_id = p.practitioner_id AND m.team_id = $1
    WHERE p.username = $2 AND p.disabled_at IS NULL
      AND (p.team_id = $1 OR m.team_id IS NOT NULL))
"""

MEMBERS = """
SELECT p.username, p.role FROM practitioner p
WHERE p.disabled_at IS NULL AND (p.team_id = $1 OR EXISTS (
    SELECT 1 FROM team_member m WHERE m.team_id = $1 AND m.practitioner_id = p.practitioner_id))
ORDER BY p.username
"""

ADD_MEMBER = """
INSERT INTO team_member (team_id, practitioner_id)
SELECT $1, practitioner_id FROM practitioner WHERE username = $2
ON CONFLICT DO NOTHING
RETURNING practitioner_id
"""

REMOVE_MEMBER = """
DELETE FROM team_member m USING practitioner p
WHERE m.team_id = $1 AND m.practitioner_id = p.practitioner_id AND p.username = $2
RETURNING m.practitioner_id
"""

TEAM_BY_TOKEN = """
SELECT team_id, label FROM team_token WHERE token_hash = $1 AND revoked_at IS NULL
"""

ISSUE_TEAM_TOKEN = "INSERT INTO team_token (token_hash, team_id, label) VALUES ($1, $2, $3)"

REVOKE_TEAM_TOKENS = """
UPDATE team_token SET revoked_at = now()
WHERE team_id = $1 AND label = $2 AND revoked_at IS NULL
RETURNING token_hash
"""

TEAMS = """
SELECT team_id, agency_id, name, area, escalates_to FROM team
WHERE team_id = ANY($1::text[]) ORDER BY name, team_id
"""

ALL_TEAMS = """
SELECT team_id, agency_id, name, area, escalates_to FROM team ORDER BY agency_id, team_id
"""

SET_TEAM_AREA = "UPDATE team SET area = $2 WHERE team_id = $1 RETURNING team_id"
SET_TEAM_NAME = "UPDATE team SET name = $2 WHERE team_id = $1 RETURNING team_id"
SET_ESCALATION = "UPDATE team SET escalates_to = $2 WHERE team_id = $1 RETURNING team_id"

TEAM_NAME = "SELECT name FROM team WHERE team_id = $1"

ESCALATES_TO = "SELECT escalates_to FROM team WHERE team_id = $1"

# --- routes and the record of every change -------------------------------------------------

ROUTES = """
SELECT r.route, r.team_id, t.name, r.changed_at, r.changed_by
FROM alert_route r JOIN team t USING (team_id) ORDER BY r.route = '*', r.route
"""

FALLBACK_TEAM = "SELECT team_id FROM alert_route WHERE route = '*'"

SET_ROUTE = """
INSERT INTO alert_route (route, team_id, changed_by) VALUES ($1, $2, $3)
ON CONFLICT (route) DO UPDATE SET team_id = EXCLUDED.team_id, changed_at = now(),
    changed_by = EXCLUDED.changed_by
"""

REMOVE_ROUTE = "DELETE FROM alert_route WHERE route = $1 RETURNING team_id"

RECORD_CHANGE = """
INSERT INTO duty_change (changed_by, action, subject, detail) VALUES ($1, $2, $3, $4)
"""

CHANGES = """
SELECT seq, changed_at, changed_by, action, subject, detail FROM duty_change
ORDER BY seq DESC LIMIT $1
"""

# --- the alert list: most urgent first -----------------------------------------------------
# Urgency: open before acknowledged before snoozed before resolved; then severity; then the
# earliest deadline (or raise); the alert id breaks ties. The cursor is the last row's key.

_STATUS_RANK = """CASE a.status WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1
    WHEN 'snoozed' THEN 2 ELSE 3 END"""
_SEVERITY_RANK = """CASE a.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1
    WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END"""
_URGENCY = f"{_STATUS_RANK}, {_SEVERITY_RANK}, coalesce(a.due_at, a.raised_at), a.alert_id"

_ALERT_COLUMNS = """
    a.alert_id::text AS alert_id, a.person_key, a.rule_id, a.rule_version, a.severity,
    a.duty_team, a.title, a.explanation, a.source_reference,
    a.trigger_event_id::text AS trigger_event_id, a.expected, a.window_start, a.due_at,
    a.status, a.raised_at, a.resolved_at, a.resolution,
    a.resolving_event_id::text AS resolving_event_id, a.evidence_count, a.last_evidence_at,
    a.version, a.team_id, a.tier, a.acknowledged_at, a.acknowledged_by, a.assignee,
    a.snoozed_until, a.area"""

ALERT_PAGE = f"""
SELECT {_ALERT_COLUMNS}, t.name AS team_name, {_STATUS_RANK} AS status_rank,
    {_SEVERITY_RANK} AS severity_rank, coalesce(a.due_at, a.raised_at) AS urgent_at
FROM alert a LEFT JOIN team t ON t.team_id = a.team_id
WHERE a.team_id = ANY($1::text[])
  AND ($2::text[] IS NULL OR a.status = ANY($2::text[]))
  AND ($3::text[] IS NULL OR a.severity = ANY($3::text[]))
  AND ($4::text[] IS NULL OR a.rule_id = ANY($4::text[]))
  AND ($5::text IS NULL OR a.person_key = $5)
  AND ($6::int IS NULL OR ({_URGENCY}) > ($6::int, $7::int, $8::timestamptz, $9::uuid))
ORDER BY {_URGENCY}
LIMIT $10
"""

ALERT = f"""
SELECT {_ALERT_COLUMNS}, t.name AS team_name
FROM alert a LEFT JOIN team t ON t.team_id = a.team_id WHERE a.alert_id = $1::uuid
"""

# --- timers --------------------------------------------------------------------------------

DUE_TIMERS = """
SELECT alert_id::text AS alert_id FROM alert_timer WHERE due_at <= $1 ORDER BY due_at LIMIT $2
"""

# Taken with its alert already locked (every writer locks the alert, then its timer): still
# due, and not being fired by another duty service.
TAKE_DUE_TIMER = """
SELECT kind FROM alert_timer WHERE alert_id = $1::uuid AND due_at <= $2
FOR UPDATE SKIP LOCKED
"""

CLEAR_TIMER = "DELETE FROM alert_timer WHERE alert_id = $1::uuid"

POSTPONE_TIMER = "UPDATE alert_timer SET due_at = $2 WHERE alert_id = $1::uuid"

# --- the team feed (see 0013_duty_teams.sql: read in (xid, seq) order, settled rows only) --

FEED_AFTER = """
SELECT f.xid::text AS xid, f.seq, f.team_id, f.alert_id::text AS alert_id, f.action,
       f.version, f.recorded_at
FROM team_feed f
WHERE f.team_id = ANY($1::text[])
  AND (f.xid, f.seq) > ($2::xid8, $3::bigint)
  AND f.xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY f.xid, f.seq
LIMIT $4
"""

ALL_FEED_AFTER = """
SELECT f.xid::text AS xid, f.seq, f.team_id, f.alert_id::text AS alert_id, f.action,
       f.version, f.recorded_at
FROM team_feed f
WHERE (f.xid, f.seq) > ($1::xid8, $2::bigint)
  AND f.xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY f.xid, f.seq
LIMIT $3
"""

FEED_END = """
SELECT coalesce(max(xid)::text, '0') AS xid, coalesce(max(seq), 0) AS seq FROM team_feed
WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
"""
