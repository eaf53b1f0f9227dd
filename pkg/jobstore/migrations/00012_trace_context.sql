-- +goose Up
-- OpenTelemetry (issue 14): the W3C trace context (traceparent, tracestate) of the change
-- that wrote an event travels with it through the outbox, so the record the relay produces
-- later, from any process, continues the trace of the request that caused it (and carries it
-- as the CloudEvents traceparent extension). A job keeps the context of its request, so an
-- exporter that claims it from the table, without its ExportRequested, continues that trace
-- too. NULL: no trace (tracing off where the change was made).
ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN tracestate text;
ALTER TABLE outbox_dead ADD COLUMN traceparent text, ADD COLUMN tracestate text;
ALTER TABLE jobs ADD COLUMN traceparent text, ADD COLUMN tracestate text;

-- +goose Down
ALTER TABLE jobs DROP COLUMN traceparent, DROP COLUMN tracestate;
ALTER TABLE outbox_dead DROP COLUMN traceparent, DROP COLUMN tracestate;
ALTER TABLE outbox DROP COLUMN traceparent, DROP COLUMN tracestate;
