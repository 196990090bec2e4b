-- Issue 17: the dashboard's sessions in the database, so that they survive
-- a restart of the control plane and hold across several control planes on
-- one PostgreSQL (control-plane/src/db/sessions.rs). A row per signed-in
-- browser, keyed by the SHA-256 (hex) of its session token: the token
-- itself (the cookie's value) is never stored. `kind` is operator or
-- key_holder; a key holder's row names the key and its account.
CREATE TABLE ui_sessions (
    token_hash    TEXT NOT NULL PRIMARY KEY,
    kind          TEXT NOT NULL,
    key_id        TEXT,
    account_id    TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at_ms);
CREATE INDEX ui_sessions_key ON ui_sessions (key_id);
