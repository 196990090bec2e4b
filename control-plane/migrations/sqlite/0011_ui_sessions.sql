-- Issue 17: the dashboard's sessions in the database, so that they survive
-- a restart of the control plane and hold across several control planes on
-- one PostgreSQL (control-plane/src/db/sessions.rs). A row per signed-in
-- browser, keyed by the SHA-256 (hex) of its session token: the token
-- itself (the cookie's value) is never stored. `kind` is operator or
-- key_holder; a key holder's row names the key and its account, a named
-- operator's the operator.
--
-- ui_operators: named operator accounts besides the admin token, created
-- by an operator; the password is kept as its Argon2id hash (PHC string).
CREATE TABLE ui_sessions (
    token_hash    TEXT NOT NULL PRIMARY KEY,
    kind          TEXT NOT NULL,
    key_id        TEXT,
    account_id    TEXT,
    operator_id   TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at_ms);
CREATE INDEX ui_sessions_key ON ui_sessions (key_id);
CREATE INDEX ui_sessions_operator ON ui_sessions (operator_id);

CREATE TABLE ui_operators (
    id            TEXT NOT NULL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
) WITHOUT ROWID;
