-- An event id is chosen by the agency that publishes the event, so it is unique within that
-- agency only. Everything that recognises an event by its id does so together with the
-- agency: one agency can neither block another's event (a 409 at the gateway) nor shadow it
-- (the archive keeping the first copy and silently dropping the other's).
ALTER TABLE ingest_receipt DROP CONSTRAINT ingest_receipt_pkey;
ALTER TABLE ingest_receipt ADD PRIMARY KEY (agency_id, event_id);

ALTER TABLE event_archive DROP CONSTRAINT event_archive_pkey;
ALTER TABLE event_archive ADD PRIMARY KEY (source_agency, event_id);

ALTER TABLE timeline_entry DROP CONSTRAINT timeline_entry_pkey;
ALTER TABLE timeline_entry
    ADD PRIMARY KEY (person_key, occurred_at, recorded_at, source_agency, event_id);

-- `set_by` is the agency that published the status change.
ALTER TABLE referral_history DROP CONSTRAINT referral_history_pkey;
ALTER TABLE referral_history ADD PRIMARY KEY (referral_id, set_by, event_id);

-- Markers remember events for rules: the agency is part of which event it was.
ALTER TABLE rule_marker ADD COLUMN agency text NOT NULL DEFAULT '';
ALTER TABLE rule_marker DROP CONSTRAINT rule_marker_pkey;
ALTER TABLE rule_marker ADD PRIMARY KEY (person_key, rule_id, role, agency, event_id);
