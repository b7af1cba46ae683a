-- Duty teams: where alerts go (routes to teams), who works them (members, team tokens), the
-- alert's working state (team, tier, version, acknowledgement, assignee, snooze), the
-- wall-clock timers that escalate or reopen it, and each team's feed of what happened to its
-- alerts (what the live stream and the webhooks deliver).

-- A team covers an area (an ONS code, shown with its name) and escalates to another team: the
-- next tier. Routes and the fallback team decide where a new alert goes.
ALTER TABLE team ADD COLUMN area text;
ALTER TABLE team ADD COLUMN escalates_to text REFERENCES team (team_id);

-- Members of a team besides the practitioners whose own team it is (practitioner.team_id).
CREATE TABLE team_member (
    team_id         text        NOT NULL REFERENCES team (team_id),
    practitioner_id uuid        NOT NULL REFERENCES practitioner (practitioner_id),
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, practitioner_id)
);
CREATE INDEX team_member_practitioner ON team_member (practitioner_id);

-- Long-lived bearer tokens for a team's dispatch system (jdt_...; only SHA-256 kept).
CREATE TABLE team_token (
    token_hash text PRIMARY KEY,
    team_id    text        NOT NULL REFERENCES team (team_id),
    label      text        NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX team_token_team ON team_token (team_id);

-- Routes: what a rule names ('housing:E08000035', 'housing:*', a lead professional's team)
-- to the team that works it; '*' is the fallback team. Read when an alert is raised: a change
-- applies to new alerts only.
CREATE TABLE alert_route (
    route      text PRIMARY KEY,
    team_id    text        NOT NULL REFERENCES team (team_id),
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text        NOT NULL
);

-- Every change of a route or team set-up, who made it and when (never changed or removed).
CREATE TABLE duty_change (
    seq        bigserial PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text        NOT NULL,
    action     text        NOT NULL,   -- route-set, route-removed, member-added, ...
    subject    text        NOT NULL,   -- the route or team
    detail     text        NOT NULL DEFAULT ''
);
CREATE TRIGGER duty_change_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON duty_change
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_to_append_only();

-- The alert as a duty team works it. `version` counts the alert events folded into it: every
-- action names the version it was based on, and loses (409) if another came first.
ALTER TABLE alert ADD COLUMN version int NOT NULL DEFAULT 1;
ALTER TABLE alert ADD COLUMN team_id text;       -- the team working it now (NULL: unrouted)
ALTER TABLE alert ADD COLUMN tier int NOT NULL DEFAULT 1;
ALTER TABLE alert ADD COLUMN acknowledged_at timestamptz;
ALTER TABLE alert ADD COLUMN acknowledged_by text;
ALTER TABLE alert ADD COLUMN assignee text;
ALTER TABLE alert ADD COLUMN snoozed_until timestamptz;
ALTER TABLE alert ADD COLUMN area text;          -- where the trigger happened (a panel's area)
CREATE INDEX alert_team_working ON alert (team_id, status);
CREATE INDEX alert_area_working ON alert (area, status);

-- What each action said: the team it went to, the member assigned, until when, the comment
-- (sealed with the person's key: free text may name them).
ALTER TABLE alert_history ADD COLUMN team_id text;
ALTER TABLE alert_history ADD COLUMN tier int;
ALTER TABLE alert_history ADD COLUMN assignee text;
ALTER TABLE alert_history ADD COLUMN until timestamptz;
ALTER TABLE alert_history ADD COLUMN comment text;
ALTER TABLE alert_history ADD COLUMN version int;

-- Wall-clock timers, one per alert at most, written only by live processing (never by a
-- rebuild, replay or dry run): escalate an unacknowledged alert, reopen an acknowledgement
-- left too long, wake a snoozed alert. `version` is the alert's when the timer was set.
CREATE TABLE alert_timer (
    alert_id uuid PRIMARY KEY,
    kind     text        NOT NULL CHECK (kind IN ('escalate', 'acknowledgement', 'wake')),
    due_at   timestamptz NOT NULL,
    version  int         NOT NULL
);
CREATE INDEX alert_timer_due ON alert_timer (due_at);

-- Each team's feed: every alert event that reached the team (or took an alert away from it).
-- Written only by live processing. Readers (the live stream, webhook deliveries) read it in
-- (xid, seq) order and only rows of transactions older than every one still running
-- (xid < pg_snapshot_xmin): a row committed late with a smaller seq is never skipped, because
-- no transaction older than the snapshot's xmin can still write. The stream's event id is
-- "<xid>-<seq>" (Last-Event-ID resumes after it).
CREATE TABLE team_feed (
    seq            bigserial   PRIMARY KEY,
    xid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    team_id        text        NOT NULL,
    alert_id       uuid        NOT NULL,
    alert_event_id uuid        NOT NULL,
    action         text        NOT NULL,
    version        int         NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, alert_event_id)
);
CREATE INDEX team_feed_team ON team_feed (team_id, xid, seq);
CREATE INDEX team_feed_order ON team_feed (xid, seq);
