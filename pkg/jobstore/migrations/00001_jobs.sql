-- +goose Up
CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    entity           text        NOT NULL,
    format           text        NOT NULL,
    status           text        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'expired')),
    progress         double precision NOT NULL DEFAULT 0,
    rows_done        bigint      NOT NULL DEFAULT 0,
    rows_total       bigint,
    bytes_written    bigint      NOT NULL DEFAULT 0,
    fields           jsonb       NOT NULL DEFAULT '[]',
    exclude_fields   jsonb       NOT NULL DEFAULT '[]',
    filters          jsonb       NOT NULL DEFAULT '{}',
    options          jsonb       NOT NULL DEFAULT '{}',
    file_name        text        NOT NULL DEFAULT '',
    requested_by     text        NOT NULL,
    requester_name   text        NOT NULL DEFAULT '',
    schedule_id      text,
    platform_id      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    error_code       text,
    error_message    text,
    file             jsonb,
    -- attempt counts claims; progress_attempt is the attempt the progress columns describe, so
    -- a late event of an older attempt never overwrites a newer one.
    attempt          integer     NOT NULL DEFAULT 0,
    progress_attempt integer     NOT NULL DEFAULT 0,
    -- the lease: who runs the job and until when, renewed while it runs.
    lease_owner      text,
    lease_expires_at timestamptz,
    deleted_at       timestamptz
);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_idx ON jobs (status, created_at DESC);
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE status IN ('queued', 'running');

-- The transactional outbox: an event is written with the state change that caused it and
-- relayed to Kafka afterwards, so an accepted request is never lost while Kafka is away.
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    ce_id      text        NOT NULL,
    ce_type    text        NOT NULL,
    ce_source  text        NOT NULL,
    ce_time    timestamptz NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE jobs;
