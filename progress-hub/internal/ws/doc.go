// Package ws provides the progress WebSocket (CONTRACT §5): the HTTP handler that
// authenticates and upgrades connections, and the Hub that fans job updates out to them.
//
// Concurrency: one goroutine (Hub.Run) owns every subscription map; each connection has one
// reader goroutine, and a writer goroutine only while it has messages to write (its outbox
// starts one, and at most one, when something is queued). The hub never waits for a client:
// each has a bounded outbox, and a client whose outbox is full is dropped (closed with 1013),
// not waited for. On shutdown the hub closes every connection with 1001 (going away).
//
// Memory, what bounds how many clients one hub holds (about 20 KiB each once idle): an update
// is encoded once and the same bytes are queued to every client; an idle connection holds
// its reader goroutine, a 1 KiB read buffer and a ping timer, but no writer goroutine, no
// write buffer (borrowed from a pool per message) and no channel; the snapshot of
// {"all": true} is read and encoded once for every subscription that began before the read.
//
// Ordering: on subscribe, the client receives one snapshot (or one error) per job, then every
// update of its jobs in the order the hub received them. Updates arriving while the snapshots
// are read are held back and only those newer than the snapshot follow it.
//
// Protocol, client to server:
//
//	{"type": "subscribe", "task_ids": ["…"]}   {"type": "subscribe", "all": true}
//	{"type": "unsubscribe", "task_ids": ["…"]} {"type": "unsubscribe", "all": true}
//	{"type": "ping"}
//
// Server to client: {"type": "snapshot", "job": {…}}; {"type": "progress" | "completed" |
// "failed" | "cancelled", "task_id", "job_id", "status", …} (see package progress);
// {"type": "error", "error": {"code", "message", "task_id"?, "field"?}};
// {"type": "unsubscribed", …}; {"type": "pong"}. A bad message is answered with an error and
// the connection stays open.
package ws
