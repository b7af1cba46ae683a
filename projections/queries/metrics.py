"""Named SQL for the worker's gauges read from PostgreSQL (refreshed on a cadence, never per
scrape). Each counts by a short label: a rule id, a status, or the dead-letter reason text
(mapped to a reason code in Python, so no free text reaches a metric label)."""

OPEN_EXPECTATIONS = """
SELECT rule_id, count(*) AS n FROM expectation WHERE status = 'open' GROUP BY rule_id
"""

ALERTS = "SELECT rule_id, status, count(*) AS n FROM alert GROUP BY rule_id, status"

DEAD_LETTERS = "SELECT reason, count(*) AS n FROM dead_letter GROUP BY reason"
