-- How a model's first choice is made among the usable deployments of its
-- best priority: weighted, priority or least_latency.
ALTER TABLE models ADD COLUMN strategy TEXT NOT NULL DEFAULT 'weighted';
