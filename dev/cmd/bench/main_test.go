package main

import (
	"bytes"
	"errors"
	"flag"
	"testing"
)

func TestRecordCounter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		chunks []string
		csv    bool
		want   int64
	}{
		{name: "csv plain", chunks: []string{"a,b\n1,2\n3,4\n"}, csv: true, want: 3},
		{name: "csv quoted line break", chunks: []string{"a,b\n1,\"x\ny\"\n"}, csv: true, want: 2},
		{name: "csv escaped quote across chunks", chunks: []string{"a\n\"he said \"", "\"hi\"\"\n\"\nb\n"}, csv: true, want: 3},
		{name: "csv crlf", chunks: []string{"a\r\n1\r\n"}, csv: true, want: 2},
		{name: "no final line break", chunks: []string{"a\n1"}, csv: true, want: 2},
		{name: "json lines ignore quotes", chunks: []string{`{"a":"\""}` + "\n", `{"a":1}` + "\n"}, want: 2},
		{name: "empty", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c recordCounter
			for _, ch := range tt.chunks {
				c.feed([]byte(ch), tt.csv)
			}
			if got := c.records(); got != tt.want {
				t.Errorf("records() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	raw := []byte("Name:\texporter\nVmHWM:\t   26340 kB\nVmRSS:\t   25000 kB\nThreads:\t9\n")
	got := parseStatus(raw)
	if got["VmHWM"] != 26340 || got["VmRSS"] != 25000 || len(got) != 2 {
		t.Errorf("parseStatus() = %v", got)
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	if got, want := oneLine("SELECT a\n\t\tFROM  b\n"), "SELECT a FROM b"; got != want {
		t.Errorf("oneLine() = %q, want %q", got, want)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string { return map[string]string{"API_ADDR": "127.0.0.1:9999"}[k] }
	var stderr bytes.Buffer
	cfg, err := loadConfig([]string{"-only", "csv, copy", "-products", "5000"}, getenv, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.only) != 2 || cfg.only[0] != "csv" || cfg.only[1] != "copy" || cfg.products != 5000 || cfg.apiURL != "http://127.0.0.1:9999" {
		t.Errorf("loadConfig() = %+v", cfg)
	}
	for _, args := range [][]string{{"-only", "nope"}, {"-up", "sometimes"}, {"-products", "0"}, {"stray"}} {
		if _, err := loadConfig(args, getenv, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("loadConfig(%q) error = %v, want errUsage", args, err)
		}
	}
	if _, err := loadConfig([]string{"-h"}, getenv, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("loadConfig(-h) error = %v, want flag.ErrHelp", err)
	}
}
