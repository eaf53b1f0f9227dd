package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// The security scenarios of issue 11 on the real stack: ownership, the audit trail through
// Kafka into db_analytics, limits shared by two producer-api replicas, slow readers, the
// WebSocket closed at its token's expiry, and the auth matrix of the README.

// unique is a fresh user name, so a test's limits and audit rows are its own.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// waitEnded polls a job as its owner until it completed.
func (s stack) waitEnded(t *testing.T, tok, id string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		code, body := s.do(t, http.MethodGet, "/api/v1/exports/progress/"+id, tok, nil)
		var p progress
		if code != http.StatusOK || json.Unmarshal(body, &p) != nil {
			t.Fatalf("progress %d %s", code, body)
		}
		switch p.Status {
		case "completed":
			return
		case "failed", "cancelled", "expired":
			t.Fatalf("job %s ended %s", id, p.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job %s did not complete", id)
}

type auditRow struct {
	action, resource, risk string
	bytes, rows            *int64
	clientIP               *string
	reason                 *string
	suppressed             *int64
}

// auditRows waits until actor has want rows in db_analytics.audit_logs (through the outbox,
// Kafka and the audit sink) and returns them.
func (s stack) auditRows(t *testing.T, actor string, want int) []auditRow {
	t.Helper()
	return s.auditWhere(t, "actor_id = $1", actor, want)
}

// auditWhere waits until want rows match where (with $1 = arg) and returns them, oldest first.
func (s stack) auditWhere(t *testing.T, where string, arg any, want int) []auditRow {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), env("ANALYTICS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/db_analytics?sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(time.Minute)
	for {
		rows, err := conn.Query(context.Background(), `SELECT action, resource_id, risk_level, bytes, row_count, client_ip,
			details->>'reason', (details->>'suppressed')::bigint FROM audit_logs WHERE `+where+` ORDER BY id`, arg)
		if err != nil {
			t.Fatal(err)
		}
		var out []auditRow
		for rows.Next() {
			var r auditRow
			if err := rows.Scan(&r.action, &r.resource, &r.risk, &r.bytes, &r.rows, &r.clientIP, &r.reason, &r.suppressed); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		rows.Close()
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAuditEveryAccess: one download, one stream and one delete leave exactly one audit row
// each, with the actor, the bytes and the risk of the documented rule; another user's attempt
// on the job is a 404 and is audited.
func TestAuditEveryAccess(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 200000)
	user := unique("e2e-audit")
	tok := s.token(t, user, auth.PermReadExports, auth.PermWriteExports)
	job := s.requestExport(t, tok, "csv", "products", smallJob)
	s.waitEnded(t, tok, job.JobID)
	code, file := s.do(t, http.MethodGet, "/api/v1/exports/download/"+job.JobID, tok, nil)
	if code != http.StatusOK {
		t.Fatalf("download %d", code)
	}
	code, stream := s.do(t, http.MethodGet, "/api/v1/exports/stream/csv/products?fields=sku,name&search=-0001", tok, nil)
	if code != http.StatusOK {
		t.Fatalf("stream %d %.200s", code, stream)
	}
	intruder := unique("e2e-intruder")
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports/download/"+job.JobID, s.token(t, intruder, auth.PermReadExports), nil); code != http.StatusNotFound {
		t.Errorf("another user's download: %d, want 404", code)
	}
	if code, _ := s.do(t, http.MethodDelete, "/api/v1/exports/"+job.JobID, tok, nil); code != http.StatusNoContent {
		t.Fatalf("delete %d", code)
	}

	// requested, completed, downloaded, streamed, deleted (export.started names no actor)
	rows := s.auditRows(t, user, 5)
	count := map[string][]auditRow{}
	for _, r := range rows {
		count[r.action] = append(count[r.action], r)
	}
	for action, want := range map[string]int{"export.requested": 1, "export.completed": 1, "export.downloaded": 1,
		"export.streamed": 1, "export.deleted": 1} {
		if len(count[action]) != want {
			t.Errorf("%s: %d rows, want %d (all: %+v)", action, len(count[action]), want, count)
		}
	}
	if d := count["export.downloaded"]; len(d) == 1 {
		if d[0].resource != job.JobID || d[0].bytes == nil || *d[0].bytes != int64(len(file)) || d[0].risk != "medium" ||
			d[0].clientIP == nil || *d[0].clientIP != "127.0.0.1" {
			t.Errorf("download row %+v (file %d bytes): want its bytes, medium risk (default fields hold prices)", d[0], len(file))
		}
	}
	if st := count["export.streamed"]; len(st) == 1 {
		if st[0].bytes == nil || *st[0].bytes != int64(len(stream)) || st[0].rows == nil || *st[0].rows != 1000 || st[0].risk != "low" {
			t.Errorf("stream row %+v (stream %d bytes): want its bytes, 1000 rows, low risk", st[0], len(stream))
		}
	}
	if del := count["export.deleted"]; len(del) == 1 && (del[0].resource != job.JobID || del[0].risk != "low") {
		t.Errorf("delete row %+v", del[0])
	}
	// Nothing more arrives: the count holds for 3 s after the five rows came.
	for settle := time.Now().Add(3 * time.Second); time.Now().Before(settle); time.Sleep(250 * time.Millisecond) {
		if again := s.auditRows(t, user, 5); len(again) != 5 {
			t.Fatalf("%d audit rows for %s after the five came: %+v", len(again), user, again)
		}
	}
	if st := count["export.streamed"]; len(st) == 1 {
		var complete bool
		conn, err := pgx.Connect(context.Background(), env("ANALYTICS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/db_analytics?sslmode=disable"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(context.Background(),
			`SELECT (details->>'complete')::boolean FROM audit_logs WHERE actor_id = $1 AND action = 'export.streamed'`, user).Scan(&complete); err != nil || !complete {
			t.Errorf("the stream's row says complete=%v (%v), want true", complete, err)
		}
	}
	denied := s.auditRows(t, intruder, 1)
	if len(denied) != 1 || denied[0].action != "access.denied" || denied[0].resource != job.JobID {
		t.Errorf("the intruder's rows: %+v", denied)
	}
}

// limitedAPI starts a producer-api replica with the production limits (and extra settings).
func (s stack) limitedAPI(t *testing.T, id, addr string, extra ...string) stack {
	t.Helper()
	s.startService(t, "producer-api", id, addr, append([]string{"API_ADDR=" + addr,
		"API_RATE_EXPORTS=50", "API_RATE_STREAMS=50", "API_RATE_DOWNLOADS=50", "API_RATE_SCHEDULES=50",
		"API_RATE_READS=1000", "API_MAX_ACTIVE_JOBS_PER_USER=10", "API_STREAMS_PER_USER=2"}, extra...)...)
	r := s
	r.api = "http://" + addr
	return r
}

// TestRateLimitAcrossReplicas: 50 export creations a minute per user, counted by two replicas
// together: the 51st, whichever replica it reaches, is a 429 with a Retry-After that ends
// with the window; the 11th active job is refused too.
func TestRateLimitAcrossReplicas(t *testing.T) {
	s := getStack(t)
	a := s.limitedAPI(t, "limits-1", "127.0.0.1:18180", "API_MAX_ACTIVE_JOBS_PER_USER=1000")
	b := s.limitedAPI(t, "limits-2", "127.0.0.1:18181", "API_MAX_ACTIVE_JOBS_PER_USER=1000")
	if sec := time.Now().Second(); sec > 45 {
		time.Sleep(time.Duration(61-sec) * time.Second) // the 51 requests within one window
	}
	tok := s.token(t, unique("e2e-rate"), auth.PermReadExports, auth.PermWriteExports)
	var ids []string
	for i := range 50 {
		api := []stack{a, b}[i%2]
		code, h, body := api.doHeader(t, http.MethodPost, "/api/v1/exports/csv/products", tok, smallJob)
		if code != http.StatusAccepted {
			t.Fatalf("creation %d: %d %s", i+1, code, body)
		}
		if h.Get("X-RateLimit-Limit") != "50" || h.Get("X-RateLimit-Remaining") != strconv.Itoa(49-i) {
			t.Errorf("creation %d headers: limit %q remaining %q", i+1, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"))
		}
		var j acceptedJob
		_ = json.Unmarshal(body, &j)
		ids = append(ids, j.JobID)
	}
	code, h, body := a.doHeader(t, http.MethodPost, "/api/v1/exports/csv/products", tok, smallJob)
	if code != http.StatusTooManyRequests || !strings.Contains(string(body), `"rate_limited"`) {
		t.Fatalf("the 51st: %d %s", code, body)
	}
	reset, _ := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	until := time.Until(time.Unix(reset, 0))
	if err != nil || retry < 1 || float64(retry) < until.Seconds()-2 || float64(retry) > until.Seconds()+2 {
		t.Errorf("Retry-After %q, window resets in %s", h.Get("Retry-After"), until)
	}
	for _, id := range ids { // their exports are not the point
		a.do(t, http.MethodPost, "/api/v1/exports/"+id+"/cancel", tok, nil)
	}

	// The active jobs quota, on a replica with the production default (10).
	c := s.limitedAPI(t, "limits-3", "127.0.0.1:18182")
	tok = s.token(t, unique("e2e-active"), auth.PermReadExports, auth.PermWriteExports)
	full := map[string]any{} // the whole catalog: still running when the 11th comes
	for i := range 10 {
		if code, body := c.do(t, http.MethodPost, "/api/v1/exports/csv/products", tok, full); code != http.StatusAccepted {
			t.Fatalf("active job %d: %d %s", i+1, code, body)
		}
	}
	if code, body := c.do(t, http.MethodPost, "/api/v1/exports/csv/products", tok, full); code != http.StatusTooManyRequests ||
		!strings.Contains(string(body), "too_many_active_jobs") {
		t.Errorf("the 11th active job: %d %s", code, body)
	}
	_, body = c.do(t, http.MethodGet, "/api/v1/exports?limit=20", tok, nil)
	var page struct {
		Items []acceptedJob `json:"items"`
	}
	_ = json.Unmarshal(body, &page)
	for _, j := range page.Items {
		c.do(t, http.MethodPost, "/api/v1/exports/"+j.TaskID+"/cancel", tok, nil)
	}
}

// TestSlowReadersCut: eight clients reading the whole catalog at 1 KiB/s hold every stream
// slot of a replica; they are cut for reading under the minimum rate, and a ninth stream is
// then served. A user's third stream at once is refused.
func TestSlowReadersCut(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 200000)
	api := s.limitedAPI(t, "slow-readers", "127.0.0.1:18183", "API_MAX_STREAMS=8", "API_CLIENT_RATE_WINDOW=5s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	ended := make(chan error, 8)
	started := make(chan struct{}, 8)
	run := unique("e2e-slow")
	for i := range 8 {
		tok := s.token(t, fmt.Sprintf("%s-%d", run, i/2), auth.PermReadExports) // two streams per user
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.api+"/api/v1/exports/stream/csv/products", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ended <- err
				return
			}
			defer resp.Body.Close()
			started <- struct{}{}
			buf := make([]byte, 1024)
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					ended <- err
					return
				}
				time.Sleep(time.Second) // 1 KiB/s
			}
		})
	}
	for range 8 {
		select {
		case <-started:
		case err := <-ended:
			t.Fatalf("a slow stream failed to start: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("the slow streams did not start")
		}
	}
	// Every slot is held: a ninth is refused for now.
	reader := s.token(t, unique("e2e-ninth"), auth.PermReadExports)
	if code, _ := api.do(t, http.MethodGet, "/api/v1/exports/stream/csv/products?fields=sku&search=-0001", reader, nil); code != http.StatusServiceUnavailable {
		t.Errorf("a ninth stream while eight slow ones run: %d, want 503", code)
	}
	// The slow readers are cut (their transfer ends short), and the ninth is served.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := api.do(t, http.MethodGet, "/api/v1/exports/stream/csv/products?fields=sku&search=-0001", reader, nil)
		if code == http.StatusOK && strings.Count(string(body), "\n") == 1001 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ninth stream is still refused (%d) after 2 minutes: slow readers not cut", code)
		}
		time.Sleep(time.Second)
	}
	// The ninth got a slot: the server ended the slow streams (their clients may still be
	// reading what their socket buffers hold). None of them got its whole file.
	cancel()
	wg.Wait()
	close(ended)
	for err := range ended {
		if err == io.EOF {
			t.Error("a slow reader got its whole file: it was not cut")
		}
	}

	// Two streams per user: a third at once is a 429.
	tok := s.token(t, unique("e2e-streams"), auth.PermReadExports)
	var open []*http.Response
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, api.api+"/api/v1/exports/stream/csv/products", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", resp, err)
		}
		open = append(open, resp)
	}
	if code, _ := api.do(t, http.MethodGet, "/api/v1/exports/stream/csv/products?fields=sku&search=-0001", tok, nil); code != http.StatusTooManyRequests {
		t.Errorf("a user's third stream: %d, want 429", code)
	}
	for _, r := range open {
		r.Body.Close()
	}
}

