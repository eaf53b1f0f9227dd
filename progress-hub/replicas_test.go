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
// following every job, receives every state change of the job, in order, straight after one
// another (no spacing: the replicas push what the events carry, they fold nothing).
func TestReplicasEachPushEveryEvent(t *testing.T) {
	t.Parallel()
	dbURL := pgdbtest.NewDatabase(t, "hub_replicas").Config().ConnString()
	ctx := t.Context()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, events.TopicEvents, events.TopicRequested))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	const secret = "replicas-test-secret-of-32-bytes-or-more"
	base := map[string]string{
		"EXPORTS_DATABASE_URL": dbURL, "KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
		"JWT_SECRET": secret, "LOG_LEVEL": "warn",
	}
	env2 := map[string]string{}
	for k, v := range base {
		env2[k] = v
	}
	addrs := []string{startReplica(t, base), startReplica(t, env2)}

	// The job row, as producer-api would have written it, and a reader's token.
	store, id, _, tok := newJobAndToken(t, dbURL, secret)
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
	drive(t, store, pub, id)
	for i, conn := range conns {
		var rows []float64
		for {
			m := readUpdate(t, conn, id)
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
