-- +goose Up
-- Webhook notifications of platforms (issue 12): one row per (platform, event) to notify,
-- sent by the exporter's webhook worker with Standard Webhooks signatures, retried on the
-- delivery backoff; the log GET /platforms/{id}/webhook-deliveries reads.
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    platform_id     uuid        NOT NULL,
    event_id        text        NOT NULL, -- the event's ce_id: one notification per event
    event_type      text        NOT NULL, -- export.completed, export.failed, export.delivered, export.delivery_failed
    job_id          text        NOT NULL,
    url             text        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL, -- pending, sending, delivered, failed, skipped
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    lease_owner     text,
    lease_expires_at timestamptz,
    last_error      text,
    response_status integer,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (platform_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_platform_idx ON webhook_deliveries (platform_id, created_at DESC, id DESC);

-- A platform's endpoint: its consecutive failures, and why it was switched off after 5.
CREATE TABLE webhook_endpoints (
    platform_id          uuid        PRIMARY KEY,
    url                  text        NOT NULL,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    disabled_at          timestamptz,
    disabled_reason      text,
    updated_at           timestamptz NOT NULL
);

-- +goose Down
DROP TABLE webhook_endpoints;
DROP TABLE webhook_deliveries;
