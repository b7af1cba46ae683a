"""Alerts: the alert event model and its ids (``events``), its Avro codec (``codec``), the
transactional outbox and its publisher (``outbox``), the alert read model and the one way
alert events are applied to it (``read_model``), and the alerts-topic projector
(``projector``). Routing and delivery to duty teams come here next."""
