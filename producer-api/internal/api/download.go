package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// download streams a completed job's file from the object store.
func (a *api) download(w http.ResponseWriter, r *http.Request) {
	job, ok := a.lookup(w, r, mux.Vars(r)["task_id"])
	if !ok {
		return
	}
	switch {
	case job.Status == jobstore.StatusExpired || job.FileRemoved ||
		job.ExpiresAt != nil && !a.Now().Before(*job.ExpiresAt):
		server.WriteError(w, http.StatusGone, "expired", "the file of this export has expired", "")
		return
	case job.Status != jobstore.StatusCompleted || job.File == nil:
		server.WriteError(w, http.StatusConflict, "not_ready",
			fmt.Sprintf("export is %s; the file is available once it is completed", job.Status), "")
		return
	}
	body, info, err := a.Objects.Get(r.Context(), job.File.Key)
	if errors.Is(err, objectstore.ErrNotFound) {
		server.WriteError(w, http.StatusGone, "file_missing", "the file of this export is no longer stored", "")
		return
	}
	if err != nil {
		a.internal(w, r, "opening the export file", err)
		return
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", job.File.ContentType)
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	h.Set("Content-Disposition", contentDisposition(job.File.FileName))
	h.Set("X-Content-SHA256", job.File.SHA256)
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	// Every write has a deadline and a client slower than the minimum rate is cut: a stalled
	// reader must not hold the connection (and the object store's) for hours.
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	dw := &streamWriter{w: w, rc: rc, cancel: func() {}, timeout: a.StreamWriteTimeout, bytes: func(float64) {},
		pace: a.pace(), started: true}
	_, err = io.CopyBuffer(dw, body, make([]byte, 64<<10))
	ev := job.Access(events.ActionDownloaded)
	ev.Rows, ev.Bytes, ev.Complete, ev.Status = ptr(job.RowsDone), ptr(dw.n), ptr(err == nil), http.StatusOK
	a.audit(r, ev)
	if err != nil {
		a.Log.Warn("download interrupted", "job_id", job.ID, "bytes", dw.n, "err", err)
		if dw.err != nil {
			panic(http.ErrAbortHandler) // the client sees a cut transfer, never a short file
		}
	}
}
