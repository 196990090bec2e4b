-- Issue 13 (ingest CPU): on SQLite the rollup's writer follows a mark
-- instead of a queue. SQLite has one writer at a time and record ids are
-- AUTOINCREMENT, taken under the write lock: a record with a higher id
-- always commits after every record with a lower one. So "every record
-- above last_id" is exactly what the rollup has not added yet, and ingest
-- no longer inserts a queue row per record (nor the writer deletes it).
-- PostgreSQL, whose sequence ids commit in any order, keeps its queue.
CREATE TABLE usage_rollup_mark (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_id BIGINT NOT NULL
);
-- The queue was always the newest ids (queued in id order, drained from the
-- lowest): below its first, everything was added.
INSERT INTO usage_rollup_mark (id, last_id) VALUES (1, COALESCE(
    (SELECT MIN(record_id) - 1 FROM usage_rollup_pending),
    (SELECT MAX(id) FROM usage_records),
    0));
DROP TABLE usage_rollup_pending;
