-- PULL files of update sessions (issue 13): where the worker fetches them
-- from, and the claim of the worker fetching (lease, attempts), as for staging.
ALTER TABLE update_files
    ADD COLUMN source_uri        text,
    ADD COLUMN source_thumbprint text,
    ADD COLUMN lease_owner       uuid,
    ADD COLUMN lease_until       timestamptz,
    ADD COLUMN attempts          integer NOT NULL DEFAULT 0;
CREATE INDEX update_files_pull_queue ON update_files (updated_at)
    WHERE source_type = 'PULL' AND status = 'WAITING_FOR_TRANSFER' AND NOT removed;
CREATE INDEX update_files_pull_leases ON update_files (lease_until)
    WHERE lease_owner IS NOT NULL;
