-- Issue 14, two changes to the rollup.
--
-- 1. The rollup is added by one writer, outside the ingest transaction
-- (control-plane/src/db/rollup_writer.rs): ingest inserts the ids of the
-- records it really inserted into usage_rollup_pending (insert only: no
-- row every batch shares), and the writer deletes a run of them, sums
-- their records and upserts the cells, in one transaction, so each
-- record is added exactly once. Summaries drain the queue first. On
-- PostgreSQL every batch upserting the same per-model cells made the
-- ingest transactions wait on each other's row locks.
-- 2. Hourly rows per key and account (usage_rollup_key_hour, the coarse
-- histogram of 0006), so that a range not on whole days reads the records
-- only for the partial hours at its edges. About keys x hours rows (up to
-- 720,000 at 1000 keys over 30 days). Hourly rows per model, key and
-- account are not kept: they would be about a row per record.
CREATE TABLE usage_rollup_pending (
    record_id BIGINT NOT NULL PRIMARY KEY
);

CREATE TABLE usage_rollup_key_hour (
    start_ms      BIGINT NOT NULL,
    model         TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    requests      BIGINT NOT NULL DEFAULT 0,
    errors        BIGINT NOT NULL DEFAULT 0,
    input_tokens  BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nanos    BIGINT NOT NULL DEFAULT 0,
    c00 BIGINT NOT NULL DEFAULT 0,
    c01 BIGINT NOT NULL DEFAULT 0,
    c02 BIGINT NOT NULL DEFAULT 0,
    c03 BIGINT NOT NULL DEFAULT 0,
    c04 BIGINT NOT NULL DEFAULT 0,
    c05 BIGINT NOT NULL DEFAULT 0,
    c06 BIGINT NOT NULL DEFAULT 0,
    c07 BIGINT NOT NULL DEFAULT 0,
    c08 BIGINT NOT NULL DEFAULT 0,
    c09 BIGINT NOT NULL DEFAULT 0,
    c10 BIGINT NOT NULL DEFAULT 0,
    c11 BIGINT NOT NULL DEFAULT 0,
    c12 BIGINT NOT NULL DEFAULT 0,
    c13 BIGINT NOT NULL DEFAULT 0,
    c14 BIGINT NOT NULL DEFAULT 0,
    c15 BIGINT NOT NULL DEFAULT 0,
    c16 BIGINT NOT NULL DEFAULT 0,
    c17 BIGINT NOT NULL DEFAULT 0,
    c18 BIGINT NOT NULL DEFAULT 0,
    c19 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (start_ms, model, key_id, account_id)
);
INSERT INTO usage_rollup_key_hour (start_ms, model, key_id, account_id, requests, errors,
    input_tokens, output_tokens, cost_nanos, c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19)
SELECT (created_at_ms / 3600000) * 3600000, '', key_id, account_id, COUNT(*),
    SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos),
    SUM(CASE WHEN latency_ms <= 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 1 AND latency_ms <= 3 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 3 AND latency_ms <= 6 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 6 AND latency_ms <= 12 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 12 AND latency_ms <= 25 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 25 AND latency_ms <= 50 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 50 AND latency_ms <= 101 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 101 AND latency_ms <= 203 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 203 AND latency_ms <= 406 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 406 AND latency_ms <= 812 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 812 AND latency_ms <= 1625 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 1625 AND latency_ms <= 3250 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 3250 AND latency_ms <= 6501 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 6501 AND latency_ms <= 13003 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 13003 AND latency_ms <= 26007 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 26007 AND latency_ms <= 52015 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 52015 AND latency_ms <= 104031 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 104031 AND latency_ms <= 208063 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 208063 AND latency_ms <= 416127 THEN 1 ELSE 0 END),
    SUM(CASE WHEN latency_ms > 416127 THEN 1 ELSE 0 END)
FROM usage_records GROUP BY 1, 2, 3, 4;
