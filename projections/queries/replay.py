"""Named SQL for `joinedup replay` and `joinedup what-if` (read only: nothing is written)."""

# Alerts the live read model holds as raised at or after a time, per rule.
RAISED_SINCE = """
SELECT a.rule_id, count(*) AS raised
FROM alert_history AS h JOIN alert AS a USING (alert_id)
WHERE h.action = 'raised' AND h.at >= $1
GROUP BY a.rule_id
"""

# How many events the archive holds for a topic (a what-if over the API is bounded by it).
ARCHIVED = "SELECT count(*) FROM event_archive WHERE kafka_topic = $1"

# Where the live pipeline stands on each partition: a history read from the log ends there.
CONSUMER_POSITIONS = """
SELECT partition, next_offset, anchor_digest FROM consumer_position
WHERE consumer = $1 AND topic = $2 ORDER BY partition
"""
