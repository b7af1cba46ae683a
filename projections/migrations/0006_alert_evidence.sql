-- A "stuck between services" alert is one per person and pair of services: later declines
-- join it as evidence events instead of raising another alert. The history keeps what each
-- event was (vocabulary words only) and which agency event it refers to; the alert keeps how
-- many events joined it and when the latest did.
ALTER TABLE alert_history ADD COLUMN event_id text;      -- resolving or evidence event
ALTER TABLE alert_history ADD COLUMN event_agency text;  -- its publishing agency, if known
ALTER TABLE alert_history ADD COLUMN detail text;

ALTER TABLE alert ADD COLUMN evidence_count int NOT NULL DEFAULT 0;
ALTER TABLE alert ADD COLUMN last_evidence_at timestamptz;
