-- Budgets with a period: `budget_period` daily|weekly|monthly (NULL: the
-- budget never resets). `spent_nanos` stays the key's spend over its whole
-- life (only ever grows); a reset moves `spent_base_nanos` up to it, so the
-- spend of the period is spent_nanos - spent_base_nanos. `period_start_ms`:
-- the start of the period the base belongs to.
ALTER TABLE api_keys ADD COLUMN budget_period TEXT;
ALTER TABLE api_keys ADD COLUMN spent_base_nanos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN period_start_ms BIGINT;
CREATE INDEX api_keys_budget_period ON api_keys (budget_period, period_start_ms);
