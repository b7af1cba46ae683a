"""Named SQL for reading timelines, referrals and caseloads."""

TIMELINE = """
SELECT occurred_at, recorded_at, event_id::text AS event_id, event_type, source_agency,
       service_kind, sensitivity, summary
FROM timeline_entry WHERE person_key = $1
ORDER BY occurred_at, recorded_at, event_id
"""

CASELOAD = """
SELECT agency, service_kind, active, since, ended_reason
FROM caseload WHERE person_key = $1 ORDER BY active DESC, since
"""

REFERRALS = """
SELECT referral_id, from_agency, to_agency, to_service_kind, status, status_at, decline_reason,
       cites_service_kind
FROM referral WHERE person_key = $1 ORDER BY made_at NULLS LAST, referral_id
"""

BUSIEST_PEOPLE = """
SELECT person_key, count(*) AS events, count(DISTINCT source_agency) AS agencies
FROM timeline_entry GROUP BY person_key
ORDER BY agencies DESC, events DESC, person_key LIMIT $1
"""
