-- Paying people from the deals the server holds: the roster (effective-
-- dated versions of each person), incentive runs and the statements they
-- computed. Same rules as 0001: TEXT and BIGINT only, JSON as TEXT, dates
-- as YYYY-MM-DD text (which sorts the way it reads).

CREATE TABLE people (
    id          TEXT NOT NULL,
    valid_from  TEXT NOT NULL,            -- YYYY-MM-DD, inclusive
    valid_to    TEXT,                     -- YYYY-MM-DD, exclusive; NULL: still in force
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    manager     TEXT,
    region      TEXT,
    team        TEXT,
    attributes  TEXT NOT NULL,            -- JSON object: quota, csat, ...
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (id, valid_from)
);
CREATE INDEX people_manager ON people (manager);

CREATE TABLE incentive_runs (
    id            TEXT PRIMARY KEY,
    plan          TEXT NOT NULL,
    period        TEXT NOT NULL,
    state         TEXT NOT NULL,          -- running | draft | approved | published | locked | failed | replaced
    pack_version  TEXT NOT NULL,
    currency      TEXT,
    reps          BIGINT NOT NULL,
    total         TEXT NOT NULL,          -- decimal
    started_by    TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    approved_by   TEXT,
    approved_at   TEXT,
    published_by  TEXT,
    published_at  TEXT,
    locked_by     TEXT,
    locked_at     TEXT,
    error         TEXT,
    input         TEXT                    -- JSON: the plan input the run read, to recompute it exactly
);
CREATE INDEX incentive_runs_period ON incentive_runs (plan, period);

CREATE TABLE statements (
    run_id  TEXT NOT NULL,
    rep     TEXT NOT NULL,
    plan    TEXT NOT NULL,
    period  TEXT NOT NULL,
    total   TEXT NOT NULL,                -- decimal: what is paid
    body    TEXT NOT NULL,                -- JSON: the statement
    PRIMARY KEY (run_id, rep)
);
CREATE INDEX statements_rep ON statements (rep, period);
