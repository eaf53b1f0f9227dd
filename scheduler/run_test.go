package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/config"
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
				Addr:      "127.0.0.1:8083",
				ExportsDB: "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable",
				Brokers:   []string{"127.0.0.1:9092"},
				LogLevel:  "info",
				Group:     "scheduler", CatchUpWindow: 24 * time.Hour, MisfireGrace: 10 * time.Second,
				Poll: 500 * time.Millisecond, Workers: 4,
			},
		},
		{
			name: "overrides",
			env: map[string]string{
				"SCHEDULER_ADDR": ":18083", "EXPORTS_DATABASE_URL": "postgresql://u:p@db:5432/x",
				"KAFKA_BROKERS": "k1:9092,k2:9092", "LOG_LEVEL": "debug", "SCHEDULER_GROUP": "g",
				"SCHEDULER_CATCHUP_WINDOW": "1h", "SCHEDULER_MISFIRE_GRACE": "5s", "SCHEDULER_POLL": "100ms", "SCHEDULER_WORKERS": "2",
			},
			want: Config{Addr: ":18083", ExportsDB: "postgresql://u:p@db:5432/x",
				Brokers: []string{"k1:9092", "k2:9092"}, LogLevel: "debug", Group: "g",
				CatchUpWindow: time.Hour, MisfireGrace: 5 * time.Second, Poll: 100 * time.Millisecond, Workers: 2},
		},
		{
			name: "every bad setting is named",
			env: map[string]string{"SCHEDULER_ADDR": "localhost", "EXPORTS_DATABASE_URL": "http://h/x", "KAFKA_BROKERS": " ,",
				"SCHEDULER_CATCHUP_WINDOW": "-1h", "SCHEDULER_POLL": "1ns"},
			wantErr: []string{"SCHEDULER_ADDR", "EXPORTS_DATABASE_URL", "KAFKA_BROKERS", "SCHEDULER_CATCHUP_WINDOW", "SCHEDULER_POLL"},
		},
		{
			name:    "database url without a database, password not echoed",
			env:     map[string]string{"EXPORTS_DATABASE_URL": "postgres://u:hunter2@h"},
			wantErr: []string{"EXPORTS_DATABASE_URL", "needs a host and a database"},
		},
		{
			name:    "unparsable database url, password not echoed",
			env:     map[string]string{"EXPORTS_DATABASE_URL": "postgres://u:hunter2@h:port/x"},
			wantErr: []string{"EXPORTS_DATABASE_URL", "not a URL"},
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
	c := Config{ExportsDB: "postgres://u:hunter2@h/exports"}
	if s := c.LogValue().String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "u:xxxxx@h/exports") {
		t.Errorf("LogValue() = %s", s)
	}
}

func TestRunFailsOnBadConfig(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), func(k string) string {
		if k == "SCHEDULER_ADDR" {
			return "nope"
		}
		return ""
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SCHEDULER_ADDR") {
		t.Fatalf("run() = %v, want a config error naming SCHEDULER_ADDR", err)
	}
}

func TestRunFailsWithoutDatabase(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback refuses at once.
	err := run(t.Context(), func(k string) string {
		if k == "EXPORTS_DATABASE_URL" {
			return "postgres://postgres@127.0.0.1:1/exports?sslmode=disable&connect_timeout=2"
		}
		return ""
	}, io.Discard)
	if err == nil {
		t.Fatal("run() without a database = nil, want an error")
	}
}

// TestRunStartsAndStops: on the local stack, run serves its three endpoints and returns nil
// soon after its context is cancelled.
func TestRunStartsAndStops(t *testing.T) {
	t.Parallel()
	_, brokers := stack(t)
	// A database and a group of its own: the stack's schedules are not this test's to fire.
	env := map[string]string{
		"SCHEDULER_ADDR":       "127.0.0.1:0",
		"EXPORTS_DATABASE_URL": pgdbtest.NewDatabaseURL(t, "schedulerrun"),
		"KAFKA_BROKERS":        strings.Join(brokers, ","),
		"SCHEDULER_GROUP":      "scheduler-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000"),
	}
	logs := servertest.NewLogWatch(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, logs) }()
	addr := logs.Addr(t, done)

	for path, want := range map[string]string{
		"/healthz": `"ok"`,
		"/readyz":  `"ready"`,
		"/metrics": "scheduler_fire_delay_seconds",
	} {
		code, body := servertest.Get(t, "http://"+addr+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, want 200 containing %s; body:\n%.2000s", path, code, want, body)
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
}

// stack is the exports database URL and the brokers of the local stack, or a skip when they
// do not answer (a failure under CI, where the stack is part of the run).
func stack(t *testing.T) (string, []string) {
	t.Helper()
	dbURL := os.Getenv("EXPORTS_DATABASE_URL")
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"
	}
	brokers := config.SplitList(os.Getenv("KAFKA_BROKERS"))
	if len(brokers) == 0 {
		brokers = []string{"127.0.0.1:9092"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err == nil {
		_ = conn.Close(ctx)
		var cl *kgo.Client
		if cl, err = kgo.NewClient(kgo.SeedBrokers(brokers...)); err == nil {
			err = cl.Ping(ctx)
			cl.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("local stack unreachable with CI set: %v", err)
		}
		t.Skipf("local stack unreachable (start it with `make infra`): %v", err)
	}
	return dbURL, brokers
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
