-- Webhooks: each duty team's endpoints, their signing secrets, one delivery per endpoint and
-- alert event, and every attempt at it (services/alerts/webhooks). Deliveries come from the
-- team feed only (written by live processing), so a rebuild, replay or dry run sends nothing.

-- An endpoint follows its team's feed from a cursor (xid, seq): the feed is read in (xid, seq)
-- order, only rows of transactions older than every one still running (see team_feed). A new
-- endpoint starts at the feed's end: the oldest transaction still running when it is made, so
-- nothing committed after it is missed (and hardly anything that committed before is sent).
CREATE TABLE webhook_endpoint (
    endpoint_id     uuid PRIMARY KEY,
    team_id         text        NOT NULL REFERENCES team (team_id),
    url             text        NOT NULL CHECK (url ~ '^https?://'),
    -- Only the alert id, action, version and link: for receivers outside the agencies.
    signal_only     boolean     NOT NULL DEFAULT false,
    -- The feed actions sent; the others move the cursor and send nothing.
    actions         text[]      NOT NULL DEFAULT
        ARRAY['raised', 'escalated', 'resolved', 'reopened', 'unacknowledged', 'woke'],
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_at     timestamptz,
    disabled_reason text,
    last_xid        xid8        NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),
    last_seq        bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (enabled OR disabled_at IS NOT NULL)
);
CREATE INDEX webhook_endpoint_team ON webhook_endpoint (team_id);

-- Signing secrets, wrapped (AES-256-GCM) under the deployment's key-encryption key and bound
-- to their endpoint and id. Every secret not yet expired signs: a rotation gives the old one
-- an expiry, so for the overlap each request carries both signatures.
CREATE TABLE webhook_secret (
    secret_id   uuid PRIMARY KEY,
    endpoint_id uuid        NOT NULL REFERENCES webhook_endpoint (endpoint_id),
    wrapped     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz                            -- NULL: the current secret
);
CREATE INDEX webhook_secret_endpoint ON webhook_secret (endpoint_id, created_at);

-- One delivery per endpoint and alert event. Its id is the `webhook-id` header, the same on
-- every attempt. pending -> delivered | dead (the dead letter: every attempt failed; an
-- operator may redrive it) | cancelled (its endpoint was disabled). A pending delivery being
-- attempted has next_attempt_at moved past the attempt's deadline (a lease: a dispatcher
-- that dies mid-attempt leaves it to be tried again). `attempts` counts every attempt ever
-- (they are numbered by it); the schedule counts those since the last redrive.
-- A raised or escalated event that failed here is settled once no delivery of it to the
-- team is pending: handed over (to the fallback team) if none reached the team, or not.
CREATE TABLE webhook_delivery (
    delivery_id     uuid PRIMARY KEY,
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoint (endpoint_id),
    team_id         text        NOT NULL,
    alert_id        uuid        NOT NULL,
    alert_event_id  uuid        NOT NULL,
    action          text        NOT NULL,
    version         int         NOT NULL,
    recorded_at     timestamptz NOT NULL,              -- when the event reached the feed
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts        int         NOT NULL DEFAULT 0,
    redriven_after  int         NOT NULL DEFAULT 0,    -- attempts before the last redrive
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    reason          text,                              -- why dead or cancelled
    settled_at      timestamptz,
    handed_over     boolean,
    UNIQUE (endpoint_id, alert_event_id)
);
CREATE INDEX webhook_delivery_due ON webhook_delivery (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_delivery_event ON webhook_delivery (team_id, alert_event_id);
CREATE INDEX webhook_delivery_undeliverable ON webhook_delivery (team_id, alert_event_id)
    WHERE status IN ('dead', 'cancelled') AND settled_at IS NULL
      AND action IN ('raised', 'escalated');
CREATE INDEX webhook_delivery_endpoint ON webhook_delivery (endpoint_id, status, created_at);

-- Every attempt: when, how long, the status code or the class of failure (timeout, connect,
-- ...). Never a body, a header or a URL.
CREATE TABLE webhook_attempt (
    delivery_id  uuid        NOT NULL REFERENCES webhook_delivery (delivery_id),
    attempt      int         NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code  int,
    failure      text,
    duration_ms  int         NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
