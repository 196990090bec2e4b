-- Model groups: a group enables a set of models (a JSON array of model ids)
-- and may set default limits for the keys of its accounts; an account
-- belongs to at most one group (NULL: none, every model as before).
CREATE TABLE model_groups (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    models         TEXT NOT NULL,         -- JSON array of model ids
    rpm            BIGINT,
    tpm            BIGINT,
    max_concurrent BIGINT,
    created_at_ms  BIGINT NOT NULL
);
ALTER TABLE accounts ADD COLUMN group_id TEXT REFERENCES model_groups (id);
CREATE INDEX accounts_group ON accounts (group_id);
