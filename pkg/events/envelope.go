package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CloudEvents Kafka binary-mode header names.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderContentType = "content-type"
	// The CloudEvents distributed-tracing extension: the W3C trace context of the change that
	// produced the event, present only when that change was traced. It names where the event
	// was made, not the hop that carried it (Kafka's own traceparent header does that).
	HeaderTraceParent = "ce_traceparent"
	HeaderTraceState  = "ce_tracestate"

	SpecVersion = "1.0"
	ContentType = "application/json"
)

// ErrNotCloudEvent is returned by Parse for a record that lacks the CloudEvents headers.
var ErrNotCloudEvent = errors.New("not a CloudEvents 1.0 binary-mode record")

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Envelope is one event as it travels: its CloudEvents attributes, its key and its JSON data.
type Envelope struct {
	ID     string
	Source string
	Type   Type
	Time   time.Time
	Key    string
	Data   json.RawMessage
	// TraceParent and TraceState are the distributed-tracing extension (W3C traceparent and
	// tracestate), "" when the event was made outside a trace.
	TraceParent string
	TraceState  string
}

// Wrap builds the envelope of an event.
func Wrap(e Event) (Envelope, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return Envelope{}, fmt.Errorf("encoding %s: %w", e.EventType(), err)
	}
	return Envelope{
		ID:     ID(e),
		Source: Source,
		Type:   e.EventType(),
		Time:   e.OccurredAt().UTC(),
		Key:    e.Key(),
		Data:   data,
	}, nil
}

// Headers are the record headers of the envelope, in a fixed order; the tracing extension's
// come last, when set.
func (env Envelope) Headers() []Header {
	hs := []Header{
		{HeaderSpecVersion, []byte(SpecVersion)},
		{HeaderID, []byte(env.ID)},
		{HeaderSource, []byte(env.Source)},
		{HeaderType, []byte(env.Type)},
		{HeaderTime, []byte(env.Time.UTC().Format(time.RFC3339Nano))},
		{HeaderContentType, []byte(ContentType)},
	}
	if env.TraceParent != "" {
		hs = append(hs, Header{HeaderTraceParent, []byte(env.TraceParent)})
		if env.TraceState != "" {
			hs = append(hs, Header{HeaderTraceState, []byte(env.TraceState)})
		}
	}
	return hs
}

// Parse reads an envelope from a record's key, headers and value.
func Parse(key []byte, headers []Header, value []byte) (Envelope, error) {
	env := Envelope{Key: string(key), Data: value}
	var spec string
	for _, h := range headers {
		switch h.Key {
		case HeaderSpecVersion:
			spec = string(h.Value)
		case HeaderID:
			env.ID = string(h.Value)
		case HeaderSource:
			env.Source = string(h.Value)
		case HeaderType:
			env.Type = Type(h.Value)
		case HeaderTime:
			t, err := time.Parse(time.RFC3339Nano, string(h.Value))
			if err != nil {
				return Envelope{}, fmt.Errorf("%w: bad ce_time %q", ErrNotCloudEvent, h.Value)
			}
			env.Time = t
		case HeaderTraceParent:
			env.TraceParent = string(h.Value)
		case HeaderTraceState:
			env.TraceState = string(h.Value)
		}
	}
	if spec != SpecVersion || env.ID == "" || env.Type == "" || env.Source == "" {
		return Envelope{}, fmt.Errorf("%w: specversion %q id %q type %q", ErrNotCloudEvent, spec, env.ID, env.Type)
	}
	return env, nil
}

// Decode unmarshals an envelope's data into the event type T, checking ce_type first.
func Decode[T Event](env Envelope) (T, error) {
	var zero, v T
	if want := zero.EventType(); env.Type != want {
		return zero, fmt.Errorf("decoding %s: envelope is %s", want, env.Type)
	}
	if err := json.Unmarshal(env.Data, &v); err != nil {
		return zero, fmt.Errorf("decoding %s %s: %w", env.Type, env.ID, err)
	}
	return v, nil
}

// DecodeAny decodes an envelope into whichever event its ce_type names.
func DecodeAny(env Envelope) (Event, error) {
	switch env.Type {
	case TypeRequested:
		return Decode[ExportRequested](env)
	case TypeStarted:
		return Decode[ExportStarted](env)
	case TypeProgress:
		return Decode[ExportProgress](env)
	case TypeCompleted:
		return Decode[ExportCompleted](env)
	case TypeFailed:
		return Decode[ExportFailed](env)
	case TypeCancelled:
		return Decode[ExportCancelled](env)
	case TypeAccessed:
		return Decode[Accessed](env)
	case TypeDelivered:
		return Decode[ExportDelivered](env)
	case TypeDeliveryFailed:
		return Decode[ExportDeliveryFailed](env)
	}
	return nil, fmt.Errorf("unknown event type %q", env.Type)
}
