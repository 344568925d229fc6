-- Change requests: whole files against a base pack version, moved through
-- draft -> submitted -> approved -> active (or scheduled -> active), or
-- rejected / cancelled; every move is a row of change_transitions.
CREATE TABLE change_requests (
    id            TEXT PRIMARY KEY,       -- chg_<ULID>
    kind          TEXT NOT NULL,          -- change | rollback
    title         TEXT NOT NULL,
    state         TEXT NOT NULL,          -- ChangeState
    author        TEXT NOT NULL,          -- the token subject that created it
    base_version  TEXT NOT NULL,          -- the pack version the files are against
    files         TEXT NOT NULL,          -- JSON: path -> {"text"} | {"base64"} | {"deleted": true}
    validation    TEXT NOT NULL,          -- JSON: what the last save's gate found
    activate_at   TEXT,                   -- when a scheduled change activates
    emergency     BIGINT NOT NULL DEFAULT 0,
    activation_id TEXT,                   -- the activation it made
    claimed_by    TEXT,                   -- the node firing a scheduled change
    claimed_until TEXT,                   -- ... until this time (a lease)
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX change_requests_state ON change_requests (state, activate_at);

CREATE TABLE change_transitions (
    id         TEXT PRIMARY KEY,
    change_id  TEXT NOT NULL,
    from_state TEXT,                      -- NULL for the creation
    to_state   TEXT NOT NULL,
    by_subject TEXT NOT NULL,
    at         TEXT NOT NULL,
    comment    TEXT
);
CREATE INDEX change_transitions_change ON change_transitions (change_id, id);

-- Impact jobs: run off the request path, polled; progress and result as JSON.
CREATE TABLE change_impacts (
    id           TEXT PRIMARY KEY,        -- imp_<ULID>
    change_id    TEXT NOT NULL,
    state        TEXT NOT NULL,           -- running | done | failed
    request      TEXT NOT NULL,
    progress     TEXT NOT NULL,
    result       TEXT,
    error        TEXT,
    requested_by TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT
);
CREATE INDEX change_impacts_change ON change_impacts (change_id, id);

-- Which change an activation came from, when it came from one.
ALTER TABLE activations ADD COLUMN change_id TEXT;
