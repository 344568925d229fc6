-- The workflow runtime: deals with their history, approval requests,
-- delegations, durable timers, the notification outbox, and idempotency
-- keys. Same rules as 0001: TEXT and BIGINT only, JSON as TEXT.

CREATE TABLE deals (
    id                TEXT PRIMARY KEY,
    funnel            TEXT NOT NULL,
    owner             TEXT NOT NULL,
    stage             TEXT NOT NULL,
    fields            TEXT NOT NULL,      -- JSON object
    context           TEXT NOT NULL,      -- JSON object: rep, customer, ... (facts beside the deal)
    stage_entered_at  TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    revision          BIGINT NOT NULL
);
CREATE INDEX deals_funnel_stage ON deals (funnel, stage);

CREATE TABLE deal_history (
    id       TEXT PRIMARY KEY,            -- ULID: the order things happened
    deal_id  TEXT NOT NULL,
    at       TEXT NOT NULL,
    type     TEXT NOT NULL,               -- created | update | move | action | action_failed | approval | timer | cancelled
    detail   TEXT NOT NULL,               -- JSON
    version  TEXT NOT NULL,               -- the pack version in force
    actor    TEXT NOT NULL                -- a token's subject, or "timer"
);
CREATE INDEX deal_history_deal ON deal_history (deal_id, id);

CREATE TABLE idempotency_keys (
    deal_id       TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        BIGINT NOT NULL,
    response      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (deal_id, key)
);

CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    deal_id     TEXT NOT NULL,
    policy      TEXT NOT NULL,
    level       TEXT NOT NULL,
    state       TEXT NOT NULL,            -- pending | approved | rejected | recalled
    submitter   TEXT NOT NULL,
    basis       TEXT NOT NULL,            -- JSON: the decision and the values its rules tested
    steps       TEXT NOT NULL,            -- JSON array of steps
    version     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    decided_at  TEXT
);
CREATE INDEX approvals_deal ON approvals (deal_id);
CREATE INDEX approvals_state ON approvals (state);

CREATE TABLE delegations (
    id          TEXT PRIMARY KEY,
    from_user   TEXT NOT NULL,
    to_user     TEXT NOT NULL,
    starts_on   TEXT NOT NULL,            -- YYYY-MM-DD, inclusive
    ends_on     TEXT NOT NULL,            -- YYYY-MM-DD, inclusive
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX delegations_from ON delegations (from_user);

CREATE TABLE timers (
    id           TEXT PRIMARY KEY,
    deal_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,           -- funnel | remind | escalate
    name         TEXT NOT NULL,           -- the funnel timer's id, or the approval policy
    stage        TEXT,                    -- the stage it belongs to (funnel timers)
    approval_id  TEXT,                    -- the approval it belongs to (SLA timers)
    due_at       TEXT NOT NULL,
    every_ms     BIGINT,                  -- repeating timers
    state        TEXT NOT NULL,           -- scheduled | fired | cancelled
    fired_at     TEXT,
    fired_by     TEXT,                    -- the node that fired it
    version      TEXT NOT NULL
);
CREATE INDEX timers_due ON timers (state, due_at);
CREATE INDEX timers_deal ON timers (deal_id, state);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    deal_id          TEXT,
    template         TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,       -- pending | sent | failed | held (no webhook configured)
    attempts         BIGINT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
