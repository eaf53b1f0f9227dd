-- +goose Up
-- One writer per job (pkg/job decides, pkg/jobstore saves with compare-and-set on version),
-- attempts charged only when they fail or their worker vanishes, and an outbox that cannot stall.
ALTER TABLE jobs
    ADD COLUMN version    bigint  NOT NULL DEFAULT 1,
    -- attempts that count towards the maximum: claims, less the ones handed over on shutdown.
    ADD COLUMN charged    integer NOT NULL DEFAULT 0,
    -- the real error of the last attempt that failed and was to be retried.
    ADD COLUMN last_error jsonb;
UPDATE jobs SET charged = attempt;
-- sealed_at and progress_attempt are no longer written: a completion is recorded with its event.
ALTER TABLE jobs ALTER COLUMN progress_attempt SET DEFAULT 0;
-- The queue the exporters claim from, oldest first.
CREATE INDEX jobs_claim_idx ON jobs (created_at, id) WHERE status IN ('queued', 'running') AND deleted_at IS NULL;

-- Outbox rows Kafka refused for good (too large, unencodable): kept with the reason, out of the
-- way of the rows behind them.
CREATE TABLE outbox_dead (
    id         bigint      PRIMARY KEY,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    ce_id      text        NOT NULL,
    ce_type    text        NOT NULL,
    ce_source  text        NOT NULL,
    ce_time    timestamptz NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    reason     text        NOT NULL
);

-- +goose Down
DROP TABLE outbox_dead;
DROP INDEX jobs_claim_idx;
ALTER TABLE jobs DROP COLUMN version, DROP COLUMN charged, DROP COLUMN last_error;
