"""HMPPS domain events (prisons and probation) as published on their SNS topic: the SNS
envelope (``sns.py``), the mapping file and its loader (``mapping.toml``, ``mapping.py``),
the pure mapper (``mapper.py``), and the intake that reads them off Kafka (``intake.py``).
See docs/formats-hmpps.md."""
