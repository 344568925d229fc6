-- Incentive runs read a period in batches of reps: deals by owner (keyset
-- on owner and id), and each batch's plan input stored as one part of the
-- run, so any statement can be recomputed from the part that decided it
-- (a rep named by several parts: the last one). Same rules as 0001: TEXT
-- and BIGINT only.

CREATE INDEX deals_owner ON deals (owner, id);

CREATE TABLE run_inputs (
    run_id  TEXT NOT NULL,
    part    BIGINT NOT NULL,              -- 0, 1, 2, ... in the order decided
    reps    TEXT NOT NULL,                -- JSON: the rep ids whose statements the part decided
    input   TEXT NOT NULL,                -- JSON: the plan input (one plan) or {"plans": {name: input}}
    PRIMARY KEY (run_id, part)
);

-- Impact jobs say they are alive: a job whose node stopped (no heartbeat
-- for a while) is started again from the beginning by a node that runs,
-- and counts how often that happened.
ALTER TABLE change_impacts ADD COLUMN heartbeat_at TEXT;
ALTER TABLE change_impacts ADD COLUMN restarts BIGINT NOT NULL DEFAULT 0;
