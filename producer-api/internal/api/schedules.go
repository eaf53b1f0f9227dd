package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// Schedules is what the API needs of the schedules' repository (pkg/schedstore).
type Schedules interface {
	Create(ctx context.Context, s schedule.Schedule, audit *events.Accessed) (schedule.Schedule, error)
	Get(ctx context.Context, id string) (schedule.Schedule, error)
	List(ctx context.Context, f schedstore.ListFilter) ([]schedule.Schedule, string, error)
	Change(ctx context.Context, id string, audit *events.Accessed, fn func(*schedule.Schedule) ([]schedule.Fire, error)) (schedule.Schedule, error)
	Delete(ctx context.Context, id string, audit *events.Accessed) error
	RunNow(ctx context.Context, id string, now time.Time, jobID string, audit *events.Accessed) (jobstore.Job, error)
	Runs(ctx context.Context, s schedule.Schedule, f schedstore.RunFilter) ([]schedstore.Run, string, error)
}

// disabledWindow bounds the fire times logged "disabled" when a schedule is switched back on.
const disabledWindow = 24 * time.Hour

// scheduleBody is a schedule as a client sends it (create, full update). The read-only keys
// of the schedule's JSON are accepted and ignored, so what a GET returned can be PUT back.
type scheduleBody struct {
	Name              string          `json:"name"`
	PlatformID        *string         `json:"platform_id"`
	ScheduleType      string          `json:"schedule_type"`
	CronExpression    string          `json:"cron_expression"`
	IntervalMinutes   int             `json:"interval_minutes"`
	Timezone          string          `json:"timezone"`
	ExportConfig      json.RawMessage `json:"export_config"`
	MaxRetries        int             `json:"max_retries"`
	RetryDelaySeconds *int            `json:"retry_delay_seconds"`
	MisfirePolicy     string          `json:"misfire_policy"`
	OverlapPolicy     string          `json:"overlap_policy"`
	Enabled           *bool           `json:"enabled"`

	ID         *string         `json:"id"`
	NextRunAt  json.RawMessage `json:"next_run_at"`
	Owner      json.RawMessage `json:"owner"`
	CreatedBy  json.RawMessage `json:"created_by"`
	Stats      json.RawMessage `json:"stats"`
	AnchorAt   json.RawMessage `json:"anchor_at"`
	CreatedAt  json.RawMessage `json:"created_at"`
	UpdatedAt  json.RawMessage `json:"updated_at"`
	LastError  json.RawMessage `json:"last_error"`
	DisabledAt json.RawMessage `json:"disabled_at"`
	Version    json.RawMessage `json:"version"`
}

// spec validates a body into a normalized schedule spec; the export configuration is checked
// by the same prepare as an immediate export. A refusal is a *badRequest naming the field.
func (a *api) scheduleSpec(r *http.Request, b scheduleBody, now time.Time) (schedule.Spec, error) {
	if len(b.ExportConfig) == 0 || string(b.ExportConfig) == "null" {
		return schedule.Spec{}, invalid("export_config", "is required: {\"entity\": \"products\", \"format\": \"csv\", …}")
	}
	// Decoded on its own, so that an unknown key is named with its path.
	var cfg schedule.ExportConfig
	if br := strictJSON(b.ExportConfig, &cfg); br != nil {
		field := "export_config"
		if br.field != "" && !strings.HasPrefix(br.field, "export_config.") {
			field += "." + br.field
		} else if br.field != "" {
			field = br.field
		}
		return schedule.Spec{}, &badRequest{code: br.code, message: "export_config: " + br.message, field: field}
	}
	s := schedule.Spec{
		Name: b.Name, PlatformID: b.PlatformID, Type: schedule.Kind(b.ScheduleType), CronExpression: b.CronExpression,
		IntervalMinutes: b.IntervalMinutes, Timezone: b.Timezone, ExportConfig: cfg,
		MaxRetries: b.MaxRetries, RetryDelaySeconds: schedule.DefaultRetryDelaySeconds,
		MisfirePolicy: schedule.MisfirePolicy(b.MisfirePolicy), OverlapPolicy: schedule.OverlapPolicy(b.OverlapPolicy),
		Enabled: true,
	}
	if b.RetryDelaySeconds != nil {
		s.RetryDelaySeconds = *b.RetryDelaySeconds
	}
	if b.Enabled != nil {
		s.Enabled = *b.Enabled
	}
	if err := s.Normalize(now); err != nil {
		return s, refusal(err)
	}
	// Each run exports the schedule's configuration over its platform's defaults, read when it
	// fires (a platform's change reaches its schedules' next runs); checked merged now.
	c := s.ExportConfig
	if s.PlatformID != nil {
		pl, err := a.platformFor(r, *s.PlatformID, "platform_id")
		if err != nil {
			return s, err
		}
		s.PlatformID, c = &pl.ID, export.Merge(pl.Defaults(), c)
		for k, v := range map[string]string{"entity": c.Entity, "format": c.Format} {
			if v == "" {
				return s, invalid("export_config."+k, "is required: neither the schedule nor its platform sets it")
			}
		}
	}
	spec, err := prepare(c)
	var br *badRequest
	if errors.As(err, &br) {
		return s, &badRequest{code: br.code, field: "export_config." + br.field, message: br.message}
	}
	if err != nil {
		return s, err
	}
	if s.PlatformID == nil || s.ExportConfig.FileName != "" {
		s.ExportConfig.FileName = spec.FileName
	}
	return s, nil
}

