"""Named SQL for webhooks (``0014_webhooks.sql``): endpoints and their secrets, following the
team feed, claiming and settling deliveries, and the dead letter.

xid8 values travel as text (``::text`` out, ``$n::text::xid8`` in): the driver has no codec
of its own for them.
"""

# --- endpoints and secrets (the operator's commands) -----------------------------------------

TEAM_EXISTS = "SELECT EXISTS (SELECT 1 FROM team WHERE team_id = $1)"

# Who changed a team's webhooks, and how (the duty teams' append-only change log).
RECORD_CHANGE = """
INSERT INTO duty_change (changed_by, action, subject, detail) VALUES ($1, $2, $3, $4)
"""

INSERT_ENDPOINT = """
INSERT INTO webhook_endpoint (endpoint_id, team_id, url, signal_only, actions)
VALUES ($1::uuid, $2, $3, $4, $5::text[])
"""

INSERT_SECRET = """
INSERT INTO webhook_secret (secret_id, endpoint_id, wrapped) VALUES ($1::uuid, $2::uuid, $3)
"""

# The endpoint's live secrets stop signing after the overlap ($2); one already due to stop
# sooner keeps its own expiry.
EXPIRE_SECRETS = """
UPDATE webhook_secret SET expires_at = now() + $2::interval
WHERE endpoint_id = $1::uuid AND (expires_at IS NULL OR expires_at > now() + $2::interval)
"""

ENDPOINT = """
SELECT endpoint_id::text AS endpoint_id, team_id, url, signal_only, actions, enabled,
       disabled_at, disabled_reason
FROM webhook_endpoint WHERE endpoint_id = $1::uuid
"""

ENDPOINTS = """
SELECT e.endpoint_id::text AS endpoint_id, e.team_id, e.url, e.signal_only, e.actions,
       e.enabled, e.disabled_at, e.disabled_reason, e.created_at,
       (SELECT count(*) FROM webhook_secret s WHERE s.endpoint_id = e.endpoint_id
          AND (s.expires_at IS NULL OR s.expires_at > now())) AS live_secrets,
       (SELECT count(*) FROM webhook_delivery d WHERE d.endpoint_id = e.endpoint_id
          AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM webhook_delivery d WHERE d.endpoint_id = e.endpoint_id
          AND d.status = 'dead') AS dead
FROM webhook_endpoint e
WHERE $1::text IS NULL OR e.team_id = $1
ORDER BY e.team_id, e.created_at
"""

DISABLE_ENDPOINT = """
UPDATE webhook_endpoint SET enabled = false, disabled_at = $2, disabled_reason = $3
WHERE endpoint_id = $1::uuid AND enabled
RETURNING team_id
"""

# Enabled again, it starts at the feed's end (as a new endpoint does): what happened while it
# was disabled is not sent (its pending deliveries were cancelled then).
ENABLE_ENDPOINT = """
UPDATE webhook_endpoint SET enabled = true, disabled_at = NULL, disabled_reason = NULL,
    last_xid = pg_snapshot_xmin(pg_current_snapshot()), last_seq = 0
WHERE endpoint_id = $1::uuid AND NOT enabled
RETURNING team_id
"""

CANCEL_PENDING = """
UPDATE webhook_delivery SET status = 'cancelled', finished_at = $2, reason = $3
WHERE endpoint_id = $1::uuid AND status = 'pending'
RETURNING delivery_id
"""

DELIVERIES = """
SELECT d.delivery_id::text AS delivery_id, d.alert_id::text AS alert_id, d.action, d.version,
       d.status, d.attempts, d.next_attempt_at, d.created_at, d.finished_at, d.reason,
       d.handed_over,
       (SELECT coalesce(a.status_code::text, a.failure) FROM webhook_attempt a
        WHERE a.delivery_id = d.delivery_id ORDER BY a.attempt DESC LIMIT 1) AS last_answer
FROM webhook_delivery d
WHERE d.endpoint_id = $1::uuid AND ($2::text IS NULL OR d.status = $2)
ORDER BY d.created_at DESC, d.recorded_at DESC
LIMIT $3
"""

ATTEMPTS = """
SELECT attempt, attempted_at, status_code, failure, duration_ms
FROM webhook_attempt WHERE delivery_id = $1::uuid ORDER BY attempt
"""

# A dead delivery back to pending, due at once, with the whole schedule before it again.
REDRIVE = """
UPDATE webhook_delivery d SET status = 'pending', next_attempt_at = $2, finished_at = NULL,
    reason = NULL, redriven_after = d.attempts
FROM webhook_endpoint e
WHERE d.delivery_id = $1::uuid AND d.status = 'dead' AND e.endpoint_id = d.endpoint_id
  AND e.enabled
RETURNING d.team_id
"""

# --- following the team feed -----------------------------------------------------------------

# Rows of transactions older than this have all committed or aborted: the feed is read below it.
FEED_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"

# Enabled endpoints whose team's feed has rows past their cursor and below the horizon ($1).
ENDPOINTS_BEHIND = """
SELECT e.endpoint_id::text AS endpoint_id
FROM webhook_endpoint e
WHERE e.enabled AND EXISTS (
    SELECT 1 FROM team_feed f
    WHERE f.team_id = e.team_id AND (f.xid, f.seq) > (e.last_xid, e.last_seq)
      AND f.xid < $1::text::xid8)
"""

