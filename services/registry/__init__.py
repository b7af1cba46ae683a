"""The read-only Confluent Schema Registry subset the gateway serves (``http.py``) and the
``joinedup schema-registry`` and ``joinedup asyncapi`` commands (``cli.py``). The table they
serve is ``services/common/schema_registry.py``; the framing, ``services/common/serde``."""
