-- +goose Up
-- A request may name a webhook of its own (issue 12): the job records it, and its
-- notifications have no platform (one per event, the index below keeping them unique).
ALTER TABLE jobs ADD COLUMN webhook jsonb;
ALTER TABLE webhook_deliveries ALTER COLUMN platform_id DROP NOT NULL;
CREATE UNIQUE INDEX webhook_deliveries_job_event_idx ON webhook_deliveries (job_id, event_id) WHERE platform_id IS NULL;
-- The signing secret's reference (never the secret), as the webhook named it when queued.
ALTER TABLE webhook_deliveries ADD COLUMN secret_ref text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN secret_ref;
DROP INDEX webhook_deliveries_job_event_idx;
DELETE FROM webhook_deliveries WHERE platform_id IS NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN platform_id SET NOT NULL;
ALTER TABLE jobs DROP COLUMN webhook;
