package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    func(Config) bool
		wantErr []string // substrings of the error
	}{
		{name: "defaults", env: map[string]string{"AUTH_DEV_MODE": "true"}, want: func(c Config) bool {
			return c.Addr == "127.0.0.1:8081" && c.ExportsDB == "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable" &&
				slices.Equal(c.Brokers, []string{"127.0.0.1:9092"}) && c.Auth.Secret == "local-dev-secret" &&
				len(c.AllowedOrigins) == 4 && c.LogLevel == "info" &&
				c.BroadcastLookback == 10*time.Second && !c.Pprof
		}},
		{name: "overrides", env: map[string]string{"HUB_ADDR": "0.0.0.0:9999", "KAFKA_BROKERS": "a:1, b:2", "AUTH_DEV_MODE": "true",
			"HUB_ALLOWED_ORIGINS": "*", "LOG_LEVEL": "debug"}, want: func(c Config) bool {
			return c.Addr == "0.0.0.0:9999" && slices.Equal(c.Brokers, []string{"a:1", "b:2"}) &&
				slices.Equal(c.AllowedOrigins, []string{"*"}) && c.LogLevel == "debug"
		}},
		{name: "invalid", env: map[string]string{"HUB_ADDR": "nope", "KAFKA_BROKERS": " , ",
			"EXPORTS_DATABASE_URL": "mysql://x", "HUB_ALLOWED_ORIGINS": "127.0.0.1:8080",
			"HUB_BROADCAST_LOOKBACK": "-1s"},
			wantErr: []string{"HUB_ADDR", "KAFKA_BROKERS", "EXPORTS_DATABASE_URL", "HUB_ALLOWED_ORIGINS",
				"HUB_BROADCAST_LOOKBACK", "neither JWT_SECRET nor JWT_JWKS_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadConfig(envMap(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %s", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestConfigLogsNoSecrets(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(envMap(map[string]string{"JWT_SECRET": "s3cr3t-value-of-at-least-32-bytes!",
		"EXPORTS_DATABASE_URL": "postgres://hub:db-password@db:5432/exports"}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logging.New(&buf, "info", "progress-hub").Info("starting", "config", c)
	out := buf.String()
	if strings.Contains(out, "s3cr3t-value-of") || strings.Contains(out, "db-password") {
		t.Errorf("secret in log: %s", out)
	}
	if !strings.Contains(out, "hub:xxxxx@db:5432") {
		t.Errorf("database url not shown redacted: %s", out)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), envMap(map[string]string{"HUB_ADDR": "nope"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "HUB_ADDR") {
		t.Fatalf("err = %v", err)
	}
}

// TestRun runs the whole service against an isolated schema of the real PostgreSQL and an
// in-process Kafka (kfake): a job's events, written by its writer and relayed to Kafka, reach a
// WebSocket client with the state they carry, and SIGTERM (ctx) stops everything cleanly.
func TestRun(t *testing.T) {
	t.Parallel()
	// A throwaway database (skipped without the stack, fatal under CI); run migrates it.
	dbURL := pgdbtest.NewDatabase(t, "hub_run").Config().ConnString()
	ctx := t.Context()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, events.TopicEvents, events.TopicRequested))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr := freeAddr(t)
	const secret = "run-test-secret-of-at-least-32-bytes"
	env := envMap(map[string]string{
		"HUB_ADDR": addr, "EXPORTS_DATABASE_URL": dbURL, "KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
		"JWT_SECRET": secret, "LOG_LEVEL": "info", "HUB_MAX_CONNECTIONS": "50",
	})
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- run(runCtx, env, t.Output()) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-runErr:
		case <-time.After(30 * time.Second):
			t.Error("run did not return")
		}
	})

	base := "http://" + addr
	eventually(t, "/readyz answers 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, body := get(t, base+"/nope"); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("unknown path: %d %s", code, body)
	}
	if code, body := get(t, base+"/ws"); code != 401 || !strings.Contains(body, `"unauthenticated"`) {
		t.Errorf("/ws without token: %d %s", code, body)
	}

	// The job row, as producer-api would have written it, and a reader's token.
	store, id, _, tok := newJobAndToken(t, dbURL, secret)
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/api/v1/exports/ws?access_token="+tok,
		http.Header{"Origin": {"http://localhost:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string]any{"type": "subscribe", "task_ids": []string{id}}); err != nil {
		t.Fatal(err)
	}
	if m := readMsg(t, conn); m["type"] != "snapshot" || m["job"].(map[string]any)["status"] != "queued" {
		t.Fatalf("first message %v", m)
	}

	kcl, err := eventbus.NewClient(eventbus.Config{Brokers: cluster.ListenAddrs()}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	pub := eventbus.NewPublisher(kcl, slog.New(slog.DiscardHandler))
	drive(t, store, pub, id)
	for _, want := range []struct {
		typ, status string
		rows        float64
	}{{"progress", "running", 0}, {"progress", "running", 5}, {"completed", "completed", 10}} {
		m := readUpdate(t, conn, id)
		if m["type"] != want.typ || m["status"] != want.status || m["rows_done"] != want.rows || m["task_id"] != id {
			t.Fatalf("got %v, want %s/%s rows %v", m, want.typ, want.status, want.rows)
		}
		if want.typ == "completed" {
			if f := m["file"].(map[string]any); f["file_name"] != "catalog.csv" || f["object_key"] != "products/"+id+"/1/catalog.csv" {
				t.Errorf("completed with file %v", f)
			}
		}
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "progress_hub_ws_clients 1") ||
		!strings.Contains(body, `progress_hub_events_total{outcome="pushed",type="com.productsmanager.export.completed.v1"} 1`) ||
		!strings.Contains(body, "progress_hub_ws_max_clients 50\n") {
		t.Errorf("metrics lack the hub's figures (clients, pushed events, the HUB_MAX_CONNECTIONS limit)")
	}

	// SIGTERM: the hub closes the WebSocket with "going away", and run returns nil.
	stop()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	runErr <- nil // for the cleanup
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Errorf("connection ended with %v, want going away", err)
			}
			break
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readMsg(t *testing.T, conn *websocket.Conn) map[string]any {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// newJobAndToken creates a queued products job in the exports database at dbURL and mints a
// READ_EXPORTS token for its requester with secret.
func newJobAndToken(t *testing.T, dbURL, secret string) (store *jobstore.Store, id string, now time.Time, tok string) {
	t.Helper()
	pool, err := pgdb.Open(t.Context(), dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store = jobstore.New(pool)
	id = uuid.Must(uuid.NewV7()).String()
	now = time.Now().UTC()
	if _, err := store.Create(t.Context(), events.ExportRequested{JobID: id, Entity: "products", Format: "csv",
		RequestedBy: "alice", RequestedAt: now}); err != nil {
		t.Fatal(err)
	}
	tok, err = auth.Mint([]byte(secret), auth.Principal{Subject: "alice", Permissions: []string{auth.PermReadExports}}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return store, id, now, tok
}

// drive runs job id through its life with its one writer (the store deciding with pkg/job), as
// an exporter does, and relays what it wrote to Kafka, as the relay does.
func drive(t *testing.T, store *jobstore.Store, pub *eventbus.Publisher, id string) {
	t.Helper()
	ctx := t.Context()
	_, lease, err := store.Claim(ctx, id, jobstore.ClaimOptions{Owner: "w", TTL: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	a := lease.Attempt
	for _, c := range []job.Command{
		job.Start{Owner: "w", Attempt: a, RowsTotal: 10, At: now},
		job.Report{Owner: "w", Attempt: a, RowsDone: 5, BytesWritten: 50, Phase: events.PhaseWriting, At: now},
		job.Complete{Owner: "w", Attempt: a, Rows: 10, StartedAt: now, ExpiresAt: now.Add(time.Hour), At: now,
			Object: events.Object{Bucket: "exports", Key: "products/" + id + "/1/catalog.csv", SizeBytes: 99, FileName: "catalog.csv"}},
	} {
		if _, err := store.Do(ctx, id, c); err != nil {
			t.Fatal(err)
		}
	}
	res, err := store.RelayOutbox(ctx, 100, func(ctx context.Context, msgs []jobstore.OutboxMessage) []error {
		out := make([]eventbus.Addressed, len(msgs))
		for i, m := range msgs {
			out[i] = eventbus.Addressed{Topic: m.Topic, Envelope: m.Envelope}
		}
		return pub.ProduceEach(ctx, out)
	})
	if err != nil || res.Failed > 0 {
		t.Fatalf("relaying: %+v %v", res, err)
	}
}

// readUpdate reads the next push about job id that is not its queued state (the relayed
// ExportRequested may come before or after the snapshot).
func readUpdate(t *testing.T, conn *websocket.Conn, id string) map[string]any {
	t.Helper()
	for {
		m := readMsg(t, conn)
		if m["task_id"] == id && m["status"] != "queued" {
			return m
		}
	}
}
