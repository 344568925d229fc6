-- A fill of kept credits is found by what decides its credits, not by the
-- pack version that made it: `basis` is a fingerprint of the credit rules
-- of the plans fed by the Targets document (see IncentivePlan's
-- credit_basis in engine/core), so a new pack version that credits every
-- deal alike (an approval limit, a funnel SLA, a commission rate changed)
-- reads the fills of the version before it instead of filling again.
--
-- The kept credits are a cache of what the deals credit: the fills made
-- before this migration are dropped and made again by the next report.

DELETE FROM credits;
DELETE FROM credit_marks;
DROP TABLE credit_fills;

CREATE TABLE credit_fills (
    id            TEXT PRIMARY KEY,       -- ULID
    basis         TEXT NOT NULL,          -- the credit rules' fingerprint
    pack_version  TEXT NOT NULL,          -- the version that made it
    targets       TEXT NOT NULL,
    period        TEXT NOT NULL,          -- 2026-Q1, 2026-03, 2026
    first_day     TEXT NOT NULL,          -- YYYY-MM-DD, the period's first day
    last_day      TEXT NOT NULL,          -- and its last
    state         TEXT NOT NULL,          -- filling | ready
    created_at    TEXT NOT NULL,
    UNIQUE (targets, period, basis)
);
