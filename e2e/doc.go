// Package e2e holds black-box tests of the running local stack (make up): HTTP, WebSocket,
// Kafka, PostgreSQL and S3, exactly as users, integrators and downstream systems see them.
// They reseed the catalog and stop parts of the stack, so they run one at a time (-p 1) and
// never against a shared environment.
package e2e
