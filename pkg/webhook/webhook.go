// Package webhook is the platforms' webhooks: notifications of a platform's jobs (completed,
// failed, delivered, delivery failed) signed as the Standard Webhooks specification says
// (https://www.standardwebhooks.com): headers webhook-id, webhook-timestamp and
// webhook-signature, the signature "v1," + base64(HMAC-SHA256(secret, id.timestamp.payload)).
// A receiver verifies them with any Standard Webhooks library. The deliveries themselves live
// in the exports database (Store), one per (platform, event), sent and retried by the
// exporter's webhook worker.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Event types a webhook may ask for (platform.WebhookEvents), and their payload types.
var eventTypes = map[events.Type]string{
	events.TypeCompleted:      "completed",
	events.TypeFailed:         "failed",
	events.TypeDelivered:      "delivered",
	events.TypeDeliveryFailed: "delivery_failed",
}

// Kind is the webhook event name of an event type ("completed"), "" for one no webhook takes.
func Kind(t events.Type) string { return eventTypes[t] }

// Payload is the body of a notification: {"type": "export.completed", "timestamp", "data"},
// data being the event's own data (CONTRACT §6).
func Payload(kind string, at time.Time, data json.RawMessage) ([]byte, error) {
	return json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{"export." + kind, at.UTC(), data})
}

// key is the HMAC key of a secret: the base64 bytes after whsec_ (the specification's form),
// or the secret's own bytes.
func key(secret string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("webhook secret: whsec_ must be followed by base64: %w", err)
		}
		return b, nil
	}
	if secret == "" {
		return nil, fmt.Errorf("webhook secret is empty")
	}
	return []byte(secret), nil
}

// Sign is the webhook-signature header of a message.
func Sign(secret, id string, ts time.Time, payload []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(payload)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Headers are the Standard Webhooks headers of a message.
func Headers(secret, id string, ts time.Time, payload []byte) (map[string]string, error) {
	sig, err := Sign(secret, id, ts, payload)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"webhook-id":        id,
		"webhook-timestamp": strconv.FormatInt(ts.Unix(), 10),
		"webhook-signature": sig,
		"Content-Type":      "application/json",
	}, nil
}
