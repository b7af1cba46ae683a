-- FHIR Task referrals (docs/formats-fhir.md): the latest version of each Task posted to the
-- gateway, as posted, for GET /fhir/Task. A read model the processor folds from the
-- referral events that carry a Task (services/ingest/formats/fhir/read_model.py), so it is
-- rebuilt from the log like every other. `referral_id` is `<requester>/Task/<task id>`:
-- Task ids are the requesting agency's own. `resource` holds identifier values (personal
-- data) like person_identifier does.
CREATE TABLE fhir_task (
    referral_id      text PRIMARY KEY,
    task_id          text        NOT NULL,
    requester_agency text        NOT NULL,
    owner_agency     text        NOT NULL,
    person_key       text        NOT NULL,
    status           text        NOT NULL,
    last_updated     timestamptz NOT NULL,   -- Task.lastModified of this version
    version_id       text        NOT NULL,   -- the event id of this version
    resource         jsonb       NOT NULL
);
-- The two ways an agency polls: Tasks it owns, Tasks it requested; in page order.
CREATE INDEX fhir_task_owner ON fhir_task (owner_agency, last_updated, referral_id);
CREATE INDEX fhir_task_requester ON fhir_task (requester_agency, last_updated, referral_id);
CREATE INDEX fhir_task_person ON fhir_task (person_key);
