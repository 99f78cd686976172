-- Prepare pipeline: two-step artifact garbage collection and the indexes the
-- collector and the worker queue rely on.

-- Set while a collector deletes the artifact's object: the row is then no longer
-- reusable, and a worker that stages the same bytes waits until the row is gone
-- before publishing its own object under the same key.
ALTER TABLE artifacts ADD COLUMN deleting_since timestamptz;

-- Collector scan: oldest unused artifacts first.
CREATE INDEX artifacts_last_used ON artifacts (last_used_at);

-- "Is some worker staging these bytes right now?" (the collector keeps those).
CREATE INDEX download_files_staging_sha ON download_files (expected_sha256)
    WHERE status = 'PREPARING';
