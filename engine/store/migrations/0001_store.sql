-- One schema for SQLite and PostgreSQL: only types both read the same way
-- (TEXT, BIGINT), ids made by the application (time-ordered ULIDs), times
-- as RFC 3339 UTC text with milliseconds, which sorts as it reads.

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,   -- SHA-256 of the token, hex; the token itself is never stored
    role        TEXT NOT NULL,          -- viewer | service | approver | admin
    subject     TEXT NOT NULL,          -- a user id
    groups      TEXT NOT NULL,          -- JSON array, e.g. ["role:sales-director"]
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Every pack version that was ever activated, whole, so a rollback or the
-- replay of an old decision runs on exactly the rules that made it.
CREATE TABLE packs (
    version     TEXT PRIMARY KEY,       -- sha256:<12 hex> over paths and bytes
    content     TEXT NOT NULL,          -- JSON: {"files": {path: {"text": ...} | {"base64": ...}}}
    files       BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    stored_at   TEXT NOT NULL
);

CREATE TABLE activations (
    id            TEXT PRIMARY KEY,     -- ULID: orders activations in time
    version       TEXT NOT NULL REFERENCES packs (version),
    activated_at  TEXT NOT NULL,
    activated_by  TEXT NOT NULL,        -- a token's subject, or "directory" for the watched rules folder
    source        TEXT NOT NULL,        -- directory | upload | rollback
    comment       TEXT
);

CREATE TABLE decision_log (
    id          TEXT PRIMARY KEY,       -- ULID
    decided_at  TEXT NOT NULL,          -- the `now` the decision was made with
    policy      TEXT NOT NULL,
    version     TEXT NOT NULL,          -- the pack version that decided
    outcome     TEXT NOT NULL,          -- ok | error
    subject     TEXT NOT NULL,          -- who asked
    input       TEXT NOT NULL,          -- the request body as sent
    result      TEXT NOT NULL           -- the response body (a decision or a problem)
);

CREATE INDEX decision_log_decided_at ON decision_log (decided_at);
CREATE INDEX decision_log_policy ON decision_log (policy, decided_at);
