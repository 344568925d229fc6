-- The credits a targets progress report adds up, kept so that a report
-- reads one summed row per rep, day, product and channel instead of
-- crediting every deal of the period again (see
-- engine/store/src/credits.rs).
--
-- A fill is the credits of the deals one period reads, as the plans of one
-- pack version fed by one Targets document credit them. It is filled on the
-- first report that asks, then kept exact by marks: a write of a deal marks
-- it in the fills whose period reads it before or after the write, a
-- change of a person marks the deals they own that the fill's period
-- reads, and the next report credits the marked deals again.

CREATE TABLE credit_fills (
    id            TEXT PRIMARY KEY,       -- ULID
    pack_version  TEXT NOT NULL,
    targets       TEXT NOT NULL,
    period        TEXT NOT NULL,          -- 2026-Q1, 2026-03, 2026
    first_day     TEXT NOT NULL,          -- YYYY-MM-DD, the period's first day
    last_day      TEXT NOT NULL,          -- and its last
    state         TEXT NOT NULL,          -- filling | ready
    created_at    TEXT NOT NULL,
    UNIQUE (pack_version, targets, period)
);

-- One row per credit: a rep's credit from one deal, as exact decimal text,
-- and as an integer of `scale` places when it fits (summed by the
-- database, exactly).
CREATE TABLE credits (
    fill_id    TEXT NOT NULL,
    deal_id    TEXT NOT NULL,
    rep        TEXT NOT NULL,
    credit     TEXT NOT NULL,
    units      BIGINT,
    scale      BIGINT NOT NULL,
    closed_on  TEXT NOT NULL,             -- YYYY-MM-DD
    product    TEXT,                      -- the deal's own product, if it has one
    channel    TEXT,                      -- the deal's own channel, if it has one
    PRIMARY KEY (fill_id, deal_id, rep)
);

CREATE INDEX credits_summed ON credits (fill_id, rep, closed_on, product, channel, scale, units);

-- Deals to credit again in a fill; `mark` changes with every write, so a
-- report clears only the marks it has seen.
CREATE TABLE credit_marks (
    fill_id  TEXT NOT NULL,
    deal_id  TEXT NOT NULL,
    mark     TEXT NOT NULL,
    PRIMARY KEY (fill_id, deal_id)
);

-- A change of a person marks the deals they own.
CREATE INDEX deal_facts_owner ON deal_facts (owner, closed_on);