// refusal turns the domain's *schedule.FieldError into the API's 400; other errors pass.
func refusal(err error) error {
	var fe *schedule.FieldError
	if errors.As(err, &fe) {
		return invalid(fe.Field, "%s", fe.Error())
	}
	return err
}

func (a *api) decodeSchedule(w http.ResponseWriter, r *http.Request) (schedule.Spec, bool) {
	var body scheduleBody
	if !a.decode(w, r, &body, false) {
		return schedule.Spec{}, false
	}
	if id, ok := mux.Vars(r)["id"]; ok && body.ID != nil && *body.ID != id {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("id %q in the body contradicts %q in the path", *body.ID, id), "id")
		return schedule.Spec{}, false
	}
	spec, err := a.scheduleSpec(r, body, a.Now())
	if err != nil {
		a.refuse(w, r, err)
		return spec, false
	}
	return spec, true
}

func (a *api) createSchedule(w http.ResponseWriter, r *http.Request) {
	spec, ok := a.decodeSchedule(w, r)
	if !ok {
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		a.internal(w, r, "generating schedule id", err)
		return
	}
	p, _ := auth.FromContext(r.Context())
	s, err := schedule.New(id.String(), spec, p.Subject, a.Now())
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	s, err = a.Schedules.Create(r.Context(), s, a.changeAudit(r, events.ActionScheduleCreated))
	if err != nil {
		a.internal(w, r, "creating the schedule", err)
		return
	}
	a.Log.Info("schedule created", "schedule_id", s.ID, "owner", s.Owner, "type", s.Type, "cron", s.CronExpression,
		"interval_minutes", s.IntervalMinutes, "timezone", s.Timezone)
	w.Header().Set("Location", "/api/v1/exports/schedules/"+s.ID)
	server.WriteJSON(w, http.StatusCreated, s)
}

func (a *api) getSchedule(w http.ResponseWriter, r *http.Request) {
	if s, ok := a.lookupSchedule(w, r); ok {
		server.WriteJSON(w, http.StatusOK, s)
	}
}

// lookupSchedule reads the route's schedule for the caller; one out of the caller's reach is
// a 404, as for jobs.
func (a *api) lookupSchedule(w http.ResponseWriter, r *http.Request) (schedule.Schedule, bool) {
	id := mux.Vars(r)["id"]
	s, err := a.Schedules.Get(r.Context(), id)
	if err == nil {
		err = a.reach(r, &s)
	}
	return s, a.scheduleFound(w, r, id, err)
}

// reach is nil when the caller may see and change s, else schedstore.ErrNotFound.
func (a *api) reach(r *http.Request, s *schedule.Schedule) error {
	if p := principal(r); !p.Reaches(s.Owner) {
		a.Log.Warn("access to another user's schedule refused", "schedule_id", s.ID, "sub", p.Subject)
		a.refused(r, events.Accessed{Action: events.ActionDenied, ResourceType: "schedule", ResourceID: s.ID, Owner: s.Owner,
			Status: http.StatusNotFound, Reason: "not_owner"})
		return schedstore.ErrNotFound
	}
	return nil
}

// scheduleFound answers a schedule store error: 404, 500, or nothing (true) when err is nil.
func (a *api) scheduleFound(w http.ResponseWriter, r *http.Request, id string, err error) bool {
	switch {
	case errors.Is(err, schedstore.ErrNotFound):
		server.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no schedule %q", id), "")
		return false
	case err != nil:
		var br *badRequest
		var fe *schedule.FieldError
		switch {
		case errors.As(err, &br):
			a.refuse(w, r, err)
			return false
		case errors.As(err, &fe):
			// The stored schedule cannot be switched on as it is (the scheduler disabled it):
			// the client must PUT a valid one.
			server.WriteError(w, http.StatusConflict, "invalid_schedule",
				fmt.Sprintf("the stored schedule's %s %s; PUT a corrected schedule", fe.Field, fe.Message), fe.Field)
			return false
		}
		a.internal(w, r, "reading or changing the schedule", err)
		return false
	}
	return true
}

