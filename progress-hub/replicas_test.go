package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

// startReplica runs one hub on a free address until the test ends and returns its address.
func startReplica(t *testing.T, env map[string]string) string {
	t.Helper()
	addr := freeAddr(t)
	env["HUB_ADDR"] = addr
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- run(ctx, envMap(env), t.Output()) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return")
		}
	})
	eventually(t, "/readyz of "+addr, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// TestReplicasEachPushEveryEvent: two hubs on one Kafka and one database; a client of each,
// following every job, receives the job's completion, and the row is folded once per change
// (Apply is idempotent: the second replica's fold and the group's change nothing).
func TestReplicasEachPushEveryEvent(t *testing.T) {
	t.Parallel()
	dbURL := pgdbtest.NewDatabase(t, "hub_replicas").Config().ConnString()
	ctx := t.Context()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, events.TopicEvents, events.TopicRequested))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	const secret = "replicas-test-secret"
	base := map[string]string{
		"EXPORTS_DATABASE_URL": dbURL, "KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
		"JWT_SECRET": secret, "HUB_CONSUMER_GROUP": "hub-replicas", "LOG_LEVEL": "warn",
		"HUB_FOLD_DELAY": "100ms",
	}
	env2 := map[string]string{}
	for k, v := range base {
		env2[k] = v
	}
	addrs := []string{startReplica(t, base), startReplica(t, env2)}

	// The job row, as producer-api would have written it, and a reader's token.
	store, id, now, tok := newJobAndToken(t, dbURL, secret)
	var conns []*websocket.Conn
	for _, addr := range addrs {
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/api/v1/exports/ws?access_token="+tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.WriteJSON(map[string]any{"type": "subscribe", "all": true}); err != nil {
			t.Fatal(err)
		}
		if m := readMsg(t, conn); m["type"] != "snapshot" {
			t.Fatalf("first message %v", m)
		}
		conns = append(conns, conn)
	}

	kcl, err := eventbus.NewClient(eventbus.Config{Brokers: cluster.ListenAddrs()}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	pub := eventbus.NewPublisher(kcl, slog.New(slog.DiscardHandler))
	// Both replicas are consuming once each pushed the queued job (ExportRequested).
	req := events.ExportRequested{JobID: id, Entity: "products", Format: "csv", RequestedBy: "alice", RequestedAt: now}
	if err := pub.Publish(ctx, events.TopicRequested, req); err != nil {
		t.Fatal(err)
	}
	for _, conn := range conns {
		for {
			if m := readMsg(t, conn); m["task_id"] == id && m["status"] == "queued" {
				break
			}
		}
	}
	// Spaced like a real job's events, so that each replica folds or sees each one.
	for _, ev := range []events.Event{
		events.ExportStarted{JobID: id, Entity: "products", Format: "csv", Attempt: 1, RowsTotal: 10, StartedAt: now},
		events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 5, RowsTotal: 10, Progress: 50, At: now},
		events.ExportCompleted{JobID: id, Entity: "products", Format: "csv", Rows: 10,
			Object:      events.Object{Bucket: "exports", Key: id + ".csv", SizeBytes: 99, FileName: "catalog.csv"},
			RequestedBy: "alice", StartedAt: now, FinishedAt: now},
	} {
		if err := pub.Publish(ctx, events.TopicEvents, ev); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // not a wait: the spacing of a job's events
	}
	for i, conn := range conns {
		var rows []float64
		for {
			m := readMsg(t, conn)
			if m["task_id"] != id {
				continue
			}
			rows = append(rows, m["rows_done"].(float64))
			if m["type"] == "completed" {
				break
			}
		}
		if want := []float64{0, 5, 10}; len(rows) != len(want) || rows[0] != 0 || rows[1] != 5 || rows[2] != 10 {
			t.Errorf("replica %d pushed rows %v, want %v", i, rows, want)
		}
	}
	job, err := store.Get(ctx, id)
	if err != nil || job.Status != jobstore.StatusCompleted || job.RowsDone != 10 {
		t.Fatalf("job %+v, %v", job, err)
	}
}
