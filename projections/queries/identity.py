"""Named SQL for the person index (``0010_person_index.sql``)."""

# Serialises the writers of one schema's person index, until their transaction ends.
LOCK = "SELECT pg_advisory_xact_lock(hashtext('joinedup.identity.' || current_schema()))"
# A reader waits for the writer in progress, if any, to end (taken and at once released).
AWAIT_WRITER = "SELECT pg_advisory_lock(hashtext('joinedup.identity.' || current_schema()))"
RELEASE = "SELECT pg_advisory_unlock(hashtext('joinedup.identity.' || current_schema()))"

RECORDED = "SELECT EXISTS (SELECT 1 FROM identity_change WHERE change_id = $1::uuid)"

CHANGES_AFTER = """
SELECT seq, body FROM identity_change WHERE seq > $1 ORDER BY seq
"""

RECORD_CHANGES = """
INSERT INTO identity_change (change_id, kind, decided_at, asserted_by, actor, reason, people,
                             body)
SELECT c.change_id, c.kind, c.decided_at, c.asserted_by, $5, $6,
       string_to_array(c.people, ',')::uuid[], c.body
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $7::text[], $8::bytea[])
    WITH ORDINALITY AS c(change_id, kind, decided_at, asserted_by, people, body, n)
ORDER BY c.n
RETURNING seq
"""

UPSERT_PEOPLE = """
INSERT INTO person_index (person_id, current_id, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[])
ON CONFLICT (person_id) DO UPDATE SET current_id = EXCLUDED.current_id
"""

UPSERT_IDENTIFIERS = """
INSERT INTO person_index_identifier (scheme, value, person_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
ON CONFLICT (scheme, value) DO UPDATE SET person_id = EXCLUDED.person_id
"""

# An erased person's identifiers leave the lookup with them.
FORGET_IDENTIFIERS = "DELETE FROM person_index_identifier WHERE person_id = ANY($1::uuid[])"

# The live person holding each identifier asked about (those the index holds).
OWNERS = """
SELECT i.scheme, i.value, i.person_id::text AS person_id
FROM person_index_identifier i
JOIN unnest($1::text[], $2::text[]) AS k(scheme, value) USING (scheme, value)
"""

PERSON = """
SELECT person_id::text AS person_id, current_id::text AS current_id, created_at
FROM person_index WHERE person_id = $1::uuid
"""

IDENTIFIERS_OF = """
SELECT scheme, value FROM person_index_identifier WHERE person_id = $1::uuid
ORDER BY scheme, value
"""

# Every change that concerns any of these person ids, oldest first.
CHANGES_OF = """
SELECT seq, decided_at, kind, asserted_by, actor, reason, body FROM identity_change
WHERE people && $1::uuid[] ORDER BY seq
"""

# The person ids that resolve to this one now (itself, and those merged into it).
MERGED_INTO = """
SELECT person_id::text AS person_id FROM person_index WHERE current_id = $1::uuid
ORDER BY created_at, person_id
"""

# Those of these person ids that are live (not merged into another).
LIVE = """
SELECT person_id::text AS person_id FROM person_index
WHERE person_id = ANY($1::uuid[]) AND current_id = person_id
"""

# Who holds an identifier (a local id as <agency>/<value>).
PERSON_BY_IDENTIFIER = """
SELECT person_id::text FROM person_index_identifier WHERE scheme = $1 AND value = $2
"""