// knownParams refuses, with a 400 naming it, a query parameter not in names and a value
// PostgreSQL text cannot hold (invalid UTF-8, NUL).
func knownParams(w http.ResponseWriter, q url.Values, names ...string) bool {
	for k, vs := range q {
		if !slices.Contains(names, k) {
			server.WriteError(w, http.StatusBadRequest, "invalid_argument",
				fmt.Sprintf("unknown parameter %q (one of %s)", k, strings.Join(names, ", ")), k)
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				server.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("%s is not UTF-8 text (or holds a NUL)", k), k)
				return false
			}
		}
	}
	return true
}

// timeParams reads the RFC 3339 time parameters named by into's keys (empty: left as is); a
// bad one is a 400 naming it.
func timeParams(w http.ResponseWriter, q url.Values, into map[string]*time.Time) bool {
	for name, dst := range into {
		s := q.Get(name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			server.WriteError(w, http.StatusBadRequest, "invalid_argument",
				fmt.Sprintf("%s must be an RFC 3339 time such as 2026-01-31T00:00:00Z", name), name)
			return false
		}
		*dst = t
	}
	return true
}

// intParam reads an integer parameter: def when empty, else 1..max.
func intParam(w http.ResponseWriter, name, s string, def, max int) (int, bool) {
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("%s must be an integer from 1 to %d", name, max), name)
		return 0, false
	}
	return n, true
}

func (a *api) listSchedules(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, "enabled", "platform_id", "owner", "limit", "cursor") {
		return
	}
	f := schedstore.ListFilter{PlatformID: q.Get("platform_id"), Owner: q.Get("owner"), Cursor: q.Get("cursor")}
	if p := principal(r); !p.Manager() {
		if f.Owner != "" && f.Owner != p.Subject {
			server.WriteJSON(w, http.StatusOK, map[string]any{"items": []schedule.Schedule{}, "next_cursor": ""})
			return
		}
		f.Owner = p.Subject
	}
	if s := q.Get("enabled"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			server.WriteError(w, http.StatusBadRequest, "invalid_argument", "enabled must be true or false", "enabled")
			return
		}
		f.Enabled = &b
	}
	limit, ok := intParam(w, "limit", q.Get("limit"), 50, 500)
	if !ok {
		return
	}
	f.Limit = limit
	items, next, err := a.Schedules.List(r.Context(), f)
	if errors.Is(err, schedstore.ErrBadCursor) {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "cursor is not one this API returned", "cursor")
		return
	}
	if err != nil {
		a.internal(w, r, "listing schedules", err)
		return
	}
	if items == nil {
		items = []schedule.Schedule{}
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

func (a *api) updateSchedule(w http.ResponseWriter, r *http.Request) {
	spec, ok := a.decodeSchedule(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	s, err := a.Schedules.Change(r.Context(), id, a.changeAudit(r, events.ActionScheduleUpdated), func(s *schedule.Schedule) ([]schedule.Fire, error) {
		if err := a.reach(r, s); err != nil {
			return nil, err
		}
		return s.Replace(spec, a.Now(), disabledWindow)
	})
	if !a.scheduleFound(w, r, id, err) {
		return
	}
	a.Log.Info("schedule updated", "schedule_id", s.ID, "enabled", s.Enabled)
	server.WriteJSON(w, http.StatusOK, s)
}

// toggleSchedule flips enabled, or sets it to the body's {"enabled": …} when given (so a
// client that retries does not flip it back).
func (a *api) toggleSchedule(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if !a.decode(w, r, &body, true) {
		return
	}
	id := mux.Vars(r)["id"]
	s, err := a.Schedules.Change(r.Context(), id, a.changeAudit(r, events.ActionScheduleToggled), func(s *schedule.Schedule) ([]schedule.Fire, error) {
		if err := a.reach(r, s); err != nil {
			return nil, err
		}
		on := !s.Enabled
		if body.Enabled != nil {
			on = *body.Enabled
		}
		if on == s.Enabled {
			return nil, nil
		}
		return s.SetEnabled(on, a.Now(), disabledWindow)
	})
	if !a.scheduleFound(w, r, id, err) {
		return
	}
	a.Log.Info("schedule toggled", "schedule_id", s.ID, "enabled", s.Enabled)
	server.WriteJSON(w, http.StatusOK, s)
}

func (a *api) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if _, ok := a.lookupSchedule(w, r); !ok {
		return
	}
	if !a.scheduleFound(w, r, id, a.Schedules.Delete(r.Context(), id, a.changeAudit(r, events.ActionScheduleDeleted))) {
		return
	}
	a.Log.Info("schedule deleted", "schedule_id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) runSchedule(w http.ResponseWriter, r *http.Request) {
	if !a.decode(w, r, &struct{}{}, true) {
		return
	}
	id := mux.Vars(r)["id"]
	if _, ok := a.lookupSchedule(w, r); !ok {
		return
	}
	jobID, err := uuid.NewV7()
	if err != nil {
		a.internal(w, r, "generating job id", err)
		return
	}
	job, err := a.Schedules.RunNow(r.Context(), id, a.Now(), jobID.String(), a.changeAudit(r, events.ActionScheduleRun))
	if errors.Is(err, schedstore.ErrRunExists) {
		server.WriteError(w, http.StatusConflict, "conflict", "a run of this schedule started at this very instant; retry", "")
		return
	}
	if !a.scheduleFound(w, r, id, err) {
		return
	}
	a.Notify()
	a.metrics.jobsRequested.WithLabelValues(job.Entity, job.Format).Inc()
	a.Log.Info("schedule run now", "schedule_id", id, "job_id", job.ID)
	a.accepted(w, job)
}

type fireTime struct {
	At    time.Time `json:"at"`
	Local string    `json:"local"`
}

// nextRuns lists the next count fire times (default 5, at most 1000) after now, in UTC and
// on the schedule's wall clock. A disabled schedule shows when it would fire.
func (a *api) nextRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, "count") {
		return
	}
	count, ok := intParam(w, "count", q.Get("count"), 5, 1000)
	if !ok {
		return
	}
	s, ok := a.lookupSchedule(w, r)
	if !ok {
		return
	}
	t, err := s.Spec.Timing(s.AnchorAt)
	if err != nil {
		a.internal(w, r, "reading the schedule's timing", err)
		return
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"timezone": s.Timezone, "enabled": s.Enabled, "runs": upcoming(t, a.Now(), count)})
}

