-- +goose Up
-- The job lifecycle users control and watch: cancel, delete, retention, and richer progress.
ALTER TABLE jobs
    -- the worker committed to completing the job (its file is stored): a cancel is too late.
    ADD COLUMN sealed_at       timestamptz,
    ADD COLUMN cancelled_by    text,
    -- when the file is deleted by the retention sweeper; null while the job has no file.
    ADD COLUMN expires_at      timestamptz,
    -- the file is gone from the bucket (expired or its job deleted).
    ADD COLUMN file_removed_at timestamptz,
    ADD COLUMN phase           text NOT NULL DEFAULT 'queued'
               CHECK (phase IN ('queued', 'counting', 'writing', 'uploading', 'done')),
    ADD COLUMN rate_rows_per_s double precision,
    ADD COLUMN eta_seconds     double precision;
UPDATE jobs SET phase = 'done' WHERE status NOT IN ('queued', 'running');
-- Files stored before retention existed get the default 30 days from their completion.
UPDATE jobs SET expires_at = coalesce(finished_at, updated_at) + interval '30 days'
    WHERE file IS NOT NULL AND expires_at IS NULL;
UPDATE jobs SET phase = 'writing' WHERE status = 'running';
-- The sweeper's work: files past their expiry, and files of deleted jobs, not yet removed.
CREATE INDEX jobs_sweep_idx ON jobs (expires_at) WHERE file IS NOT NULL AND file_removed_at IS NULL;

-- +goose Down
DROP INDEX jobs_sweep_idx;
ALTER TABLE jobs DROP COLUMN sealed_at, DROP COLUMN cancelled_by, DROP COLUMN expires_at,
    DROP COLUMN file_removed_at, DROP COLUMN phase, DROP COLUMN rate_rows_per_s, DROP COLUMN eta_seconds;
