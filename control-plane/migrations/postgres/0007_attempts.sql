-- How many upstream attempts a request made (1, or more after a failover),
-- and whether its answer stopped before its end (a stream without its last
-- event, a body that never ended): 1 for cut, 0 otherwise.
ALTER TABLE usage_records ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;
ALTER TABLE usage_records ADD COLUMN cut BIGINT NOT NULL DEFAULT 0;

-- The most deployments one request to a model tries (1: no failover).
ALTER TABLE models ADD COLUMN max_attempts BIGINT NOT NULL DEFAULT 3;
