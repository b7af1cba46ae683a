"""FHIR R4 Task referrals: a Task posted to the gateway becomes a ``referral.*`` event.

``statuses`` (the Task status table), ``systems`` (identifier and organisation URIs),
``task`` (Task -> event, pure), ``resources`` (OperationOutcome and searchset Bundle),
``read_model`` (the processor's ``fhir_task`` table, folded from the referral events),
``examples`` (for the OpenAPI document). The routes: services/ingest/entrypoints/fhir.py.
See docs/formats-fhir.md.
"""
