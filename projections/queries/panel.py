"""Named SQL for the multi-agency panel view (``services/alerts/entrypoints/panel.py``): the
people with working or repeated alerts in an area, and who leads on each. Every value is a
bound parameter."""

# The people of an area to talk about: anybody with an alert still being worked there, or
# with more than one alert there since $2 (repeated), longest open gap first; then each of
# their alerts there that is being worked or was raised since $2. $3 caps the people.
PANEL_ALERTS = """
WITH people AS (
    SELECT person_key,
           min(raised_at) FILTER (WHERE status <> 'resolved') AS oldest_open,
           max(raised_at) AS latest
    FROM alert
    WHERE area = $1 AND (status <> 'resolved' OR raised_at >= $2)
    GROUP BY person_key
    HAVING count(*) FILTER (WHERE status <> 'resolved') > 0
        OR count(*) FILTER (WHERE raised_at >= $2) > 1
    ORDER BY oldest_open NULLS LAST, latest DESC, person_key
    LIMIT $3
)
SELECT a.person_key, a.alert_id::text AS alert_id, a.rule_id, a.title, a.severity,
       a.status, a.team_id, t.name AS team_name, a.raised_at, a.resolved_at
FROM people p
JOIN alert a ON a.person_key = p.person_key AND a.area = $1
LEFT JOIN team t ON t.team_id = a.team_id
WHERE a.status <> 'resolved' OR a.raised_at >= $2
ORDER BY p.oldest_open NULLS LAST, p.latest DESC, p.person_key, a.raised_at, a.alert_id
"""

# Each person's lead professional as the rules know it (a team, or an agency when the
# event named no team), with the kind of service behind it.
LEAD_TEAMS = """
SELECT s.person_key, s.lead_team, coalesce(t.name, g.name, s.lead_team) AS lead_name,
       coalesce(t.agency_id, g.agency_id) AS agency_id, g.service_kind
FROM person_rule_state s
LEFT JOIN team t ON t.team_id = s.lead_team
LEFT JOIN agency g ON g.agency_id = coalesce(t.agency_id, s.lead_team)
WHERE s.person_key = ANY($1::text[]) AND s.lead_team IS NOT NULL
"""

# The areas a panel can be held for: those of the duty teams.
AREAS = """
SELECT DISTINCT area FROM team WHERE area IS NOT NULL AND area <> '' ORDER BY area
"""
