// Package events is the contract of the export platform's Kafka events: topics, event types,
// their data, and the CloudEvents 1.0 Kafka binary-mode envelope (CONTRACT §6).
//
// It knows only the standard library, so every service and every downstream consumer can depend
// on it without pulling in a Kafka client: eventbus turns an Envelope into a kgo.Record.
//
// Keying and ordering: every record is keyed by its job id, so all events of one job land on the
// same partition of exports.events and keep their order.
//
// Identity: ce_id is derived from the logical event (job id, type and a discriminator such as
// rows_done or attempt), never from a clock or a random source, so a repeat of the same event
// after a crash or a retry carries the same ce_id and consumers can drop it.
//
// Versioning: the version is part of ce_type (…​.v1). A breaking change to a data struct is a new
// type (…​.v2), published beside the old one until consumers move.
package events
