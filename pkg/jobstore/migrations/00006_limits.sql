-- +goose Up
-- Ownership and limits (issue 11). A user's own jobs, listed newest first, and counted while
-- active (API_MAX_ACTIVE_JOBS_PER_USER).
CREATE INDEX jobs_owner_idx ON jobs (requested_by, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX jobs_owner_active_idx ON jobs (requested_by) WHERE status IN ('queued', 'running') AND deleted_at IS NULL;
CREATE INDEX schedules_owner_idx ON schedules (owner, created_at DESC, id DESC);

-- Requests per user, class and one-minute window, shared by every producer-api replica.
-- UNLOGGED: counters are worth less than the WAL they would write; a crash resets them.
CREATE UNLOGGED TABLE rate_limits (
    subject      text        NOT NULL,
    class        text        NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL,
    PRIMARY KEY (subject, class, window_start)
);
CREATE INDEX rate_limits_window_idx ON rate_limits (window_start);

-- +goose Down
DROP TABLE rate_limits;
DROP INDEX schedules_owner_idx;
DROP INDEX jobs_owner_active_idx;
DROP INDEX jobs_owner_idx;
