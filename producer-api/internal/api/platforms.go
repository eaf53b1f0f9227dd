package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/productsmanager/exportplatform/pkg/destination"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/pkg/webhook"
)

// Platforms is what the API needs of the platforms' repository (pkg/platformstore).
type Platforms interface {
	Create(ctx context.Context, p platform.Platform, audit *events.Accessed) (platform.Platform, error)
	Get(ctx context.Context, id string) (platform.Platform, error)
	List(ctx context.Context, f platformstore.ListFilter) ([]platform.Platform, string, error)
	Change(ctx context.Context, id string, audit *events.Accessed, fn func(*platform.Platform) error) (platform.Platform, error)
	Delete(ctx context.Context, id string, audit *events.Accessed, check func(platform.Platform) error) error
}

// platformBody is a platform as a client sends it (create, full update). The read-only keys
// of the platform's JSON are accepted and ignored, so what a GET returned can be PUT back.
type platformBody struct {
	Name          string          `json:"name"`
	Type          platform.Type   `json:"type"`
	DefaultConfig json.RawMessage `json:"default_config"`
	Destination   json.RawMessage `json:"destination"`
	Webhook       json.RawMessage `json:"webhook"`
	ID            *string         `json:"id"`
	ScheduleIDs   json.RawMessage `json:"schedule_ids"`
	Owner         json.RawMessage `json:"owner"`
	CreatedBy     json.RawMessage `json:"created_by"`
	CreatedAt     json.RawMessage `json:"created_at"`
	UpdatedAt     json.RawMessage `json:"updated_at"`
	Version       json.RawMessage `json:"version"`
	// WebhookStatus is the GET's view of the webhook endpoint: ignored, like the keys above.
	WebhookStatus json.RawMessage `json:"webhook_status"`
}

// decodePart decodes one object of the body on its own, so that an unknown key is named with
// its path (default_config.colour).
func decodePart(raw json.RawMessage, name string, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if br := strictJSON(raw, v); br != nil {
		field := name
		if br.field != "" {
			field += "." + strings.TrimPrefix(br.field, name+".")
		}
		return &badRequest{code: br.code, message: name + ": " + br.message, field: field}
	}
	return nil
}

// platformSpec validates a body into a normalized platform spec. Its defaults must be a valid
// export (export.Prepare, as any request): a platform is a preconfigured export.
func platformSpec(b platformBody) (platform.Spec, error) {
	s := platform.Spec{Name: b.Name, Type: b.Type}
	if err := decodePart(b.DefaultConfig, "default_config", &s.DefaultConfig); err != nil {
		return s, err
	}
	if err := decodePart(b.Destination, "destination", &s.Destination); err != nil {
		return s, err
	}
	if len(b.Webhook) > 0 && string(b.Webhook) != "null" {
		s.Webhook = &platform.Webhook{}
		if err := decodePart(b.Webhook, "webhook", s.Webhook); err != nil {
			return s, err
		}
	}
	if err := s.Normalize(); err != nil {
		var fe *platform.FieldError
		if errors.As(err, &fe) {
			return s, invalid(fe.Field, "%s", fe.Error())
		}
		return s, err
	}
	d := s.Defaults()
	if d.Entity == "" {
		return s, invalid("default_config.entity", "is required (products or suppliers), unless the type's template sets it")
	}
	if d.Format == "" {
		return s, invalid("default_config.format", "is required (csv, excel or json), unless the type's template sets it")
	}
	if _, err := prepare(d); err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			return s, &badRequest{code: br.code, field: "default_config." + br.field, message: br.message}
		}
		return s, err
	}
	return s, nil
}

func (a *api) decodePlatform(w http.ResponseWriter, r *http.Request) (platform.Spec, bool) {
	var body platformBody
	if !a.decode(w, r, &body, false) {
		return platform.Spec{}, false
	}
	if id, ok := mux.Vars(r)["id"]; ok && body.ID != nil && *body.ID != id {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("id %q in the body contradicts %q in the path", *body.ID, id), "id")
		return platform.Spec{}, false
	}
	spec, err := platformSpec(body)
	if err != nil {
		a.refuse(w, r, err)
		return spec, false
	}
	return spec, true
}

func (a *api) createPlatform(w http.ResponseWriter, r *http.Request) {
	spec, ok := a.decodePlatform(w, r)
	if !ok {
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		a.internal(w, r, "generating platform id", err)
		return
	}
	p, err := a.Platforms.Create(r.Context(), platform.New(id.String(), spec, principal(r).Subject, a.Now()),
		a.changeAudit(r, events.ActionPlatformCreated))
	if !a.platformFound(w, r, id.String(), err) {
		return
	}
	a.Log.Info("platform created", "platform_id", p.ID, "owner", p.Owner, "type", p.Type)
	w.Header().Set("Location", "/api/v1/exports/platforms/"+p.ID)
	server.WriteJSON(w, http.StatusCreated, p)
}

