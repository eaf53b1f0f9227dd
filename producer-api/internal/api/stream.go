package api

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// defaultStreamWriteTimeout bounds one write of a stream to a client that stopped reading.
const defaultStreamWriteTimeout = time.Minute

// fields lists an entity's exportable fields in registry order, its filters by name, and the
// relations include_relations adds.
func (a *api) fields(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["entity"]
	e, ok := catalog.Lookup(name)
	if !ok {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("unknown entity %q (one of %s)", name, strings.Join(catalog.EntityNames(), ", ")), "entity")
		return
	}
	filters := slices.Clone(e.FilterNames())
	slices.Sort(filters)
	relations := e.Relations
	if relations == nil {
		relations = []catalog.Relation{}
	}
	server.WriteJSON(w, http.StatusOK, struct {
		Entity  string          `json:"entity"`
		Fields  []catalog.Field `json:"fields"`
		Filters []string        `json:"filters"`
		// Relations are what the json option include_relations adds to each row.
		Relations []catalog.Relation `json:"relations"`
	}{e.Name, e.Fields, filters, relations})
}

// stream answers GET /stream/{format}/{entity}: the export produced as the catalog query runs,
// through the same export.Run as the exporter's files, so the bytes are the same.
//
// Until the first byte the answer can still be an error (400 invalid, 503 catalog away); once
// bytes left, a failure aborts the connection so the client sees a truncated transfer, never a
// short file that looks complete. The query runs on the request's context: a client that goes
// away cancels it.
func (a *api) stream(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	format, entity := vars["format"], vars["entity"]
	switch format {
	case export.FormatCSV, export.FormatJSON:
	case export.FormatExcel:
		server.WriteError(w, http.StatusBadRequest, "unsupported_format",
			"an excel workbook cannot be streamed; POST /api/v1/exports/excel/"+entity+" makes one to download", "format")
		return
	default:
		server.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("unknown stream format %q (one of csv, json)", format), "format")
		return
	}
	body, err := decodeQuery(r.URL.RawQuery, format, entity)
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	spec, err := prepare(body.Request)
	if err != nil {
		a.refuse(w, r, repeatedError(err, r.URL.RawQuery))
		return
	}
	if a.Catalog == nil {
		a.catalogUnavailable(w)
		return
	}
	if a.UserStreams != nil {
		p := principal(r)
		release, ok, err := a.UserStreams.Acquire(r.Context(), p.Subject)
		switch {
		case err != nil:
			a.Log.Warn("per-user stream slots unavailable; stream let through", "sub", p.Subject, "err", err)
		case !ok:
			w.Header().Set("Retry-After", "5")
			server.WriteError(w, http.StatusTooManyRequests, "too_many_streams",
				"you already run the most streams one user may run at once; wait for one to end, or POST an export job", "")
			return
		default:
			defer release()
		}
	}
	if a.streamSlots != nil {
		select {
		case a.streamSlots <- struct{}{}:
			defer func() { <-a.streamSlots }()
		default:
			w.Header().Set("Retry-After", "5")
			server.WriteError(w, http.StatusServiceUnavailable, "too_many_streams",
				fmt.Sprintf("%d streams are running, the most this server allows; retry shortly or POST an export job", cap(a.streamSlots)), "")
			return
		}
	}

	m := a.metrics
	m.streamsInFlight.Inc()
	defer m.streamsInFlight.Dec()
	rows := m.streamRows.WithLabelValues(spec.Entity, spec.Format)
	bytesOut := m.streamBytes.WithLabelValues(spec.Entity, spec.Format)
	outcome := func(o string) { m.streams.WithLabelValues(spec.Entity, spec.Format, o).Inc() }

	// The query stops when the client goes (the request context) or when a write to it fails
	// (cancel): without the latter a stalled client would leave pgx draining the result.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut a long body: a write deadline rolls with each write
	// instead. Cleared on the way out: net/http does not reset a write deadline for the
	// connection's next request when WriteTimeout is 0. (ReadTimeout needs nothing: net/http
	// clears the read deadline once a body-less request is read.)
	_ = rc.SetWriteDeadline(time.Time{})
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()

	start := time.Now()
	sw := &streamWriter{w: w, rc: rc, cancel: cancel, timeout: a.StreamWriteTimeout, bytes: bytesOut.Add,
		pace: a.pace()}
	gz := acceptsGzip(r.Header.Values("Accept-Encoding"))
	sw.start = func() {
		h := w.Header()
		if gz {
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Vary", "Accept-Encoding")
		h.Set("Content-Type", spec.ContentType)
		h.Set("Content-Disposition", contentDisposition(spec.FileName))
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Accel-Buffering", "no") // a buffering proxy (nginx) would hold the stream back
		w.WriteHeader(http.StatusOK)
		m.streamFirstByte.Observe(time.Since(start).Seconds())
	}
	var counted int64
	var out io.Writer = sw
	var zw *gzipStream
	if gz {
		zw = &gzipStream{zw: gzip.NewWriter(sw), sw: sw}
		out = zw
	}
	res, err := export.Run(ctx, a.Catalog, spec, out, func(done int64) {
		rows.Add(float64(done - counted))
		counted = done
	})
	if err == nil && zw != nil {
		err = zw.zw.Close() // the gzip trailer
	}
	p, _ := auth.FromContext(r.Context())
	log := a.Log.With("entity", spec.Entity, "format", spec.Format, "requested_by", p.Subject,
		"rows", max(res.Rows, counted), "bytes", sw.n, "duration", time.Since(start).Round(time.Millisecond))
	sent := sw.n
	if zw != nil {
		sent = zw.n
	}
	if err == nil || sw.started {
		// Audited when it ends, with what it sent (before any compression) and whether it was
		// whole.
		ev := events.Accessed{Action: events.ActionStreamed, ResourceType: "stream", ResourceID: r.URL.Path,
			Owner: p.Subject, Entity: spec.Entity, Format: spec.Format, Fields: body.Fields, Filters: body.Filters,
			Rows: ptr(max(res.Rows, counted)), Bytes: ptr(sent), Complete: ptr(err == nil), Status: http.StatusOK}
		if spec.Query != nil {
			ev.Filters = spec.Query.Filters
		}
		a.audit(r, ev)
	}
	switch {
	case err == nil:
		if !sw.started { // an empty file (JSON Lines of no row) still has its headers
			sw.started = true
			sw.start()
		}
		outcome("completed")
		log.Info("export streamed")
		return
	case r.Context().Err() != nil || sw.err != nil:
		// The client left, or stopped reading for longer than the write timeout.
		outcome("client_gone")
		log.Info("export stream ended by the client", "err", err)
	case sw.started:
		outcome("failed")
		log.Warn("export stream failed after its first bytes; aborting the response", "err", err)
	case catalogUnreachable(err):
		outcome("unavailable")
		log.Warn("export stream: catalog database unreachable", "err", err)
		a.catalogUnavailable(w)
		return
	default:
		outcome("failed")
		a.internal(w, r, "streaming the export", err)
		return
	}
	if sw.started {
		// The stdlib's way to end a response without its final chunk: the client reads an
		// unexpected EOF instead of a complete-looking file.
		panic(http.ErrAbortHandler)
	}
}

