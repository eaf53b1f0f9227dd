package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/config"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/pkg/server/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr []string // every one must appear in the error
	}{
		{
			name: "defaults are the local stack",
			want: Config{
				Addr:        "127.0.0.1:8084",
				AnalyticsDB: "postgres://postgres@127.0.0.1:55432/db_analytics?sslmode=disable",
				Brokers:     []string{"127.0.0.1:9092"},
				Group:       "audit-sink",
				Topics:      []string{"exports.requested", "exports.events"},
				LogLevel:    "info",
			},
		},
		{
			name: "overrides",
			env: map[string]string{
				"AUDIT_ADDR": ":9999", "ANALYTICS_DATABASE_URL": "postgresql://u:p@db:5432/a",
				"KAFKA_BROKERS": "k1:9092, k2:9092,", "AUDIT_GROUP": "g", "AUDIT_TOPICS": "t1",
				"LOG_LEVEL": "debug",
			},
			want: Config{
				Addr: ":9999", AnalyticsDB: "postgresql://u:p@db:5432/a",
				Brokers: []string{"k1:9092", "k2:9092"}, Group: "g", Topics: []string{"t1"}, LogLevel: "debug",
			},
		},
		{
			name: "every bad setting is named",
			env: map[string]string{
				"AUDIT_ADDR": "8084", "ANALYTICS_DATABASE_URL": "mysql://h/db",
				"KAFKA_BROKERS": " , ", "AUDIT_TOPICS": ",",
			},
			wantErr: []string{"AUDIT_ADDR", "ANALYTICS_DATABASE_URL", "KAFKA_BROKERS", "AUDIT_TOPICS"},
		},
		{
			name:    "database url without a database",
			env:     map[string]string{"ANALYTICS_DATABASE_URL": "postgres://secret:hunter2@h:5432/"},
			wantErr: []string{"ANALYTICS_DATABASE_URL", "needs a host and a database"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadConfig(func(k string) string { return tt.env[k] })
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("LoadConfig() = %+v, want an error", got)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %s", err, s)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadConfig() error = %v", err)
			}
			if gj, wj := mustJSON(t, got), mustJSON(t, tt.want); gj != wj {
				t.Errorf("LoadConfig() = %s, want %s", gj, wj)
			}
		})
	}
}

func TestConfigLogValueRedactsPassword(t *testing.T) {
	t.Parallel()
	c := Config{AnalyticsDB: "postgres://u:hunter2@h/db"}
	if s := c.LogValue().String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "u:xxxxx@h/db") {
		t.Errorf("LogValue() = %s", s)
	}
}

func TestRunFailsOnBadConfig(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), func(k string) string {
		if k == "KAFKA_BROKERS" {
			return ","
		}
		return ""
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "KAFKA_BROKERS") {
		t.Fatalf("run() = %v, want a config error naming KAFKA_BROKERS", err)
	}
}

