"""Named SQL for erasure (``services/reads/erasure.py``)."""

IDENTIFIERS_HELD = """
SELECT count(*) FROM person_index_identifier WHERE person_id = ANY($1::uuid[])
"""

# The processor's sightings hold identifier values in the clear.
FORGET_SIGHTINGS = "DELETE FROM person_identifier WHERE person_key = ANY($1::text[])"

# FHIR Tasks as posted (for agencies' searches) name the patient's identifiers.
FORGET_FHIR_TASKS = "DELETE FROM fhir_task WHERE person_key = ANY($1::text[])"

# What a rebuild from the archive gives for events that open as erased.
ERASE_TIMELINE = """
UPDATE timeline_entry SET summary = 'Erased'
WHERE person_key = ANY($1::text[]) AND summary <> 'Erased'
"""
