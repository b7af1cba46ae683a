"""Named SQL for FHIR Task referrals: the ``fhir_task`` read model and the gateway's search."""

SELECT_TASKS = """
SELECT referral_id, task_id, requester_agency, owner_agency, person_key, status,
       last_updated, version_id, resource::text AS resource
FROM fhir_task WHERE referral_id = ANY($1::text[])
"""

# Only a newer version replaces a row (the fold decided; this keeps two writers honest).
UPSERT_TASKS = """
INSERT INTO fhir_task (referral_id, task_id, requester_agency, owner_agency, person_key,
                       status, last_updated, version_id, resource)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::text[], $9::jsonb[])
ON CONFLICT (referral_id) DO UPDATE SET
    owner_agency = EXCLUDED.owner_agency, person_key = EXCLUDED.person_key,
    status = EXCLUDED.status, last_updated = EXCLUDED.last_updated,
    version_id = EXCLUDED.version_id, resource = EXCLUDED.resource
WHERE (fhir_task.last_updated, fhir_task.version_id)
      < (EXCLUDED.last_updated, EXCLUDED.version_id)
"""

FORGET_TASKS = "DELETE FROM fhir_task WHERE person_key = ANY($1::text[])"

# Who may write a Task already known: its requester and its owner.
TASK_PARTIES = """
SELECT requester_agency, owner_agency FROM fhir_task WHERE referral_id = $1
"""

AGENCY_KINDS = """
SELECT agency_id, service_kind FROM agency WHERE agency_id = ANY($1::text[])
"""

# The Tasks an agency requested or owns ($1), with the search's filters (NULL: none).
_VISIBLE = """
FROM fhir_task
WHERE (requester_agency = $1 OR owner_agency = $1)
  AND ($2::text IS NULL OR owner_agency = $2)
  AND ($3::text IS NULL OR requester_agency = $3)
  AND ($4::timestamptz IS NULL OR last_updated > $4)
  AND ($5::timestamptz IS NULL OR last_updated >= $5)
  AND ($6::timestamptz IS NULL OR last_updated < $6)
  AND ($7::timestamptz IS NULL OR last_updated <= $7)
  AND ($8::text IS NULL OR status = $8)
"""

COUNT_TASKS = "SELECT count(*) " + _VISIBLE

# Keyset paging: the page after ($9, $10) in (last_updated, referral_id) order.
SEARCH_TASKS = ("SELECT resource::text AS resource, last_updated, referral_id " + _VISIBLE
                + """  AND ($9::timestamptz IS NULL OR (last_updated, referral_id) > ($9, $10))
ORDER BY last_updated, referral_id
LIMIT $11
""")

READ_TASK = """
SELECT resource::text AS resource FROM fhir_task
WHERE task_id = $2 AND (requester_agency = $1 OR owner_agency = $1)
ORDER BY requester_agency = $1 DESC LIMIT 1
"""
