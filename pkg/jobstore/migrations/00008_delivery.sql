-- +goose Up
-- Delivery of a completed job's file to its platform's destination (pkg/job Delivery): whether
-- it has one, its state, and when a delivery worker should take it up (next attempt, or the
-- end of a lapsed lease).
ALTER TABLE jobs ADD COLUMN deliver boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN delivery jsonb;
ALTER TABLE jobs ADD COLUMN delivery_due_at timestamptz;
CREATE INDEX jobs_delivery_due_idx ON jobs (delivery_due_at) WHERE delivery_due_at IS NOT NULL;

-- +goose Down
DROP INDEX jobs_delivery_due_idx;
ALTER TABLE jobs DROP COLUMN delivery_due_at;
ALTER TABLE jobs DROP COLUMN delivery;
ALTER TABLE jobs DROP COLUMN deliver;