// Webhooks is what the API needs of the webhook deliveries' repository (pkg/webhook).
type Webhooks interface {
	List(ctx context.Context, platformID string, limit int, cursor string) ([]webhook.Delivery, string, error)
	Endpoint(ctx context.Context, platformID string) (*webhook.Endpoint, error)
	Enable(ctx context.Context, platformID string, now time.Time) error
}

// platformView is a platform with the state of its webhook endpoint (switched off after
// repeated failures, and why).
type platformView struct {
	platform.Platform
	WebhookStatus *webhook.Endpoint `json:"webhook_status,omitempty"`
}

func (a *api) view(r *http.Request, p platform.Platform) platformView {
	v := platformView{Platform: p}
	if a.Webhooks != nil && p.Webhook != nil {
		e, err := a.Webhooks.Endpoint(r.Context(), p.ID)
		if err != nil {
			a.Log.Warn("reading a webhook endpoint", "platform_id", p.ID, "err", err)
		}
		v.WebhookStatus = e
	}
	return v
}

func (a *api) getPlatform(w http.ResponseWriter, r *http.Request) {
	if p, ok := a.lookupPlatform(w, r); ok {
		server.WriteJSON(w, http.StatusOK, a.view(r, p))
	}
}

// webhookDeliveries answers a platform's webhook delivery log, newest first, paged.
func (a *api) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, "limit", "cursor") {
		return
	}
	p, ok := a.lookupPlatform(w, r)
	if !ok {
		return
	}
	limit, ok := intParam(w, "limit", q.Get("limit"), 50, 500)
	if !ok {
		return
	}
	if a.Webhooks == nil {
		server.WriteError(w, http.StatusServiceUnavailable, "unavailable", "webhooks are not configured on this server", "")
		return
	}
	items, next, err := a.Webhooks.List(r.Context(), p.ID, limit, q.Get("cursor"))
	if errors.Is(err, jobstore.ErrBadCursor) {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "cursor is not one this API returned", "cursor")
		return
	}
	if err != nil {
		a.internal(w, r, "listing webhook deliveries", err)
		return
	}
	if items == nil {
		items = []webhook.Delivery{}
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

func (a *api) listPlatforms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, "type", "owner", "limit", "cursor") {
		return
	}
	f := platformstore.ListFilter{Type: platform.Type(q.Get("type")), Owner: q.Get("owner"), Cursor: q.Get("cursor")}
	if p := principal(r); !p.Manager() {
		if f.Owner != "" && f.Owner != p.Subject {
			server.WriteJSON(w, http.StatusOK, map[string]any{"items": []platform.Platform{}, "next_cursor": ""})
			return
		}
		f.Owner = p.Subject
	}
	limit, ok := intParam(w, "limit", q.Get("limit"), 50, 500)
	if !ok {
		return
	}
	f.Limit = limit
	items, next, err := a.Platforms.List(r.Context(), f)
	if errors.Is(err, platformstore.ErrBadCursor) {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "cursor is not one this API returned", "cursor")
		return
	}
	if err != nil {
		a.internal(w, r, "listing platforms", err)
		return
	}
	if items == nil {
		items = []platform.Platform{}
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

func (a *api) updatePlatform(w http.ResponseWriter, r *http.Request) {
	spec, ok := a.decodePlatform(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	p, err := a.Platforms.Change(r.Context(), id, a.changeAudit(r, events.ActionPlatformUpdated), func(p *platform.Platform) error {
		if err := a.reachPlatform(r, *p); err != nil {
			return err
		}
		if err := a.schedulesStillRun(r, p.ScheduleIDs, spec); err != nil {
			return err
		}
		p.Spec, p.UpdatedAt = spec, a.Now().UTC()
		return nil
	})
	if !a.platformFound(w, r, id, err) {
		return
	}
	// Saving a platform again switches its webhook endpoint back on (a person looked at it).
	if a.Webhooks != nil && p.Webhook != nil {
		if err := a.Webhooks.Enable(r.Context(), p.ID, a.Now().UTC()); err != nil {
			a.Log.Warn("switching a webhook endpoint back on", "platform_id", p.ID, "err", err)
		}
	}
	a.Log.Info("platform updated", "platform_id", p.ID)
	server.WriteJSON(w, http.StatusOK, a.view(r, p))
}

func (a *api) deletePlatform(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	err := a.Platforms.Delete(r.Context(), id, a.changeAudit(r, events.ActionPlatformDeleted), func(p platform.Platform) error {
		return a.reachPlatform(r, p)
	})
	var inUse *platformstore.InUseError
	if errors.As(err, &inUse) {
		server.WriteError(w, http.StatusConflict, "platform_in_use",
			fmt.Sprintf("schedules still use this platform: %s; delete them or point them elsewhere first", strings.Join(inUse.ScheduleIDs, ", ")), "")
		return
	}
	if !a.platformFound(w, r, id, err) {
		return
	}
	a.Log.Info("platform deleted", "platform_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// lookupPlatform reads the route's platform for the caller; one out of the caller's reach is
// a 404, as for jobs and schedules.
func (a *api) lookupPlatform(w http.ResponseWriter, r *http.Request) (platform.Platform, bool) {
	id := mux.Vars(r)["id"]
	p, err := a.Platforms.Get(r.Context(), id)
	if err == nil {
		err = a.reachPlatform(r, p)
	}
	return p, a.platformFound(w, r, id, err)
}

// reachPlatform is nil when the caller may see and use p, else platformstore.ErrNotFound.
func (a *api) reachPlatform(r *http.Request, p platform.Platform) error {
	if c := principal(r); !c.Reaches(p.Owner) {
		a.Log.Warn("access to another user's platform refused", "platform_id", p.ID, "sub", c.Subject)
		a.refused(r, events.Accessed{Action: events.ActionDenied, ResourceType: "platform", ResourceID: p.ID, Owner: p.Owner,
			Status: http.StatusNotFound, Reason: "not_owner"})
		return platformstore.ErrNotFound
	}
	return nil
}

// platformFound answers a platform store error: 404, 409, 500, or nothing (true) when nil.
func (a *api) platformFound(w http.ResponseWriter, r *http.Request, id string, err error) bool {
	var broken *breaksSchedule
	switch {
	case err == nil:
		return true
	case errors.As(err, &broken):
		server.WriteError(w, http.StatusConflict, "breaks_schedule",
			fmt.Sprintf("schedule %s runs with this platform's defaults, and would no longer be a valid export: %s",
				broken.scheduleID, broken.why.message), "default_config."+strings.TrimPrefix(broken.why.field, "export_config."))
	case errors.Is(err, platformstore.ErrNotFound):
		server.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no platform %q", id), "")
	case errors.Is(err, platformstore.ErrNameTaken):
		server.WriteError(w, http.StatusConflict, "name_taken", "you already have a platform of that name", "name")
	default:
		a.internal(w, r, "saving the platform", err)
	}
	return false
}

// platformDefaults are the defaults of the platform a request or schedule names (field is
// where it names it): a platform the caller may not use is unknown to them (a 400).
func (a *api) platformFor(r *http.Request, id, field string) (platform.Platform, error) {
	if a.Platforms == nil {
		return platform.Platform{}, invalid(field, "unknown platform %q", id)
	}
	p, err := a.Platforms.Get(r.Context(), id)
	if err == nil {
		err = a.reachPlatform(r, p)
	}
	if errors.Is(err, platformstore.ErrNotFound) {
		return p, invalid(field, "unknown platform %q", id)
	}
	if err != nil {
		return p, fmt.Errorf("reading platform %s: %w", id, err)
	}
	return p, nil
}

// testPlatform checks the platform's destination as a delivery would use it (connect, write
// and remove a probe) and answers each step. The secret references must resolve in this
// service's environment too (the exporter resolves them when it delivers).
func (a *api) testPlatform(w http.ResponseWriter, r *http.Request) {
	p, ok := a.lookupPlatform(w, r)
	if !ok {
		return
	}
	steps := []destination.Step{}
	sender, err := destination.Open(p.Destination, destination.EnvSecrets)
	switch {
	case errors.Is(err, destination.ErrStorageOnly):
		steps = append(steps, destination.Step{Step: "storage", OK: true})
	case err != nil:
		steps = append(steps, destination.Step{Step: "configure", Error: err.Error()})
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
		defer cancel()
		steps = sender.Probe(ctx)
		_ = sender.Close()
	}
	okAll := true
	for _, s := range steps {
		okAll = okAll && s.OK
	}
	target := ""
	if sender != nil {
		target = sender.Target()
	}
	a.Log.Info("platform tested", "platform_id", p.ID, "ok", okAll)
	server.WriteJSON(w, http.StatusOK, map[string]any{"ok": okAll, "destination": p.Destination.Type, "target": target, "steps": steps})
}

// breaksSchedule refuses a platform change after which a schedule tied to the platform would
// export a configuration Prepare refuses: its runs would fail one after the other.
type breaksSchedule struct {
	scheduleID string
	why        *badRequest
}

func (e *breaksSchedule) Error() string {
	return "breaks schedule " + e.scheduleID + ": " + e.why.Error()
}

// schedulesStillRun checks each schedule tied to a platform against the platform's new
// defaults, merged as a run merges them (the check createSchedule makes).
func (a *api) schedulesStillRun(r *http.Request, ids []string, spec platform.Spec) error {
	if a.Schedules == nil {
		return nil
	}
	for _, id := range ids {
		s, err := a.Schedules.Get(r.Context(), id)
		if errors.Is(err, schedstore.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("reading schedule %s: %w", id, err)
		}
		c := export.Merge(spec.Defaults(), s.ExportConfig)
		for k, v := range map[string]string{"entity": c.Entity, "format": c.Format} {
			if v == "" {
				return &breaksSchedule{id, invalid(k, "is required: neither the schedule nor the platform sets it")}
			}
		}
		_, err = prepare(c)
		var br *badRequest
		if errors.As(err, &br) {
			return &breaksSchedule{id, br}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
