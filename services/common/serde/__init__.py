"""Serialisation, in one place: Avro single-object framing (``avro``), the agency event
(``agency_event``, and its JSON form ``agency_json``), the governance event
(``governance_event``: consent, agreements, episodes, grants, disclosures) and Kafka message
headers (``headers``). Writers of agency events go through ``services.common.event_log``;
the alert event's codec is the alert service's own (``services/alerts/codec.py``)."""
