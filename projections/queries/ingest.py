"""Named SQL for the ingest gateway: credentials, agencies and idempotency receipts."""

# A credential works while not revoked (or inside its rotation grace period) and its agency
# is not disabled.
FIND_CREDENTIAL = """
SELECT c.credential_id, c.agency_id, c.last_used_at
FROM agency_credential c JOIN agency a USING (agency_id)
WHERE c.token_hash = $1 AND (c.revoked_at IS NULL OR c.revoked_at > now())
  AND a.disabled_at IS NULL
"""

# last_used_at is an operator's hint, not an audit trail: write it at most once a minute.
TOUCH_CREDENTIAL = """
UPDATE agency_credential SET last_used_at = now()
WHERE credential_id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""

INSERT_CREDENTIAL = """
INSERT INTO agency_credential (credential_id, agency_id, token_hash, label)
VALUES ($1, $2, $3, $4)
"""

AGENCY_EXISTS = "SELECT EXISTS (SELECT 1 FROM agency WHERE agency_id = $1)"

LIST_AGENCIES = """
SELECT a.agency_id, a.name, a.service_kind, a.created_at, a.disabled_at,
       count(c.credential_id) FILTER (
           WHERE c.revoked_at IS NULL OR c.revoked_at > now()) AS active_credentials,
       max(c.last_used_at) AS last_used_at
FROM agency a LEFT JOIN agency_credential c USING (agency_id)
GROUP BY a.agency_id ORDER BY a.agency_id
"""

LIST_CREDENTIALS = """
SELECT credential_id, agency_id, label, created_at, revoked_at, last_used_at
FROM agency_credential WHERE agency_id = $1 ORDER BY created_at
"""

# $2 NULL revokes every working credential of the agency.
REVOKE_CREDENTIALS = """
UPDATE agency_credential SET revoked_at = now()
WHERE agency_id = $1 AND ($2::uuid IS NULL OR credential_id = $2)
  AND (revoked_at IS NULL OR revoked_at > now())
RETURNING credential_id
"""

# Rotation: the credentials in use keep working until the grace period ends.
EXPIRE_CREDENTIALS = """
UPDATE agency_credential SET revoked_at = now() + $2::interval
WHERE agency_id = $1 AND revoked_at IS NULL
RETURNING credential_id
"""

# Each statement below runs on its own (autocommit): no transaction is held while producing.

# Event ids are the publishing agency's: a receipt is keyed by (agency, event id), so one
# agency's ids never block or shadow another's. Every statement below is for one agency ($1).

# Claim each new event id for this request as 'pending'. Returns only the ids this request now
# holds, with claimed_at as the claim's token for CLAIM_ACCEPTED / CLAIM_RELEASED. Ids are
# inserted in sorted order, so two batches sharing ids wait for each other, never deadlock.
CLAIM_EVENT_IDS = """
INSERT INTO ingest_receipt (agency_id, event_id, content_hash, state, claimed_at)
SELECT $1, id, hash, 'pending', now()
FROM unnest($2::uuid[], $3::text[]) AS c(id, hash) ORDER BY id
ON CONFLICT (agency_id, event_id) DO NOTHING
RETURNING event_id::text AS event_id, claimed_at
"""

# Take over pending claims of the same content older than $4 seconds: their request died.
TAKE_OVER_CLAIMS = """
UPDATE ingest_receipt r SET claimed_at = now()
FROM unnest($2::uuid[], $3::text[]) AS c(id, hash)
WHERE r.agency_id = $1 AND r.event_id = c.id AND r.content_hash = c.hash
  AND r.state = 'pending' AND r.claimed_at < now() - make_interval(secs => $4)
RETURNING r.event_id::text AS event_id, r.claimed_at
"""

# `stale`: a pending claim older than $3 seconds, which TAKE_OVER_CLAIMS may take.
SELECT_RECEIPTS = """
SELECT event_id::text AS event_id, content_hash, state, kafka_topic, kafka_partition,
       kafka_offset,
       state = 'pending' AND claimed_at < now() - make_interval(secs => $3) AS stale
FROM ingest_receipt WHERE agency_id = $1 AND event_id = ANY($2::uuid[])
"""

# Only our own claim (same token) turns accepted: a claim taken over is no longer ours.
CLAIM_ACCEPTED = """
UPDATE ingest_receipt r
SET state = 'accepted', kafka_topic = a.topic, kafka_partition = a.part, kafka_offset = a.off,
    accepted_at = now()
FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::int[], $6::bigint[])
    AS a(id, claimed_at, topic, part, off)
WHERE r.agency_id = $1 AND r.event_id = a.id AND r.claimed_at = a.claimed_at
  AND r.state = 'pending'
"""

# An accepted receipt whose record is no longer on the log (the log was replaced): claim it
# again for this request, from exactly the position it recorded, so the event is written again.
CLAIM_AGAIN = """
UPDATE ingest_receipt r
SET state = 'pending', claimed_at = now(), kafka_topic = NULL, kafka_partition = NULL,
    kafka_offset = NULL, accepted_at = NULL
FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[]) AS c(id, topic, part, off)
WHERE r.agency_id = $1 AND r.event_id = c.id AND r.state = 'accepted'
  AND r.kafka_topic = c.topic AND r.kafka_partition = c.part AND r.kafka_offset = c.off
RETURNING r.event_id::text AS event_id, r.claimed_at
"""

# The broker did not acknowledge: give the ids back, so a retry can claim them at once.
CLAIM_RELEASED = """
DELETE FROM ingest_receipt r
USING unnest($2::uuid[], $3::timestamptz[]) AS c(id, claimed_at)
WHERE r.agency_id = $1 AND r.event_id = c.id AND r.claimed_at = c.claimed_at
  AND r.state = 'pending'
"""
