-- db_analytics.audit_logs (CONTRACT §7): one row per audited event. Applied at every start of
-- audit-sink, so every statement is idempotent; a change to an existing column needs a real
-- migration, not an edit here.
CREATE TABLE IF NOT EXISTS audit_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz,
    action      text        NOT NULL,
    actor_id    text,
    actor_name  text,
    resource_id text        NOT NULL,
    entity      text,
    format      text,
    filters     jsonb,
    row_count   bigint,
    risk_level  text        NOT NULL,
    details     jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_logs_event_id_key UNIQUE (event_id)
);

-- Issue 11: the bytes of downloads and streams, and who asked from where.
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS bytes      bigint;
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS client_ip  text;
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS user_agent text;

CREATE INDEX IF NOT EXISTS audit_logs_resource_id_idx ON audit_logs (resource_id, occurred_at);
CREATE INDEX IF NOT EXISTS audit_logs_actor_id_idx ON audit_logs (actor_id, occurred_at);
CREATE INDEX IF NOT EXISTS audit_logs_occurred_at_idx ON audit_logs (occurred_at);
CREATE INDEX IF NOT EXISTS audit_logs_list_idx ON audit_logs (occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_logs_denied_idx ON audit_logs (actor_id, occurred_at) WHERE action = 'access.denied';

COMMENT ON TABLE audit_logs IS 'One row per audited export event; event_id is the CloudEvents ce_id, so repeats are dropped.';
