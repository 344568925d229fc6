-- Admin console sessions: the id in the browser's cookie is never stored,
-- only its SHA-256 (as tokens are). A session stands for the token it was
-- opened with (by that token's hash), so revoking the token ends it too.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,       -- SHA-256 of the cookie's session id, hex
    token_hash  TEXT NOT NULL,          -- SHA-256 of the token signed in with, hex
    subject     TEXT NOT NULL,
    csrf        TEXT NOT NULL,          -- the token every form of this session carries
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