func (a *api) catalogUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	server.WriteError(w, http.StatusServiceUnavailable, "catalog_unavailable",
		"the catalog database is unreachable; retry shortly", "")
}

// catalogUnreachable tells a database that cannot be reached or is refusing work (an
// answer worth retrying: 503) from an error in the query itself (a bug: 500).
func catalogUnreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// streamWriter is what export.Run writes onto: it sends the status and headers with the
// first bytes (so an error before them can still be a JSON answer) and flushes every write to
// the client. The format writers buffer 64 KiB themselves, so each write here is a full
// buffer or the end of the file.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	cancel  context.CancelFunc
	timeout time.Duration
	start   func()
	bytes   func(float64)
	pace    *pace
	started bool
	n       int64
	err     error
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.started {
		s.started = true
		s.start()
	}
	timeout := s.timeout
	if timeout <= 0 {
		timeout = defaultStreamWriteTimeout
	}
	if s.pace != nil && s.pace.window < timeout {
		// One write blocked for a whole window moved less than the minimum rate: cut then.
		timeout = s.pace.window
	}
	began := time.Now()
	_ = s.rc.SetWriteDeadline(began.Add(timeout))
	n, err := s.w.Write(p)
	s.n += int64(n)
	s.bytes(float64(n))
	if err == nil {
		err = s.Flush()
	}
	if err == nil && s.pace != nil {
		err = s.pace.wrote(n, began, time.Now())
	}
	if err != nil {
		s.err = err
		s.cancel()
	}
	return n, err
}