// TestWebSocketClosedAtTokenExpiry: through the API, a connection whose token expires is
// closed with 4401 within a second of the expiry.
func TestWebSocketClosedAtTokenExpiry(t *testing.T) {
	s := getStack(t)
	now := time.Now()
	tok, err := auth.Mint([]byte(s.secret), auth.Principal{Subject: "e2e-writer", Permissions: []string{auth.PermReadExports}}, 3*time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(3 * time.Second).Truncate(time.Second)
	c := s.dialWS(t, tok)
	_ = c.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var data []byte
		if _, data, err = c.ReadMessage(); err != nil {
			break
		}
		checkPush(data)
	}
	closed := time.Now()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4401 {
		t.Fatalf("connection ended with %v, want close code 4401", err)
	}
	if closed.Before(exp) || closed.After(exp.Add(time.Second)) {
		t.Errorf("closed at %s, token expired at %s: want within 1 s after", closed.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano))
	}
}

// TestAuthMatrix is the README's table: each endpoint with each kind of caller gives the
// documented status, on a replica that checks the audience.
func TestAuthMatrix(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 200000)
	const aud = "exports-e2e"
	api := s.limitedAPI(t, "auth-matrix", "127.0.0.1:18184", "JWT_AUDIENCE="+aud)
	owner := unique("e2e-owner")
	mint := func(sub string, ttl time.Duration, audience string, perms ...string) string {
		tok, err := auth.MintFor([]byte(s.secret), auth.Principal{Subject: sub, Permissions: perms}, ttl, time.Now(), "", audience)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	all := []string{auth.PermReadExports, auth.PermWriteExports}
	ownerTok := mint(owner, time.Hour, aud, all...)
	job := api.requestExport(t, ownerTok, "csv", "products", smallJob)
	api.waitEnded(t, ownerTok, job.JobID)
	other := unique("e2e-other")
	noneAlg := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":%q,"permissions":["READ_EXPORTS","WRITE_EXPORTS","MANAGE_EXPORTS"],"aud":[%q],"exp":%d}`,
			owner, aud, time.Now().Add(time.Hour).Unix()))) + "."
	forged, _ := auth.MintFor([]byte("not-the-secret"), auth.Principal{Subject: owner, Permissions: all}, time.Hour, time.Now(), "", aud)
	expired, _ := auth.MintFor([]byte(s.secret), auth.Principal{Subject: owner, Permissions: all}, time.Minute, time.Now().Add(-time.Hour), "", aud)
	callers := []struct{ name, tok string }{
		{"none", ""}, {"bad signature", forged}, {"alg none", noneAlg}, {"expired", expired},
		{"too long-lived", mint(owner, 48*time.Hour, aud, all...)}, {"wrong audience", mint(owner, time.Hour, "billing", all...)},
		{"READ", mint(owner, time.Hour, aud, auth.PermReadExports)}, {"WRITE", mint(owner, time.Hour, aud, auth.PermWriteExports)},
		{"MANAGE", mint(unique("e2e-manager"), time.Hour, aud, append(all, auth.PermManageExports)...)},
		{"another user", mint(other, time.Hour, aud, all...)},
	}
	id := job.JobID
	// A second finished job, which the manager deletes (the owner deletes the first).
	job2 := api.requestExport(t, ownerTok, "csv", "products", smallJob)
	api.waitEnded(t, ownerTok, job2.JobID)
	// The owner's schedule and platform.
	schedBody := map[string]any{"name": unique("matrix"), "cron_expression": "0 3 * * *", "enabled": false,
		"export_config": map[string]any{"entity": "products", "format": "csv", "fields": []string{"sku"}}}
	code, b := api.do(t, http.MethodPost, "/api/v1/exports/schedules", ownerTok, schedBody)
	var sched struct{ ID string }
	if code != http.StatusCreated || json.Unmarshal(b, &sched) != nil {
		t.Fatalf("the owner's schedule: %d %s", code, b)
	}
	platBody := map[string]any{"name": unique("matrix"), "type": "custom", "default_config": map[string]any{"entity": "products", "format": "csv"}}
	code, b = api.do(t, http.MethodPost, "/api/v1/exports/platforms", ownerTok, platBody)
	var plat struct{ ID string }
	if code != http.StatusCreated || json.Unmarshal(b, &plat) != nil {
		t.Fatalf("the owner's platform: %d %s", code, b)
	}

	// The WebSocket, through the API replica and straight on a hub replica that checks the
	// audience too: bad tokens 401, WRITE alone 403; a reader's subscription to the owner's job
	// gets its snapshot, another user's gets not_found.
	hub := "127.0.0.1:18185"
	s.startService(t, "progress-hub", "auth-matrix-hub", hub, "HUB_ADDR="+hub, "JWT_AUDIENCE="+aud)
	wsWant := []int{401, 401, 401, 401, 401, 401, 101, 403, 101, 101}
	for _, base := range []string{"ws" + strings.TrimPrefix(api.api, "http"), "ws://" + hub} {
		for i, c := range callers {
			h := http.Header{}
			if c.tok != "" {
				h.Set("Authorization", "Bearer "+c.tok)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(base+"/api/v1/exports/ws", h)
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			if code != wsWant[i] {
				t.Errorf("WebSocket %s as %s: %d (%v), want %d", base, c.name, code, err, wsWant[i])
			}
			if conn == nil {
				continue
			}
			if c.name == "READ" || c.name == "another user" {
				_ = conn.WriteJSON(map[string]any{"type": "subscribe", "task_ids": []string{id}})
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				var m struct {
					Type  string `json:"type"`
					Error *struct {
						Code string `json:"code"`
					} `json:"error"`
				}
				if err := readPush(conn, &m); err != nil {
					t.Errorf("WebSocket %s as %s: %v", base, c.name, err)
				} else if want := map[string]string{"READ": "snapshot", "another user": "error"}[c.name]; m.Type != want ||
					(want == "error" && (m.Error == nil || m.Error.Code != "not_found")) {
					t.Errorf("WebSocket %s as %s subscribing to the owner's job: %+v, want %s", base, c.name, m, want)
				}
			}
			conn.Close()
		}
	}

	type endpoint struct {
		method, path string
		want         []int // by caller, in the order above
	}
	bad := []int{401, 401, 401, 401, 401, 401}
	row := func(read, write, manage, another int) []int {
		return append(append([]int{}, bad...), read, write, manage, another)
	}
	sc, pl := "/api/v1/exports/schedules/"+sched.ID, "/api/v1/exports/platforms/"+plat.ID
	endpoints := []endpoint{
		// The UI is a static page holding no data, served to anyone; what it shows comes from
		// the rows below, with the token the user gives it.
		{"GET", "/", []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{"GET", "/api/v1/exports", row(200, 403, 200, 200)},
		{"GET", "/api/v1/exports/" + id, row(200, 403, 200, 404)},
		{"GET", "/api/v1/exports/progress/" + id, row(200, 403, 200, 404)},
		{"GET", "/api/v1/exports/download/" + id, row(200, 403, 200, 404)},
		{"GET", "/api/v1/exports/stream/csv/products?fields=sku&search=-0001", row(200, 403, 200, 200)},
		{"GET", "/api/v1/exports/fields/products", row(200, 403, 200, 200)},
		{"GET", "/api/v1/exports/schedules", row(200, 403, 200, 200)},
		{"GET", "/api/v1/exports/audit", row(403, 403, 200, 403)},
		{"POST", "/api/v1/exports/" + id + "/cancel", row(403, 409, 409, 404)},
		{"POST", "/api/v1/exports/" + id + "/deliver", row(403, 409, 409, 404)}, // a storage-only job: nothing to deliver
		{"POST", "/api/v1/exports/csv/products", row(403, 202, 202, 202)},
		{"POST", "/api/v1/exports/create", row(403, 202, 202, 202)},
		// Schedules: the owner's; another's is a 404, lists hold one's own.
		{"POST", "/api/v1/exports/schedules", row(403, 201, 201, 201)},
		{"POST", "/api/v1/exports/schedules/preview", row(200, 403, 200, 200)},
		{"GET", sc, row(200, 403, 200, 404)},
		{"GET", sc + "/next?count=3", row(200, 403, 200, 404)},
		{"GET", sc + "/runs", row(200, 403, 200, 404)},
		{"PUT", sc, row(403, 200, 200, 404)},
		{"POST", sc + "/toggle", row(403, 200, 200, 404)},
		{"POST", sc + "/run", row(403, 202, 202, 404)},
		// Platforms, the same rules.
		{"GET", "/api/v1/exports/platforms", row(200, 403, 200, 200)},
		{"POST", "/api/v1/exports/platforms", row(403, 201, 201, 201)},
		{"GET", pl, row(200, 403, 200, 404)},
		{"GET", pl + "/webhook-deliveries", row(200, 403, 200, 404)},
		{"PUT", pl, row(403, 200, 200, 404)},
		{"POST", pl + "/test", row(403, 200, 200, 404)},
		// Deletes last. The owner's WRITE deletes the first job (gone for the next callers);
		// the manager deletes the second (0: not asked).
		{"DELETE", "/api/v1/exports/" + id, row(403, 204, 404, 404)},
		{"DELETE", "/api/v1/exports/" + job2.JobID, row(403, 0, 204, 404)},
		{"DELETE", sc, row(403, 0, 204, 404)},
		{"DELETE", pl, row(403, 0, 204, 404)},
	}
	bodies := map[string]any{
		"POST /api/v1/exports/csv/products":      smallJob,
		"POST /api/v1/exports/create":            map[string]any{"entity": "products", "format": "csv", "fields": []string{"sku"}, "filters": map[string]any{"search": "-0001"}},
		"POST /api/v1/exports/schedules":         schedBody,
		"POST /api/v1/exports/schedules/preview": map[string]any{"cron_expression": "0 3 * * *", "timezone": "Europe/Paris"},
		"PUT " + sc:                              schedBody,
		"POST " + sc + "/toggle":                 map[string]any{"enabled": false},
		"POST /api/v1/exports/platforms":         platBody,
		"PUT " + pl:                              platBody,
	}
	var table strings.Builder
	for _, ep := range endpoints {
		for i, c := range callers {
			if ep.want[i] == 0 {
				fmt.Fprint(&table, "- ")
				continue
			}
			body := bodies[ep.method+" "+ep.path]
			if m, ok := body.(map[string]any); ok && m["name"] != nil && ep.method == "POST" {
				m = maps.Clone(m) // each creation needs a name of its own
				m["name"] = unique("matrix")
				body = m
			}
			code, b := api.do(t, ep.method, ep.path, c.tok, body)
			if code == http.StatusCreated {
				var made struct{ ID string }
				if json.Unmarshal(b, &made) == nil && made.ID != "" {
					tok := c.tok
					t.Cleanup(func() { api.do(t, http.MethodDelete, ep.path+"/"+made.ID, tok, nil) })
				}
			}
			if code != ep.want[i] {
				t.Errorf("%s %s as %s: %d, want %d", ep.method, ep.path, c.name, code, ep.want[i])
			}
			fmt.Fprintf(&table, "%d ", code)
		}
		fmt.Fprintf(&table, " %s %s\n", ep.method, ep.path)
	}
	var names []string
	for _, c := range callers {
		names = append(names, c.name)
	}
	t.Logf("auth matrix (statuses by caller: %s):\n%s", strings.Join(names, ", "), table.String())
}

// TestRefusalsAuditedBounded: refusals are audited on the API and on the hub's own port, a
// bounded number per client address and window, the rest summarised in one high-risk row with
// their count; the client is the address a trusted proxy names in X-Forwarded-For.
func TestRefusalsAuditedBounded(t *testing.T) {
	s := getStack(t)
	bound := []string{"TRUSTED_PROXIES=127.0.0.1"}
	api := s.limitedAPI(t, "refusals", "127.0.0.1:18186", append(bound, "API_AUDIT_REFUSALS=5", "API_AUDIT_REFUSAL_WINDOW=3s")...)
	hub := "127.0.0.1:18187"
	s.startService(t, "progress-hub", "refusals-hub", hub, append(bound, "HUB_ADDR="+hub, "HUB_AUDIT_REFUSALS=5", "HUB_AUDIT_REFUSAL_WINDOW=3s")...)
	n := time.Now().UnixNano()
	apiClient, hubClient, spy := fmt.Sprintf("203.0.113.%d", n%250+1), fmt.Sprintf("198.51.100.%d", n%250+1), fmt.Sprintf("192.0.2.%d", n%250+1)

	for range 30 {
		req, _ := http.NewRequest(http.MethodGet, api.api+"/api/v1/exports", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		req.Header.Set("X-Forwarded-For", "10.9.9.9, "+apiClient) // the left part is the client's own say
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", resp.StatusCode)
		}
	}
	for range 8 {
		_, resp, err := websocket.DefaultDialer.Dial("ws://"+hub+"/api/v1/exports/ws",
			http.Header{"Authorization": {"Bearer not-a-token"}, "X-Forwarded-For": {hubClient}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token on the hub: %v %v", resp, err)
		}
	}
	owner := unique("e2e-owner")
	job := s.requestExport(t, s.token(t, owner, auth.PermReadExports, auth.PermWriteExports), "csv", "products", smallJob)
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+hub+"/api/v1/exports/ws",
		http.Header{"Authorization": {"Bearer " + s.token(t, unique("e2e-spy"), auth.PermReadExports)}, "X-Forwarded-For": {spy}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.WriteJSON(map[string]any{"type": "subscribe", "task_ids": []string{job.JobID}})
	var m struct {
		Type string `json:"type"`
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := readPush(conn, &m); err != nil || m.Type != "error" {
		t.Fatalf("another user's job subscribed: %+v %v", m, err)
	}

	check := func(who, client string, want int64) {
		rows := s.auditWhere(t, "client_ip = $1", client, 6)
		var single, summaries int
		for _, r := range rows {
			switch {
			case r.suppressed != nil:
				summaries++
				if *r.suppressed != want || r.risk != "high" || r.resource != "refusals:"+client {
					t.Errorf("%s: summary %+v, want %d suppressed, high risk", who, r, want)
				}
			case r.action == "access.denied" && r.reason != nil && *r.reason == "unauthenticated":
				single++
			default:
				t.Errorf("%s: unexpected row %+v", who, r)
			}
		}
		if single != 5 || summaries != 1 {
			t.Errorf("%s: %d refusals audited one by one and %d summaries, want 5 and 1", who, single, summaries)
		}
	}
	check("API", apiClient, 25)
	check("hub", hubClient, 3)
	if rows := s.auditWhere(t, "client_ip = $1", spy, 1); len(rows) != 1 || rows[0].action != "access.denied" ||
		rows[0].resource != job.JobID || rows[0].reason == nil || *rows[0].reason != "not_owner" {
		t.Errorf("the hub's refusal of another user's job: %+v", rows)
	}
}
