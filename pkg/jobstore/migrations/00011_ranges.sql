-- +goose Up
-- One export across the exporter group (issue 13): an attempt of a big CSV or JSON Lines job
-- is cut into key ranges, each written by whichever exporter claims it, under the snapshot the
-- attempt's coordinator holds open. A range belongs to one attempt: a new attempt plans anew.
CREATE TABLE job_ranges (
    job_id           uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt          integer     NOT NULL,
    seq              integer     NOT NULL,
    lo               bigint,
    hi               bigint,
    snapshot         text        NOT NULL,
    status           text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    lease_owner      text,
    lease_expires_at timestamptz,
    tries            integer     NOT NULL DEFAULT 0,
    rows_done        bigint      NOT NULL DEFAULT 0,
    size_bytes       bigint,
    object_key       text,
    last_error       text,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);
CREATE INDEX job_ranges_claim_idx ON job_ranges (updated_at) WHERE status IN ('queued', 'running');

-- +goose Down
DROP TABLE job_ranges;