// Flush sends what the response holds to the client. export.Run flushes first once the
// database has accepted the query: the headers then leave even when the format writes nothing
// yet (JSON Lines has no header) and the first row is slow to come, so the client knows its
// stream is on its way.
func (s *streamWriter) Flush() error {
	if !s.started {
		s.started = true
		s.start()
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// gzipStream compresses a stream for a client that accepts gzip (Accept-Encoding): each flush
// of the export pushes the compressed bytes so far to the client.
type gzipStream struct {
	zw *gzip.Writer
	sw *streamWriter
	n  int64 // bytes of the export before compression (what the audit records)
}

func (g *gzipStream) Write(p []byte) (int, error) {
	n, err := g.zw.Write(p)
	g.n += int64(n)
	return n, err
}

func (g *gzipStream) Flush() error {
	if err := g.zw.Flush(); err != nil {
		return err
	}
	return g.sw.Flush()
}

// acceptsGzip reads Accept-Encoding: gzip (or *) with a quality above zero.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "*" {
				continue
			}
			q := 1.0
			if k, val, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					q = f
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}

// contentDisposition is an attachment header for name: a quoted ASCII form every client reads,
// and, for a name that is not plain ASCII, the RFC 6266 filename* form in UTF-8 (RFC 8187),
// which clients that know it prefer.
func contentDisposition(name string) string {
	var ascii strings.Builder
	plain := true
	for _, r := range name {
		switch {
		case r < 0x20 || r > 0x7e:
			plain = false
			ascii.WriteByte('_')
		case r == '"' || r == '\\':
			ascii.WriteByte('\\')
			ascii.WriteRune(r)
		default:
			ascii.WriteRune(r)
		}
	}
	v := `attachment; filename="` + ascii.String() + `"`
	if plain {
		return v
	}
	const hex = "0123456789ABCDEF"
	var enc strings.Builder
	for _, b := range []byte(name) {
		if isAttrChar(b) {
			enc.WriteByte(b)
		} else {
			enc.WriteByte('%')
			enc.WriteByte(hex[b>>4])
			enc.WriteByte(hex[b&15])
		}
	}
	return v + "; filename*=UTF-8''" + enc.String()
}

// isAttrChar is RFC 8187's attr-char: what a filename* value carries unencoded.
func isAttrChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}

// ErrClientTooSlow ends a stream or download its client takes slower than the minimum rate.
var ErrClientTooSlow = errors.New("client reads slower than the minimum rate")

// pace tells a slow client from a slow source: over each window, if writes to the client were
// blocked at least half the time and moved less than min bytes per second, the client is too
// slow and holds a slot (and, for a stream, a database snapshot) for nothing.
type pace struct {
	min     int64 // bytes per second
	window  time.Duration
	start   time.Time
	n       int64
	blocked time.Duration
}

func (a *api) pace() *pace {
	if a.MinClientRate <= 0 {
		return nil
	}
	w := a.ClientRateWindow
	if w <= 0 {
		w = 30 * time.Second
	}
	return &pace{min: a.MinClientRate, window: w}
}

// wrote accounts for a write of n bytes that began at began and ended at end.
func (p *pace) wrote(n int, began, end time.Time) error {
	if p.start.IsZero() {
		p.start = began
	}
	p.n += int64(n)
	p.blocked += end.Sub(began)
	if end.Sub(p.start) < p.window {
		return nil
	}
	elapsed := end.Sub(p.start)
	slow := p.blocked*2 >= elapsed && float64(p.n) < float64(p.min)*elapsed.Seconds()
	p.start, p.n, p.blocked = end, 0, 0
	if slow {
		return ErrClientTooSlow
	}
	return nil
}
