// Package ws provides the progress WebSocket (CONTRACT §5): the HTTP handler that
// authenticates and upgrades connections, and the Hub that fans job updates out to them.
//
// Concurrency: one goroutine (Hub.Run) owns every subscription map; each connection has one
// reader goroutine (the HTTP handler's) and one writer goroutine, the only one that writes
// data frames. The hub never waits for a client: each has a bounded send buffer, and a client
// whose buffer is full is dropped (closed with 1013), not waited for.
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
