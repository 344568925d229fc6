-- Summaries the funnel and progress reports aggregate instead of reading
-- every deal and its history. Both are kept in the transaction that writes
-- the deal or its history (see engine/store/src/summaries.rs) and rebuilt
-- from the deals and their history when a database first opens with this
-- migration (the `summary_builds` row says it was done).

-- One row per stay of a deal in a stage: its `created` or `move` entry and
-- what followed. `later` is every "stage<TAB>version" the deal entered from
-- this visit on (sorted, one per line); `last_stage`/`last_version` the
-- deal's latest entry. Whether a stage was won, lost or later in the order
-- is judged when a report is made, by each pack version's stage order.
CREATE TABLE stage_visits (
    deal_id       TEXT NOT NULL,
    seq           BIGINT NOT NULL,        -- place in the deal's trail, from 0
    funnel        TEXT NOT NULL,
    stage         TEXT NOT NULL,
    version       TEXT NOT NULL,          -- pack version of the entry
    entered_at    TEXT NOT NULL,          -- RFC 3339 UTC, milliseconds
    next_stage    TEXT,                   -- NULL while the deal is still there
    next_version  TEXT,
    days_ms       BIGINT,                 -- time in the stage, for a visit that ended
    later         TEXT NOT NULL,
    last_stage    TEXT NOT NULL,
    last_version  TEXT NOT NULL,
    PRIMARY KEY (deal_id, seq)
);

CREATE INDEX stage_visits_entered ON stage_visits (funnel, entered_at);
-- Median and p90 days in stage: the n-th duration of a stage, by index.
CREATE INDEX stage_visits_days ON stage_visits (funnel, stage, days_ms, entered_at);

-- The visits counted by the day they began and by everything a report
-- judges them by ('' for no next stage): a window's whole days are read
-- here, its cut days from stage_visits.
CREATE TABLE visit_counts (
    funnel        TEXT NOT NULL,
    entered_day   TEXT NOT NULL,          -- YYYY-MM-DD, UTC
    stage         TEXT NOT NULL,
    next_stage    TEXT NOT NULL,
    next_version  TEXT NOT NULL,
    later         TEXT NOT NULL,
    last_stage    TEXT NOT NULL,
    last_version  TEXT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (funnel, entered_day, stage, next_stage, next_version, later, last_stage, last_version)
);

-- One row per deal: what the open-pipeline figures and the period reads
-- need, out of the deal's JSON fields.
CREATE TABLE deal_facts (
    deal_id           TEXT PRIMARY KEY,
    funnel            TEXT NOT NULL,
    owner             TEXT NOT NULL,
    region            TEXT NOT NULL,      -- fields.region, else context.rep.region, else (none)
    stage             TEXT NOT NULL,
    stage_entered_at  TEXT NOT NULL,      -- RFC 3339 UTC, milliseconds
    amount            TEXT NOT NULL,      -- fields.amount as written, '' when absent
    close_quarter     TEXT,               -- quarter of fields.close_date
    closed_on         TEXT,               -- closed_at, booked_on, or the day it entered `won`
    cancelled_on      TEXT
);

CREATE INDEX deal_facts_open ON deal_facts (funnel, stage, stage_entered_at);
CREATE INDEX deal_facts_amounts ON deal_facts (funnel, stage, close_quarter, amount);
CREATE INDEX deal_facts_closed ON deal_facts (closed_on);
CREATE INDEX deal_facts_cancelled ON deal_facts (cancelled_on);

CREATE TABLE summary_builds (
    name      TEXT PRIMARY KEY,
    built_at  TEXT NOT NULL
);
