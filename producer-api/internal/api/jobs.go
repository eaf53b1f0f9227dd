package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	jobpkg "github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/server"
)

type links struct {
	Self     string `json:"self"`
	Progress string `json:"progress"`
	Download string `json:"download"`
}

type accepted struct {
	TaskID string          `json:"task_id"`
	JobID  string          `json:"job_id"`
	Status jobstore.Status `json:"status"`
	Links  links           `json:"links"`
	Job    jobstore.Job    `json:"job"`
}

// createFromPath takes format and entity from the path; the body may repeat them, not
// contradict them.
func (a *api) createFromPath(w http.ResponseWriter, r *http.Request) {
	var body exportBody
	if !a.decode(w, r, &body, true) {
		return
	}
	vars := mux.Vars(r)
	for _, p := range []struct {
		name, path string
		body       *string
	}{{"format", vars["format"], &body.Format}, {"entity", vars["entity"], &body.Entity}} {
		if *p.body != "" && *p.body != p.path {
			server.WriteError(w, http.StatusBadRequest, "invalid_argument",
				fmt.Sprintf("%s %q in the body contradicts %q in the path", p.name, *p.body, p.path), p.name)
			return
		}
		*p.body = p.path
	}
	a.create(w, r, body)
}

func (a *api) createFromBody(w http.ResponseWriter, r *http.Request) {
	var body exportBody
	if !a.decode(w, r, &body, false) {
		return
	}
	a.create(w, r, body)
}

// create records an export job: the request over its platform's defaults when it names one
// (export.Merge), checked by prepare; the job records the merged configuration.
func (a *api) create(w http.ResponseWriter, r *http.Request, body exportBody) {
	req, platformID, deliver := body.Request, (*string)(nil), false
	if body.PlatformID != nil {
		pl, err := a.platformFor(r, *body.PlatformID, "platform_id")
		if err != nil {
			a.refuse(w, r, err)
			return
		}
		req, platformID, deliver = export.Merge(pl.Defaults(), req), &pl.ID, pl.Destination.Type != platform.Storage
	}
	if req.Entity == "" {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "entity is required", "entity")
		return
	}
	if req.Format == "" {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "format is required", "format")
		return
	}
	if body.Webhook != nil {
		if err := platform.CheckWebhook(body.Webhook); err != nil {
			var fe *platform.FieldError
			if errors.As(err, &fe) {
				err = invalid(fe.Field, "%s", fe.Error())
			}
			a.refuse(w, r, err)
			return
		}
	}
	spec, err := prepare(req)
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	p, _ := auth.FromContext(r.Context())
	id, err := uuid.NewV7()
	if err != nil {
		a.internal(w, r, "generating job id", err)
		return
	}
	// The job records its filters as parsed, not as typed: padding, duplicates and text where
	// a number is expected leave nothing behind (and cannot swell its events).
	filters := req.Filters
	if spec.Query != nil {
		filters = spec.Query.Filters
	}
	job, err := a.Jobs.CreateWithin(r.Context(), events.ExportRequested{
		JobID: id.String(), Entity: spec.Entity, Format: spec.Format,
		Fields: req.Fields, ExcludeFields: req.ExcludeFields, Filters: filters, Options: req.Options, PlatformID: platformID, Deliver: deliver, Webhook: body.Webhook,
		FileName: spec.FileName, Headers: spec.Headers, Compression: spec.Compression, RequestedBy: p.Subject, RequesterName: p.Name,
		RequestedAt: time.Now().UTC().Truncate(time.Microsecond),
	}, a.MaxActiveJobs)
	if errors.Is(err, jobstore.ErrTooManyActive) {
		server.WriteError(w, http.StatusTooManyRequests, "too_many_active_jobs",
			fmt.Sprintf("you already have %d exports queued or running; wait for one to end or cancel one", a.MaxActiveJobs), "")
		return
	}
	if errors.Is(err, jobstore.ErrEventTooLarge) {
		server.WriteError(w, http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("the export request is too large to be queued (its event would exceed %d bytes): shorten its lists or options", jobstore.MaxEventBytes), "")
		return
	}
	if err != nil {
		a.internal(w, r, "recording job", err)
		return
	}
	a.Notify()
	a.metrics.jobsRequested.WithLabelValues(spec.Entity, spec.Format).Inc()
	a.Log.Info("export requested", "job_id", job.ID, "entity", job.Entity, "format", job.Format, "requested_by", job.RequestedBy)
	a.accepted(w, job)
}

// accepted answers 202 with a job just queued and its links.
func (a *api) accepted(w http.ResponseWriter, job jobstore.Job) {
	base := "/api/v1/exports/"
	w.Header().Set("Location", base+job.ID)
	server.WriteJSON(w, http.StatusAccepted, accepted{
		TaskID: job.ID, JobID: job.ID, Status: job.Status, Job: job,
		Links: links{Self: base + job.ID, Progress: base + "progress/" + job.ID, Download: base + "download/" + job.ID},
	})
}

// decode reads a JSON body, size-limited, rejecting unknown keys with a 400 naming them. An
// empty body is allowed when optional.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			server.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("request body is larger than %d bytes", a.MaxBodySize), "")
			return false
		}
		server.WriteError(w, http.StatusBadRequest, "invalid_body", "could not read the request body", "")
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return true
		}
		server.WriteError(w, http.StatusBadRequest, "invalid_body", "a JSON body is required", "")
		return false
	}
	if err := strictJSON(data, v); err != nil {
		server.WriteError(w, http.StatusBadRequest, err.code, err.message, err.field)
		return false
	}
	return true
}

