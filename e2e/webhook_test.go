package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// receiver is a webhook endpoint that verifies every request with the Standard Webhooks
// reference library, answering 500 to the first fail requests.
type receiver struct {
	mu       sync.Mutex
	srv      *httptest.Server
	fail     int
	got      []received
	badSigns int
}

type received struct {
	id, typ, jobID string
	status         int
}

func newReceiver(t *testing.T, fail int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(env("DEMO_WEBHOOK_SECRET", "whsec_bG9jYWwtc3RhY2std2ViaG9vay1rZXkh"))
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := wh.Verify(body, req.Header); err != nil {
			r.badSigns++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p struct {
			Type string `json:"type"`
			Data struct {
				JobID string `json:"job_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		status := http.StatusOK
		if len(r.got) < r.fail {
			status = http.StatusInternalServerError
		}
		r.got = append(r.got, received{id: req.Header.Get("webhook-id"), typ: p.Type, jobID: p.Data.JobID, status: status})
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() ([]received, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...), r.badSigns
}

type hookLog struct {
	Items []struct {
		EventType string `json:"event_type"`
		JobID     string `json:"job_id"`
		Status    string `json:"status"`
		Attempts  int    `json:"attempts"`
	} `json:"items"`
}

// TestWebhooks: a platform's webhook receives the completion of its job, signed (verified by
// the Standard Webhooks library), again after a 500 with the same webhook-id, and the log
// shows it delivered on attempt 2; an endpoint that always fails is switched off after 5
// failures, with the reason shown on the platform.
func TestWebhooks(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 100000)
	ok := newReceiver(t, 1)
	p := s.createPlatform(t, map[string]any{"name": unique("hooked"), "type": "custom",
		"default_config": map[string]any{"entity": "products", "format": "csv", "fields": []string{"sku"}},
		"webhook":        map[string]any{"url": ok.srv.URL + "/hook", "secret_ref": "env:DEMO_WEBHOOK_SECRET", "events": []string{"completed", "failed"}}})
	a := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"platform_id": p.ID})
	s.waitStatus(t, a.JobID, "completed", time.Minute)
	deadline := time.Now().Add(time.Minute)
	var got []received
	var bad int
	for time.Now().Before(deadline) {
		if got, bad = ok.requests(); len(got) >= 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if bad != 0 || len(got) != 2 || got[0].id != got[1].id || got[0].status != 500 || got[1].status != 200 ||
		got[1].typ != "export.completed" || got[1].jobID != a.JobID {
		t.Fatalf("received %+v (%d bad signatures), want the completion twice with one webhook-id, 500 then 200", got, bad)
	}
	var log hookLog
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, b := s.do(t, http.MethodGet, "/api/v1/exports/platforms/"+p.ID+"/webhook-deliveries", s.writer(t), nil)
		if code != http.StatusOK || json.Unmarshal(b, &log) != nil {
			t.Fatalf("log: %d %s", code, b)
		}
		if len(log.Items) == 1 && log.Items[0].Status == "delivered" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(log.Items) != 1 || log.Items[0].Status != "delivered" || log.Items[0].Attempts != 2 || log.Items[0].JobID != a.JobID {
		t.Errorf("webhook log %+v", log.Items)
	}

	// A request's own webhook, without a platform: notified of that job alone.
	own := newReceiver(t, 0)
	r := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"fields": []string{"sku"},
		"webhook": map[string]any{"url": own.srv.URL, "secret_ref": "env:DEMO_WEBHOOK_SECRET", "events": []string{"completed"}}})
	s.waitStatus(t, r.JobID, "completed", time.Minute)
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got, bad = own.requests(); len(got) >= 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if bad != 0 || len(got) != 1 || got[0].typ != "export.completed" || got[0].jobID != r.JobID {
		t.Errorf("the request's own webhook received %+v (%d bad signatures)", got, bad)
	}
	if code, body := s.do(t, http.MethodPost, "/api/v1/exports/csv/products", s.writer(t), map[string]any{
		"webhook": map[string]any{"url": own.srv.URL, "secret_ref": "hunter2"}}); code != http.StatusBadRequest ||
		!strings.Contains(string(body), `"field":"webhook.secret_ref"`) {
		t.Errorf("a webhook with a secret in clear: %d %s", code, body)
	}

	// An endpoint that always fails: off after 5 failures (2+4+8+16 s of backoff locally).
	down := newReceiver(t, 1000)
	q := s.createPlatform(t, map[string]any{"name": unique("hooked down"), "type": "custom",
		"default_config": map[string]any{"entity": "products", "format": "csv", "fields": []string{"sku"}},
		"webhook":        map[string]any{"url": down.srv.URL, "secret_ref": "env:DEMO_WEBHOOK_SECRET"}})
	b := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"platform_id": q.ID})
	s.waitStatus(t, b.JobID, "completed", time.Minute)
	var view struct {
		WebhookStatus *struct {
			ConsecutiveFailures int     `json:"consecutive_failures"`
			DisabledAt          *string `json:"disabled_at"`
			DisabledReason      *string `json:"disabled_reason"`
		} `json:"webhook_status"`
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		_, body := s.do(t, http.MethodGet, "/api/v1/exports/platforms/"+q.ID, s.writer(t), nil)
		_ = json.Unmarshal(body, &view)
		if view.WebhookStatus != nil && view.WebhookStatus.DisabledAt != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if view.WebhookStatus == nil || view.WebhookStatus.DisabledAt == nil || view.WebhookStatus.ConsecutiveFailures != 5 ||
		view.WebhookStatus.DisabledReason == nil {
		t.Fatalf("endpoint state %+v, want switched off after 5 failures", view.WebhookStatus)
	}
	if got, bad := down.requests(); len(got) != 5 || bad != 0 {
		t.Errorf("the failing endpoint got %d requests (%d bad signatures), want 5", len(got), bad)
	}
	t.Logf("switched off: %s", *view.WebhookStatus.DisabledReason)
}
