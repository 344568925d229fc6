-- Targets measured: the scheduled pace check (one row per Targets document
-- and due time, taken by the one node that runs it) and the pace alerts
-- sent (one per Targets document, period and row, however many nodes and
-- checks see the row behind). Same rules as 0001: TEXT and BIGINT only.

CREATE TABLE pace_checks (
    targets  TEXT NOT NULL,
    slot     TEXT NOT NULL,               -- the check's due time, RFC 3339 UTC
    node     TEXT NOT NULL,               -- the node that ran it
    at       TEXT NOT NULL,
    PRIMARY KEY (targets, slot)
);

CREATE TABLE pace_alerts (
    targets     TEXT NOT NULL,
    period      TEXT NOT NULL,            -- 2026-Q1, 2026-03, 2026
    row_key     TEXT NOT NULL,            -- the rep
    pace        TEXT NOT NULL,            -- decimal, when the alert was sent
    check_slot  TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    PRIMARY KEY (targets, period, row_key)
);

-- Funnel analytics read a funnel's deals in id order.
CREATE INDEX deals_funnel_id ON deals (funnel, id);
