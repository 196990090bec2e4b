-- Issue 14: the rollup is added by one writer, outside the ingest transaction
-- (control-plane/src/db/rollup_writer.rs): ingest inserts the ids of the
-- records it really inserted into usage_rollup_pending (insert only: no
-- row every batch shares), and the writer deletes a run of them, sums
-- their records and upserts the cells, in one transaction, so each
-- record is added exactly once. Summaries drain the queue first. On
-- PostgreSQL every batch upserting the same per-model cells made the
-- ingest transactions wait on each other's row locks.
CREATE TABLE usage_rollup_pending (
    record_id BIGINT NOT NULL PRIMARY KEY
);