// strictJSON decodes one JSON value, refusing unknown keys and trailing data; the refusal
// names the key at fault.
func strictJSON(data []byte, v any) *badRequest {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg, field := describeJSONError(err)
		return &badRequest{code: "invalid_body", message: msg, field: field}
	}
	if dec.More() {
		return &badRequest{code: "invalid_body", message: "unexpected data after the JSON object"}
	}
	return nil
}

func describeJSONError(err error) (string, string) {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset), ""
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be a %s", te.Field, te.Type.String()), te.Field
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fmt.Sprintf("unknown key %q", name), name
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON body", ""
	}
	return "invalid JSON body", ""
}

func (a *api) getJob(w http.ResponseWriter, r *http.Request) {
	job, ok := a.lookup(w, r, mux.Vars(r)["id"])
	if !ok {
		return
	}
	server.WriteJSON(w, http.StatusOK, job)
}

func (a *api) progress(w http.ResponseWriter, r *http.Request) {
	job, ok := a.lookup(w, r, mux.Vars(r)["task_id"])
	if !ok {
		return
	}
	// The same view as the WebSocket's pushes (pkg/job.Progress): one shape for progress.
	server.WriteJSON(w, http.StatusOK, jobpkg.ProgressOf(job))
}

func (a *api) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, listParams...) {
		return
	}
	f := jobstore.ListFilter{
		Status: jobstore.Status(q.Get("status")), Entity: q.Get("entity"), Format: q.Get("format"),
		RequestedBy: q.Get("requested_by"), ScheduleID: q.Get("schedule_id"), Cursor: q.Get("cursor"), Limit: 50,
	}
	// Without MANAGE_EXPORTS a list holds the caller's own jobs: requested_by naming another
	// user finds none.
	if p := principal(r); !p.Manager() {
		if f.RequestedBy != "" && f.RequestedBy != p.Subject {
			server.WriteJSON(w, http.StatusOK, map[string]any{"items": []jobstore.Job{}, "next_cursor": ""})
			return
		}
		f.RequestedBy = p.Subject
	}
	if f.Status != "" && !f.Status.Valid() {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("unknown status %q (one of queued, running, completed, failed, cancelled, expired)", f.Status), "status")
		return
	}
	if f.Entity != "" && f.Entity != "products" && f.Entity != "suppliers" {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("unknown entity %q (one of products, suppliers)", f.Entity), "entity")
		return
	}
	if f.Format != "" && f.Format != "csv" && f.Format != "excel" && f.Format != "json" {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("unknown format %q (one of csv, excel, json)", f.Format), "format")
		return
	}
	if !timeParams(w, q, map[string]*time.Time{"created_after": &f.CreatedAfter, "created_before": &f.CreatedBefore,
		"scheduled_for": &f.ScheduledFor}) {
		return
	}
	limit, ok := intParam(w, "limit", q.Get("limit"), 50, 500)
	if !ok {
		return
	}
	f.Limit = limit
	jobs, next, err := a.Jobs.List(r.Context(), f)
	if errors.Is(err, jobstore.ErrBadCursor) {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "cursor is not one this API returned", "cursor")
		return
	}
	if err != nil {
		a.internal(w, r, "listing jobs", err)
		return
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"items": jobs, "next_cursor": next})
}

var listParams = []string{"status", "entity", "format", "requested_by", "schedule_id", "scheduled_for",
	"created_after", "created_before", "limit", "cursor"}

// lookup reads the job id for the caller: a job out of the caller's reach (another user's,
// without MANAGE_EXPORTS) is a 404 like one that does not exist, so ids reveal nothing.
func (a *api) lookup(w http.ResponseWriter, r *http.Request, id string) (jobstore.Job, bool) {
	job, err := a.Jobs.Get(r.Context(), id)
	if p := principal(r); err == nil && !p.Reaches(job.RequestedBy) {
		a.Log.Warn("access to another user's job refused", "job_id", id, "sub", p.Subject)
		a.refused(r, events.Accessed{Action: events.ActionDenied, ResourceType: "job", ResourceID: id, Owner: job.RequestedBy,
			Status: http.StatusNotFound, Reason: "not_owner"})
		err = jobstore.ErrNotFound
	}
	if errors.Is(err, jobstore.ErrNotFound) {
		server.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no export job %q", id), "")
		return job, false
	}
	if err != nil {
		a.internal(w, r, "reading job", err)
		return job, false
	}
	return job, true
}

// refuse answers a *badRequest with its 400, anything else as internal.
func (a *api) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		server.WriteError(w, http.StatusBadRequest, br.code, br.message, br.field)
		return
	}
	a.internal(w, r, "validating the export request", err)
}

// internal logs err and answers 500 without leaking it.
func (a *api) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.Log.Error(what, "err", err, "path", r.URL.Path)
	server.WriteError(w, http.StatusInternalServerError, "internal", "internal error while "+what+"; it has been logged", "")
}

// principal is the caller, authenticated by the route's middleware.
func principal(r *http.Request) auth.Principal {
	p, _ := auth.FromContext(r.Context())
	return p
}