// TestRunAuditsEvents is the service end to end on the local stack: its own database, topics
// and group; events in, rows out, repeats and noise dropped, health endpoints, offsets
// committed, clean stop.
func TestRunAuditsEvents(t *testing.T) {
	t.Parallel()
	dbURL := pgdbtest.NewDatabaseURL(t, "audittest")
	brokers := kafkaBrokers(t)
	suffix := randomHex(t)
	topicReq, topicEv, group := "audittest.requested."+suffix, "audittest.events."+suffix, "audittest-"+suffix
	admin := newTopics(t, brokers, topicReq, topicEv)

	env := map[string]string{
		"AUDIT_ADDR":             "127.0.0.1:0",
		"ANALYTICS_DATABASE_URL": dbURL,
		"KAFKA_BROKERS":          strings.Join(brokers, ","),
		"AUDIT_GROUP":            group,
		"AUDIT_TOPICS":           topicReq + "," + topicEv,
	}
	logs := servertest.NewLogWatch(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, logs) }()
	addr := logs.Addr(t, done)

	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	req := events.ExportRequested{JobID: "job-" + suffix, Entity: "products", Format: "csv",
		Filters: map[string]any{"brand": "Acme"}, RequestedBy: "alice", RequesterName: "Alice", RequestedAt: at}
	produce(t, brokers, topicReq, req, req) // a repeat, as after a crash
	produce(t, brokers, topicEv,
		events.ExportStarted{JobID: req.JobID, Attempt: 1, StartedAt: at},
		events.ExportProgress{JobID: req.JobID, Attempt: 1, RowsDone: 10, At: at},
		events.ExportCompleted{JobID: req.JobID, Entity: "products", Format: "csv", Rows: 10, RequestedBy: "alice", FinishedAt: at},
		events.ExportFailed{JobID: "job-other-" + suffix, Code: "boom", RequestedBy: "bob", FailedAt: at},
	)
	produceRaw(t, brokers, &kgo.Record{Topic: topicEv, Key: []byte("x"), Value: []byte("not a cloudevent")})

	pool, err := pgxpool.New(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	want := "export.completed,export.failed,export.requested,export.started"
	eventually(t, 30*time.Second, func() (bool, string) {
		var actions string
		err := pool.QueryRow(t.Context(),
			"SELECT coalesce(string_agg(action, ',' ORDER BY action), '') FROM audit_logs").Scan(&actions)
		if err != nil {
			return false, err.Error()
		}
		return actions == want, "actions " + actions
	})

	// The record that is not a CloudEvent went to the dead-letter topic, with its reason.
	eventually(t, 30*time.Second, func() (bool, string) {
		r := deadLettered(t, brokers, topicEv)
		if r == nil {
			return false, "nothing dead-lettered from " + topicEv
		}
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		return string(r.Value) == "not a cloudevent" && strings.Contains(h["dlq_reason"], "not a CloudEvent") &&
			h["dlq_group"] == group, fmt.Sprintf("dead-lettered %q with %v", r.Value, h)
	})

	for path, wantBody := range map[string]string{
		"/healthz": `"ok"`,
		"/readyz":  `"ready"`,
		"/metrics": `audit_events_total{ce_type="com.productsmanager.export.requested.v1",outcome="duplicate"} 1`,
	} {
		code, body := servertest.Get(t, "http://"+addr+path)
		if code != http.StatusOK || !strings.Contains(body, wantBody) {
			t.Errorf("GET %s = %d, want 200 containing %s; body:\n%.2000s", path, code, wantBody, body)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run() did not return within 15s of cancel")
	}

	// Everything recorded was committed on the way out.
	actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer acancel()
	committed, err := admin.FetchOffsets(actx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	ends, err := admin.ListEndOffsets(actx, topicReq, topicEv)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		if !ok || c.At != o.Offset {
			t.Errorf("%s/%d: committed %v (found %v), end %d", o.Topic, o.Partition, c.At, ok, o.Offset)
		}
	})
}

// kafkaBrokers are the brokers of the local stack, or a skip (a failure under CI).
func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	brokers := config.SplitList(os.Getenv("KAFKA_BROKERS"))
	if len(brokers) == 0 {
		brokers = []string{"127.0.0.1:9092"}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = cl.Ping(ctx)
		cancel()
		cl.Close()
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Kafka of the local stack unreachable with CI set: %v", err)
		}
		t.Skipf("Kafka of the local stack unreachable (start it with `make infra`): %v", err)
	}
	return brokers
}

// newTopics creates single-partition topics deleted when the test ends.
func newTopics(t *testing.T, brokers []string, topics ...string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	admin := kadm.NewClient(cl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.DeleteTopics(ctx, topics...); err != nil {
			t.Logf("deleting topics %v: %v", topics, err)
		}
		admin.Close()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := admin.CreateTopics(ctx, 1, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("creating topics %v: %v", topics, err)
	}
	return admin
}

func produce(t *testing.T, brokers []string, topic string, evs ...events.Event) {
	t.Helper()
	for _, ev := range evs {
		env, err := events.Wrap(ev)
		if err != nil {
			t.Fatal(err)
		}
		produceRaw(t, brokers, eventbus.Record(topic, env))
	}
}

func produceRaw(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal("test context done")
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("condition not met within %v: %s", within, last)
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deadLettered is the record of events.TopicDeadLetter that came from topic, or nil.
func deadLettered(t *testing.T, brokers []string, topic string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(events.TopicDeadLetter),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().Add(-time.Minute).UnixMilli())))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			for _, h := range r.Headers {
				if h.Key == "dlq_topic" && string(h.Value) == topic {
					return r
				}
			}
		}
	}
	return nil
}
