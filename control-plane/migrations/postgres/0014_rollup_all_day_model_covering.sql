-- Issue 14, PostgreSQL only: per key of one model over 30 days at 10M
-- records took 154-169 ms through 0013's index (model, start_ms). The
-- model's 31,000 daily rows lay on 20,556 of the table's 34,800 pages,
-- each read for a row or two (EXPLAIN ANALYZE: Bitmap Heap Scan, 123 ms
-- with the table in the OS cache). This index carries the columns the
-- summary sums, so it is read alone (an index-only scan once autovacuum
-- has marked the pages all-visible: 21 ms on the same data). Its cost:
-- about as large as the table, and the rollup writer's updates of these
-- rows are no longer HOT (every update writes every index). SQLite keeps
-- the table in primary-key order (WITHOUT ROWID), so a day's rows of one
-- model are together there already (50 ms).
DROP INDEX IF EXISTS usage_rollup_all_day_model;
CREATE INDEX IF NOT EXISTS usage_rollup_all_day_model_cover ON usage_rollup_all_day (model, start_ms)
    INCLUDE (key_id, requests, errors, input_tokens, output_tokens, cost_nanos, c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19);
