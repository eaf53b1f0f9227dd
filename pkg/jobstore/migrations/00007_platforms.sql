-- +goose Up
-- Export platforms (issue 12): preconfigured destinations with default export configurations.
-- A platform's name is unique per owner (case-insensitive): unique across owners would tell a
-- user the names of platforms they may not see.
CREATE TABLE platforms (
    id             uuid        PRIMARY KEY,
    name           text        NOT NULL,
    type           text        NOT NULL,
    default_config jsonb       NOT NULL,
    destination    jsonb       NOT NULL,
    webhook        jsonb,
    owner          text        NOT NULL,
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX platforms_owner_name_idx ON platforms (owner, lower(name));
CREATE INDEX platforms_owner_idx ON platforms (owner, created_at DESC, id DESC);

-- A schedule names its platform; the platform cannot go while a schedule uses it (the API
-- answers 409 naming them before the constraint would).
ALTER TABLE schedules ALTER COLUMN platform_id TYPE uuid USING platform_id::uuid;
ALTER TABLE schedules ADD CONSTRAINT schedules_platform_fk FOREIGN KEY (platform_id) REFERENCES platforms (id);
CREATE INDEX schedules_platform_idx ON schedules (platform_id) WHERE platform_id IS NOT NULL;

-- The job records the configuration it ran with, merged (request > schedule > platform).
ALTER TABLE jobs ADD COLUMN headers jsonb;
ALTER TABLE jobs ADD COLUMN compression text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN compression;
ALTER TABLE jobs DROP COLUMN headers;
DROP INDEX schedules_platform_idx;
ALTER TABLE schedules DROP CONSTRAINT schedules_platform_fk;
ALTER TABLE schedules ALTER COLUMN platform_id TYPE text;
DROP TABLE platforms;
