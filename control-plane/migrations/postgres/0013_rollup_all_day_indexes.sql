-- Issue 14: a summary of one model per key, or of one key per model, read
-- the per-model-key-and-account daily rows through the primary key's
-- start_ms, so every model's and key's rows of the range (about a million
-- at 10M records), to keep one model's or key's: 139 ms over 30 days at
-- 10M records on SQLite. These find them directly.
CREATE INDEX IF NOT EXISTS usage_rollup_all_day_model ON usage_rollup_all_day (model, start_ms);
CREATE INDEX IF NOT EXISTS usage_rollup_all_day_key ON usage_rollup_all_day (key_id, start_ms);