# The endpoint, locked for its cursor's move (another dispatcher moving it is skipped).
LOCK_ENDPOINT = """
SELECT team_id, actions, last_xid::text AS last_xid, last_seq
FROM webhook_endpoint WHERE endpoint_id = $1::uuid AND enabled
FOR UPDATE SKIP LOCKED
"""

FEED_AFTER = """
SELECT xid::text AS xid, seq, alert_id::text AS alert_id,
       alert_event_id::text AS alert_event_id, action, version, recorded_at
FROM team_feed
WHERE team_id = $1 AND (xid, seq) > ($2::text::xid8, $3::bigint) AND xid < $4::text::xid8
ORDER BY xid, seq
LIMIT $5
"""

INSERT_DELIVERIES = """
INSERT INTO webhook_delivery (delivery_id, endpoint_id, team_id, alert_id, alert_event_id,
                              action, version, recorded_at, next_attempt_at, created_at)
SELECT d, $2::uuid, $3, a, e, act, v, r, $9, $9
FROM unnest($1::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::int[], $8::timestamptz[])
     AS t (d, a, e, act, v, r)
ON CONFLICT (endpoint_id, alert_event_id) DO NOTHING
"""

MOVE_CURSOR = """
UPDATE webhook_endpoint SET last_xid = $2::text::xid8, last_seq = $3
WHERE endpoint_id = $1::uuid
"""

# --- attempts --------------------------------------------------------------------------------

# Pending deliveries due by $1 on enabled endpoints, at most $3, leased until $2 (an attempt
# counted now: one that a dying dispatcher may have sent counts too).
CLAIM_DUE = """
WITH due AS (
    SELECT d.delivery_id
    FROM webhook_delivery d JOIN webhook_endpoint e ON e.endpoint_id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled
    ORDER BY d.next_attempt_at, d.recorded_at
    LIMIT $3
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_delivery d SET attempts = d.attempts + 1, next_attempt_at = $2
FROM due, webhook_endpoint e
WHERE d.delivery_id = due.delivery_id AND e.endpoint_id = d.endpoint_id
RETURNING d.delivery_id::text AS delivery_id, d.endpoint_id::text AS endpoint_id, d.team_id,
          d.alert_id::text AS alert_id, d.alert_event_id::text AS alert_event_id, d.action,
          d.version, d.recorded_at, d.attempts, d.attempts - d.redriven_after AS this_round,
          e.url, e.signal_only
"""

LIVE_SECRETS = """
SELECT secret_id::text AS secret_id, endpoint_id::text AS endpoint_id, wrapped
FROM webhook_secret
WHERE endpoint_id = ANY($1::uuid[]) AND (expires_at IS NULL OR expires_at > $2)
ORDER BY endpoint_id, created_at DESC
"""

ALERT_VIEWS = """
SELECT a.alert_id::text AS alert_id, a.team_id, t.name AS team_name, a.severity, a.rule_id,
       a.title, a.explanation, a.source_reference, a.due_at, a.raised_at, a.status,
       a.person_key
FROM alert a LEFT JOIN team t ON t.team_id = a.team_id
WHERE a.alert_id = ANY($1::uuid[])
"""

RECORD_ATTEMPT = """
INSERT INTO webhook_attempt (delivery_id, attempt, attempted_at, status_code, failure,
                             duration_ms)
VALUES ($1::uuid, $2, $3, $4, $5, $6)
ON CONFLICT (delivery_id, attempt) DO NOTHING
"""

DELIVERED = """
UPDATE webhook_delivery SET status = 'delivered', finished_at = $2
WHERE delivery_id = $1::uuid AND status = 'pending'
"""

RETRY_AT = """
UPDATE webhook_delivery SET next_attempt_at = $2
WHERE delivery_id = $1::uuid AND status = 'pending'
"""

DEAD = """
UPDATE webhook_delivery SET status = 'dead', finished_at = $2, reason = $3
WHERE delivery_id = $1::uuid AND status = 'pending'
"""

# --- undeliverable alerts --------------------------------------------------------------------

# Raised or escalated events that failed on some endpoint and are not settled, once none of
# their deliveries to the team is pending; `delivered`: whether any endpoint of it got it.
UNSETTLED = """
SELECT d.team_id, d.alert_id::text AS alert_id, d.alert_event_id::text AS alert_event_id,
       bool_or(d.status = 'delivered') AS delivered
FROM webhook_delivery d
WHERE (d.team_id, d.alert_event_id) IN (
    SELECT team_id, alert_event_id FROM webhook_delivery
    WHERE status IN ('dead', 'cancelled') AND settled_at IS NULL
      AND action IN ('raised', 'escalated'))
GROUP BY d.team_id, d.alert_id, d.alert_event_id
HAVING NOT bool_or(d.status = 'pending')
LIMIT $1
"""

SETTLE = """
UPDATE webhook_delivery SET settled_at = $3, handed_over = $4
WHERE team_id = $1 AND alert_event_id = $2::uuid AND status IN ('dead', 'cancelled')
  AND settled_at IS NULL
"""
