-- +goose Up
-- Scheduled exports (pkg/schedule is their domain, pkg/schedstore their only writer).
CREATE TABLE schedules (
    id                   uuid PRIMARY KEY,
    name                 text        NOT NULL,
    platform_id          text,
    schedule_type        text        NOT NULL CHECK (schedule_type IN ('cron', 'interval')),
    cron_expression      text        NOT NULL DEFAULT '',
    interval_minutes     integer     NOT NULL DEFAULT 0,
    timezone             text        NOT NULL DEFAULT 'Europe/Paris',
    export_config        jsonb       NOT NULL,
    max_retries          integer     NOT NULL DEFAULT 0 CHECK (max_retries BETWEEN 0 AND 10),
    retry_delay_seconds  integer     NOT NULL DEFAULT 300 CHECK (retry_delay_seconds BETWEEN 0 AND 86400),
    misfire_policy       text        NOT NULL DEFAULT 'run_once' CHECK (misfire_policy IN ('run_once', 'skip')),
    overlap_policy       text        NOT NULL DEFAULT 'skip' CHECK (overlap_policy IN ('skip', 'queue')),
    enabled              boolean     NOT NULL DEFAULT true,
    -- the first fire time not decided yet; null while disabled or when it never fires again.
    next_run_at          timestamptz,
    -- where an interval counts from: creation, or the last re-enable or re-timing.
    anchor_at            timestamptz NOT NULL,
    disabled_at          timestamptz,  -- when it was last switched off; null while on
    owner                text        NOT NULL,
    created_by           text        NOT NULL,
    -- stats, folded from the runs' outcomes (a fire time counts once).
    runs                 integer     NOT NULL DEFAULT 0,
    successes            integer     NOT NULL DEFAULT 0,
    failures             integer     NOT NULL DEFAULT 0,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    last_run_at          timestamptz,
    last_status          text,
    last_job_id          uuid,
    last_error           text        NOT NULL DEFAULT '',
    version              bigint      NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE enabled;
CREATE INDEX schedules_list_idx ON schedules (created_at DESC, id DESC);

-- The run log: one row per fire time. Its key is what makes a second fire of the same time
-- impossible, whatever the number of schedulers.
CREATE TABLE schedule_runs (
    schedule_id   uuid        NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    scheduled_for timestamptz NOT NULL,
    trigger       text        NOT NULL CHECK (trigger IN ('timetable', 'catch_up', 'manual')),
    status        text        NOT NULL CHECK (status IN ('queued', 'running', 'retrying', 'completed', 'failed',
                                  'cancelled', 'missed', 'skipped_overlap', 'disabled')),
    reason        text        NOT NULL DEFAULT '',
    attempt       integer     NOT NULL DEFAULT 0,
    retry_at      timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    PRIMARY KEY (schedule_id, scheduled_for)
);
CREATE INDEX schedule_runs_retry_idx ON schedule_runs (retry_at) WHERE status = 'retrying';
CREATE INDEX schedule_runs_open_idx ON schedule_runs (schedule_id) WHERE status IN ('queued', 'running', 'retrying');

-- Each job a run started: attempt 1, then one per retry.
CREATE TABLE schedule_attempts (
    job_id        uuid        PRIMARY KEY,
    schedule_id   uuid        NOT NULL,
    scheduled_for timestamptz NOT NULL,
    attempt       integer     NOT NULL,
    created_at    timestamptz NOT NULL,
    UNIQUE (schedule_id, scheduled_for, attempt),
    FOREIGN KEY (schedule_id, scheduled_for) REFERENCES schedule_runs (schedule_id, scheduled_for) ON DELETE CASCADE
);

ALTER TABLE jobs ADD COLUMN scheduled_for timestamptz;
CREATE INDEX jobs_schedule_idx ON jobs (schedule_id, scheduled_for) WHERE schedule_id IS NOT NULL;

-- +goose Down
DROP INDEX jobs_schedule_idx;
ALTER TABLE jobs DROP COLUMN scheduled_for;
DROP TABLE schedule_attempts;
DROP TABLE schedule_runs;
DROP TABLE schedules;
