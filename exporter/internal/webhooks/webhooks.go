// Package webhooks is the exporter's webhook worker. Its consumer (group "webhooks" on
// exports.events) turns each completion, failure, delivery and failed delivery of a job whose
// platform has a webhook into one queued notification (pkg/webhook.Store, once per event);
// its sender POSTs them, signed as Standard Webhooks says, retried on the delivery backoff;
// five failures in a row switch the endpoint off with the reason.
package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/exporter/internal/claimloop"
	"github.com/productsmanager/exportplatform/pkg/destination"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
	"github.com/productsmanager/exportplatform/pkg/webhook"
)

// Platforms reads a platform; *platformstore.Store implements it.
type Platforms interface {
	Get(ctx context.Context, id string) (platform.Platform, error)
}

// Jobs reads a job (its request's own webhook); *jobstore.Store implements it.
type Jobs interface {
	GetAny(ctx context.Context, id string) (jobstore.Job, error)
}

// Config tunes the worker.
type Config struct {
	Owner       string
	Concurrency int
	Timeout     time.Duration   // one attempt's HTTP budget
	Backoff     []time.Duration // waits after failed attempts
	Poll        time.Duration
	Secrets     destination.Secrets
}

// Worker queues and sends webhooks.
type Worker struct {
	cfg       Config
	store     *webhook.Store
	platforms Platforms
	jobs      Jobs
	client    *http.Client
	log       *slog.Logger
}

// New builds the worker.
func New(cfg Config, store *webhook.Store, platforms Platforms, jobs Jobs, log *slog.Logger) *Worker {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 2
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Secrets == nil {
		cfg.Secrets = destination.EnvSecrets
	}
	return &Worker{cfg: cfg, store: store, platforms: platforms, jobs: jobs, log: log,
		client: &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// platformOf is the job and the platform id an event names.
func platformOf(ev events.Event) (jobID string, platformID *string) {
	switch e := ev.(type) {
	case events.ExportCompleted:
		return e.JobID, e.PlatformID
	case events.ExportFailed:
		return e.JobID, e.PlatformID
	case events.ExportDelivered:
		return e.JobID, e.PlatformID
	case events.ExportDeliveryFailed:
		return e.JobID, e.PlatformID
	}
	return "", nil
}

// wants reports whether a webhook asks for events of kind.
func wants(h *events.Webhook, kind string) bool {
	return h != nil && (len(h.Events) == 0 || slices.Contains(h.Events, kind))
}

// Handle is the eventbus.Handler of the webhook consumer: it queues the notification of an
// event to the webhook of the job's platform and to the job's own (its request's), each when
// it asks for that event.
func (w *Worker) Handle(ctx context.Context, env events.Envelope) error {
	kind := webhook.Kind(env.Type)
	if kind == "" {
		return nil
	}
	ev, err := events.DecodeAny(env)
	if err != nil {
		return eventbus.Permanent(err)
	}
	jobID, pid := platformOf(ev)
	payload, err := webhook.Payload(kind, env.Time, env.Data)
	if err != nil {
		return eventbus.Permanent(err)
	}
	var notes []webhook.Notification
	if pid != nil {
		p, err := w.platforms.Get(ctx, *pid)
		switch {
		case errors.Is(err, platformstore.ErrNotFound): // deleted since: nobody to notify
		case err != nil:
			return fmt.Errorf("reading platform %s: %w", *pid, err)
		case wants(p.Webhook, kind):
			notes = append(notes, webhook.Notification{PlatformID: p.ID, URL: p.Webhook.URL, SecretRef: p.Webhook.SecretRef})
		}
	}
	j, err := w.jobs.GetAny(ctx, jobID)
	switch {
	case errors.Is(err, jobstore.ErrNotFound):
	case err != nil:
		return fmt.Errorf("reading job %s: %w", jobID, err)
	case wants(j.Webhook, kind):
		notes = append(notes, webhook.Notification{URL: j.Webhook.URL, SecretRef: j.Webhook.SecretRef})
	}
	for _, n := range notes {
		n.EventID, n.EventType, n.JobID, n.Payload = env.ID, "export."+kind, jobID, payload
		if _, err := w.store.Enqueue(ctx, n, time.Now().UTC()); err != nil {
			return err
		}
	}
	return nil
}

// Run sends due notifications until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	return claimloop.Loop[webhook.Delivery]{
		Slots: w.cfg.Concurrency, Poll: w.cfg.Poll, Next: w.store.Next, Work: w.send,
		Claim: func(ctx context.Context) (webhook.Delivery, bool) {
			d, err := w.store.Claim(ctx, w.cfg.Owner, w.cfg.Timeout+30*time.Second, time.Now().UTC())
			if err != nil && !errors.Is(err, webhook.ErrNone) && ctx.Err() == nil {
				w.log.Warn("claiming a webhook failed", "err", err)
			}
			return d, err == nil
		},
	}.Run(ctx)
}

// send makes one attempt and records it.
func (w *Worker) send(ctx context.Context, d webhook.Delivery) {
	log := w.log.With("webhook_id", d.ID, "job_id", d.JobID, "event", d.EventType, "attempt", d.Attempts)
	status, err := w.post(ctx, d)
	rec := context.WithoutCancel(ctx)
	now := time.Now().UTC()
	if err == nil {
		if err := w.store.Delivered(rec, d, w.cfg.Owner, *status, now); err != nil {
			log.Warn("recording a webhook failed", "err", err)
		}
		log.Info("webhook delivered", "status", *status)
		return
	}
	retry := time.Duration(0)
	if d.Attempts <= len(w.cfg.Backoff) {
		retry = w.cfg.Backoff[d.Attempts-1]
	}
	disabled, rerr := w.store.Failed(rec, d, w.cfg.Owner, err.Error(), status, retry, now)
	if rerr != nil {
		log.Warn("recording a failed webhook failed", "err", rerr)
	}
	if disabled {
		log.Warn("webhook endpoint switched off after consecutive failures", "url", d.URL, "err", err)
		return
	}
	log.Warn("webhook attempt failed", "err", err, "retry_in", retry.String())
}

func (w *Worker) post(ctx context.Context, d webhook.Delivery) (*int, error) {
	secret, err := w.cfg.Secrets(d.SecretRef)
	if err != nil {
		return nil, err
	}
	msgID := "msg_" + strings.ReplaceAll(d.ID, "-", "")
	headers, err := webhook.Headers(secret, msgID, time.Now(), d.Payload)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "export-platform-webhooks/1")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", d.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	status := resp.StatusCode
	if status/100 != 2 {
		return &status, fmt.Errorf("POST %s: %s", d.URL, strings.TrimSpace(resp.Status+" "+strings.TrimSpace(string(body))))
	}
	return &status, nil
}