func upcoming(t schedule.Timing, now time.Time, count int) []fireTime {
	runs := []fireTime{}
	for _, at := range t.Upcoming(now, count) {
		runs = append(runs, fireTime{At: at, Local: at.In(t.Location()).Format(time.RFC3339)})
	}
	return runs
}

// previewSchedule answers the next fire times of timing fields not saved anywhere (the web
// form shows them while the expression is typed): schedule_type, cron_expression,
// interval_minutes, timezone and count; a bad one is a 400 naming it. An interval counts from
// now, as a schedule created now would.
func (a *api) previewSchedule(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ScheduleType    string `json:"schedule_type"`
		CronExpression  string `json:"cron_expression"`
		IntervalMinutes int    `json:"interval_minutes"`
		Timezone        string `json:"timezone"`
		Count           int    `json:"count"`
	}
	if !a.decode(w, r, &body, false) {
		return
	}
	count := body.Count
	if count == 0 {
		count = 5
	}
	if count < 1 || count > 1000 {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "count must be an integer from 1 to 1000", "count")
		return
	}
	now := a.Now()
	spec := schedule.Spec{Type: schedule.Kind(body.ScheduleType), CronExpression: body.CronExpression,
		IntervalMinutes: body.IntervalMinutes, Timezone: body.Timezone}
	if err := spec.NormalizeTiming(now); err != nil {
		a.refuse(w, r, refusal(err))
		return
	}
	t, err := spec.Timing(now.UTC().Truncate(time.Second))
	if err != nil {
		a.internal(w, r, "previewing a schedule", err)
		return
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"timezone": spec.Timezone, "schedule_type": spec.Type, "runs": upcoming(t, now, count)})
}

func (a *api) scheduleRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, "status", "limit", "cursor") {
		return
	}
	f := schedstore.RunFilter{Status: schedule.RunStatus(q.Get("status")), Cursor: q.Get("cursor")}
	if f.Status != "" && !validRunStatus(f.Status) {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("unknown status %q (one of queued, running, retrying, completed, failed, cancelled, missed, skipped_overlap, disabled)", f.Status), "status")
		return
	}
	limit, ok := intParam(w, "limit", q.Get("limit"), 50, 500)
	if !ok {
		return
	}
	f.Limit = limit
	s, ok := a.lookupSchedule(w, r)
	if !ok {
		return
	}
	runs, next, err := a.Schedules.Runs(r.Context(), s, f)
	if errors.Is(err, schedstore.ErrBadCursor) {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "cursor is not one this API returned", "cursor")
		return
	}
	if err != nil {
		a.internal(w, r, "reading the run log", err)
		return
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"items": runs, "next_cursor": next})
}

func validRunStatus(s schedule.RunStatus) bool {
	switch s {
	case schedule.RunQueued, schedule.RunRunning, schedule.RunRetrying, schedule.RunCompleted, schedule.RunFailed,
		schedule.RunCancelled, schedule.RunMissed, schedule.RunSkippedOverlap, schedule.RunDisabled:
		return true
	}
	return false
}
