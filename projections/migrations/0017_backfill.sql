-- Onboarding backfill (issue 17, item 9): an agency joining uploads its history; its events
-- recorded before the cut-over are history (docs/backfill.md). One backfill per agency.
CREATE TABLE backfill (
    agency      text PRIMARY KEY,
    cut_over    timestamptz NOT NULL,  -- its events recorded before this are history
    opened_at   timestamptz NOT NULL DEFAULT now(),
    opened_by   text        NOT NULL,
    finished_at timestamptz,           -- the operator said the history is all uploaded
    finished_by text
);

-- An alert whose trigger is an agency's history and which was raised before its cut-over:
-- recorded and shown, never delivered to a duty team. Written wherever alert events are
-- recorded (live and rebuild alike), so a rebuild finds the same rows.
CREATE TABLE historical_alert (
    alert_id  uuid PRIMARY KEY,
    agency    text        NOT NULL,
    cut_over  timestamptz NOT NULL,
    raised_at timestamptz NOT NULL
);

-- Expectations held by a backfill (opened by history: judged once it is finished): the
-- deadline timer looks them up by agency on every tick of a finished backfill.
CREATE INDEX expectation_held ON expectation ((state->>'history_of'), kafka_partition)
    WHERE status = 'open' AND state->>'history_of' IS NOT NULL;
-- The timer's due query skips held expectations: without this index a year of held history,
-- all long past due, would be read and passed over on every tick.
CREATE INDEX expectation_due_unheld ON expectation (kafka_partition, due_at)
    WHERE status = 'open' AND state->>'history_of' IS NULL;
