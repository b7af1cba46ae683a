"""Serialisation, in one place: Avro single-object framing (``avro``), the agency event
(``agency_event``), the alert event (``alert_event``) and Kafka message headers
(``headers``). Writers of agency events go through ``services.common.event_log``."""
