"""Named SQL for `joinedup rebuild` (run with the shadow schema first on the search path)."""

# The read models to (re)build: catching up again, from where each partition stopped.
CATCH_UP_AGAIN = """
WITH named AS (SELECT unnest($1::text[]) AS name),
registered AS (
    INSERT INTO read_model (name, status) SELECT name, 'catching-up' FROM named
    ON CONFLICT (name) DO UPDATE SET status = 'catching-up', live_since = NULL
)
UPDATE read_model_position SET next_offset = NULL
WHERE read_model IN (SELECT name FROM named)
"""

ARCHIVED = "SELECT count(*) FROM event_archive WHERE kafka_topic = $1"

# Events already rebuilt, over every read model being rebuilt (a resumed run starts there).
REBUILT = """
SELECT sum(n) FROM (
    SELECT (SELECT count(*) FROM event_archive AS a
            WHERE a.kafka_topic = p.topic AND a.kafka_partition = p.partition
              AND a.seq <= p.archive_seq) AS n
    FROM read_model_position AS p WHERE p.topic = $1 AND p.read_model = ANY($2::text[])
) AS done
"""

PARTITIONS = "SELECT partition FROM consumer_position WHERE consumer = $1 AND topic = $2"

COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position
"""

# The switch holds the live pipeline still: its batches lock these rows FOR SHARE first.
HOLD_LIVE = "SELECT name FROM read_model WHERE name = ANY($1::text[]) FOR UPDATE"

FORGET_LIVE_POSITIONS = "DELETE FROM read_model_position WHERE read_model = ANY($1::text[])"

NEW_GENERATION = """
UPDATE read_model SET generation = generation + 1, status = 'live', live_since = now()
WHERE name = ANY($1::text[])
"""

ARCHIVED_PARTITIONS = """
SELECT DISTINCT kafka_partition FROM event_archive WHERE kafka_topic = $1 ORDER BY 1
"""

# --- rebuilding from the Kafka log -----------------------------------------------------------

# Whether a table exists (a schema-qualified, quoted name): the shadow of a rebuild from the
# log has its own event archive.
TABLE_EXISTS = "SELECT to_regclass($1) IS NOT NULL"

# Any progress from the archive: a shadow built from it cannot go on from the log.
ARCHIVE_PROGRESS = "SELECT EXISTS (SELECT 1 FROM read_model_position WHERE archive_seq > 0)"

# The log records to read (up to where the live pipeline stands) and those read so far,
# over every read model being rebuilt.
LOG_TOTAL = """
SELECT COALESCE(sum(next_offset), 0) FROM consumer_position WHERE consumer = $1 AND topic = $2
"""

LOG_REBUILT = """
SELECT COALESCE(sum(log_offset), 0) FROM read_model_position
WHERE topic = $1 AND read_model = ANY($2::text[])
"""

# The duty teams' work on alerts (actions and timers: history rows with the version they
# were based on) that the live history holds and the shadow's lacks; `{live}` is the live
# schema, quoted by the caller (identifiers cannot be bound). Oldest first per alert.
DUTY_WORK_TO_CARRY = """
SELECT h.alert_event_id::text AS alert_event_id, h.alert_id::text AS alert_id, h.action,
       h.at, h.actor, h.resolution, h.detail, h.team_id, h.tier, h.assignee, h.until,
       h.comment, h.version
FROM {live}.alert_history AS h
WHERE h.version IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM alert_history AS s WHERE s.alert_event_id = h.alert_event_id)
ORDER BY h.alert_id, h.version
"""

# A rebuild routes a raise again with today's routes; the team the live raise went to (the
# routes of its day) is kept. Unqualified names are the shadow's.
KEEP_RAISED_TEAMS = """
WITH kept AS (
    UPDATE alert_history AS s SET team_id = l.team_id
    FROM {live}.alert_history AS l
    WHERE s.alert_event_id = l.alert_event_id AND s.action = 'raised'
      AND l.team_id IS NOT NULL AND s.team_id IS DISTINCT FROM l.team_id
    RETURNING s.alert_id, l.team_id
)
UPDATE alert AS a SET team_id = kept.team_id FROM kept WHERE a.alert_id = kept.alert_id
"""

# The switch takes the live alerts from under the duty desk: its actions wait for it.
HOLD_LIVE_ALERTS = "LOCK TABLE {live}.alert IN EXCLUSIVE MODE"
