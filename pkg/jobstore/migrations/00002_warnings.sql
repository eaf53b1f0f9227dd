-- +goose Up
-- What the file had to alter to fit its format (e.g. text cut to an XLSX cell's 32,767 characters).
ALTER TABLE jobs ADD COLUMN warnings jsonb NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE jobs DROP COLUMN warnings;
