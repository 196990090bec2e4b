-- Tollgate's first schema (SQLite). Money is integer nano-dollars, times are
-- unix milliseconds, flags are 0/1 integers: the same columns as the
-- PostgreSQL migration, so that one set of queries serves both.

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    balance_nanos  BIGINT,               -- NULL: unlimited
    spent_nanos    BIGINT NOT NULL DEFAULT 0,
    rpm            BIGINT,
    tpm            BIGINT,
    max_concurrent BIGINT,
    created_at_ms  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    hash           TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the secret
    prefix         TEXT NOT NULL,         -- first characters, for display
    models         TEXT,                  -- JSON array of model ids; NULL: all
    rpm            BIGINT,
    tpm            BIGINT,
    max_concurrent BIGINT,
    budget_nanos   BIGINT,                -- NULL: no budget
    spent_nanos    BIGINT NOT NULL DEFAULT 0,
    expires_at     BIGINT,                -- unix seconds
    revoked_at_ms  BIGINT,
    created_at_ms  BIGINT NOT NULL
);
CREATE INDEX api_keys_account ON api_keys (account_id, id);

CREATE TABLE providers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    api_key_enc   TEXT NOT NULL,          -- sealed with the data key; '' for none
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE models (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    category            TEXT NOT NULL,
    context_window      BIGINT,
    input_nanos_per_1m  BIGINT NOT NULL,
    output_nanos_per_1m BIGINT NOT NULL,
    deployments         TEXT NOT NULL,    -- JSON array
    created_at_ms       BIGINT NOT NULL
);

CREATE TABLE usage_records (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id     TEXT NOT NULL UNIQUE,  -- minted by the filter: the idempotency key
    key_id         TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    model          TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    provider       TEXT NOT NULL,
    status         BIGINT NOT NULL,
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    estimated      BIGINT NOT NULL,
    stream         BIGINT NOT NULL,
    latency_ms     BIGINT NOT NULL,
    ttft_ms        BIGINT,
    cost_nanos     BIGINT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);
CREATE INDEX usage_account ON usage_records (account_id, id);
CREATE INDEX usage_key ON usage_records (key_id, id);
CREATE INDEX usage_model ON usage_records (model, id);
CREATE INDEX usage_created ON usage_records (created_at_ms);
