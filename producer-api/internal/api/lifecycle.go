package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// cancelJob ends a queued or running job (POST /{id}/cancel): a queued job never starts, a
// running one stops within a second and leaves no file. A finished job is a 409.
func (a *api) cancelJob(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if _, ok := a.lookup(w, r, id); !ok {
		return
	}
	p := principal(r)
	job, err := a.Jobs.Cancel(r.Context(), id, p.Subject)
	switch {
	case errors.Is(err, jobstore.ErrNotFound):
		server.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no export job %q", id), "")
		return
	case errors.Is(err, jobstore.ErrFinished):
		msg := fmt.Sprintf("export is already %s; only a queued or running export can be cancelled", job.Status)
		if !job.Status.Terminal() {
			msg = "export is storing its finished file; it can no longer be cancelled (delete it once completed)"
		}
		server.WriteError(w, http.StatusConflict, "already_finished", msg, "")
		return
	case err != nil:
		a.internal(w, r, "cancelling the job", err)
		return
	}
	a.Notify()
	a.metrics.jobsCancelled.Inc()
	a.Log.Info("export cancelled", "job_id", job.ID, "cancelled_by", p.Subject)
	server.WriteJSON(w, http.StatusOK, job)
}

// deleteJob cancels the job if it is queued or running, removes its file and hides it from the
// API for good (DELETE /{id}); its events, the audit trail, stay. A file the bucket refuses to
// remove now is removed by the retention sweeper.
func (a *api) deleteJob(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if _, ok := a.lookup(w, r, id); !ok {
		return
	}
	p := principal(r)
	job, err := a.Jobs.Delete(r.Context(), id, p.Subject, a.changeAudit(r, events.ActionDeleted))
	if errors.Is(err, jobstore.ErrNotFound) {
		server.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no export job %q", id), "")
		return
	}
	if err != nil {
		a.internal(w, r, "deleting the job", err)
		return
	}
	a.Notify()
	if job.File != nil && !job.FileRemoved {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if err := a.Objects.Delete(ctx, job.File.Key); err != nil {
			a.Log.Warn("removing the file of a deleted job failed; the sweeper will retry", "job_id", job.ID, "key", job.File.Key, "err", err)
		} else if err := a.Jobs.FileRemoved(ctx, job.ID, a.Now()); err != nil {
			a.Log.Warn("recording the removal of a deleted job's file failed", "job_id", job.ID, "err", err)
		}
	}
	a.Log.Info("export deleted", "job_id", job.ID, "deleted_by", p.Subject)
	w.WriteHeader(http.StatusNoContent)
}

// retryDelivery starts a new round of delivery attempts of a job whose delivery failed
// (POST /{id}/deliver), once its destination is mended; 409 when there is nothing to retry.
func (a *api) retryDelivery(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if _, ok := a.lookup(w, r, id); !ok {
		return
	}
	j, err := a.Jobs.Do(r.Context(), id, job.RetryDelivery{By: principal(r).Subject, At: a.Now().UTC()})
	switch {
	case errors.Is(err, jobstore.ErrNotFound), errors.Is(err, job.ErrNotFound):
		server.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no export job %q", id), "")
		return
	case errors.Is(err, job.ErrInvalid):
		server.WriteError(w, http.StatusConflict, "no_delivery", "this export's platform delivers nowhere beyond the export bucket", "")
		return
	case errors.Is(err, job.ErrStale):
		server.WriteError(w, http.StatusConflict, "delivery_not_failed", fmt.Sprintf("the delivery is %s: only a failed delivery is retried", j.Delivery.Status), "")
		return
	case errors.Is(err, job.ErrFinished):
		server.WriteError(w, http.StatusConflict, "file_gone", "the file has expired or was removed: nothing left to deliver", "")
		return
	case err != nil:
		a.internal(w, r, "retrying the delivery", err)
		return
	}
	a.Log.Info("delivery retried", "job_id", id, "by", principal(r).Subject)
	server.WriteJSON(w, http.StatusAccepted, j)
}
