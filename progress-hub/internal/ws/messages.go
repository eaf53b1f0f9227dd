package ws

import "github.com/productsmanager/exportplatform/pkg/jobstore"

// Message types of the protocol. Clients send subscribe, unsubscribe and ping; the server
// sends snapshot, the update types of package progress, error, unsubscribed and pong.
const (
	typeSubscribe    = "subscribe"
	typeUnsubscribe  = "unsubscribe"
	typePing         = "ping"
	typeSnapshot     = "snapshot"
	typeError        = "error"
	typeUnsubscribed = "unsubscribed"
	typePong         = "pong"
)

// Error codes sent in error messages.
const (
	codeInvalidArgument   = "invalid_argument"
	codeNotFound          = "not_found"
	codeUnavailable       = "unavailable"
	codeResourceExhausted = "resource_exhausted"
)

// clientMessage is what a client sends: {"type": "subscribe", "task_ids": [...]},
// {"type": "subscribe", "all": true}, the same with "unsubscribe", or {"type": "ping"}.
type clientMessage struct {
	Type    string   `json:"type"`
	TaskIDs []string `json:"task_ids"`
	All     bool     `json:"all"`
}

type snapshotMessage struct {
	Type string       `json:"type"`
	Job  jobstore.Job `json:"job"`
}

type errorMessage struct {
	Type  string    `json:"type"`
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	TaskID  string `json:"task_id,omitempty"`
	Field   string `json:"field,omitempty"`
}

type unsubscribedMessage struct {
	Type    string   `json:"type"`
	TaskIDs []string `json:"task_ids,omitempty"`
	All     bool     `json:"all,omitempty"`
}

type pongMessage struct {
	Type string `json:"type"`
}

func errorMsg(code, message, taskID, field string) []byte {
	return encode(errorMessage{Type: typeError, Error: errorBody{Code: code, Message: message, TaskID: taskID, Field: field}})
}
