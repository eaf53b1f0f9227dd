package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

func TestRun(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantSecret string
		want       auth.Principal
		wantErr    bool
	}{
		{
			name:       "defaults",
			wantSecret: defaultSecret,
			want:       auth.Principal{Subject: "alice", Permissions: []string{auth.PermReadExports, auth.PermWriteExports}},
		},
		{
			name:       "JWT_SECRET from the environment",
			env:        map[string]string{"JWT_SECRET": "from-env"},
			wantSecret: "from-env",
			want:       auth.Principal{Subject: "alice", Permissions: []string{auth.PermReadExports, auth.PermWriteExports}},
		},
		{
			name:       "flags",
			args:       []string{"-sub", "bob", "-name", "Bob Dupont", "-perms", " READ_EXPORTS , ,", "-ttl", "5m", "-secret", "from-flag"},
			env:        map[string]string{"JWT_SECRET": "from-env"},
			wantSecret: "from-flag",
			want:       auth.Principal{Subject: "bob", Name: "Bob Dupont", Permissions: []string{auth.PermReadExports}},
		},
		{
			name:       "no permissions",
			args:       []string{"-perms", ""},
			wantSecret: defaultSecret,
			want:       auth.Principal{Subject: "alice", Permissions: []string{}},
		},
		{name: "zero ttl", args: []string{"-ttl", "0s"}, wantErr: true},
		{name: "empty subject", args: []string{"-sub", ""}, wantErr: true},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: true},
		{name: "stray argument", args: []string{"alice"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			getenv := func(k string) string { return tt.env[k] }
			err := run(tt.args, getenv, &stdout, &stderr, now)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("run() = nil, want an error; stdout %q", stdout.String())
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout = %q on error, want nothing", stdout.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("run() error = %v; stderr %q", err, stderr.String())
			}
			out := stdout.String()
			token, ok := strings.CutSuffix(out, "\n")
			if !ok || strings.ContainsAny(token, " \n") {
				t.Fatalf("stdout = %q, want one token and a newline", out)
			}
			v, err := auth.NewHS256Verifier([]byte(tt.wantSecret))
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(token)
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if got.Subject != tt.want.Subject || got.Name != tt.want.Name ||
				strings.Join(got.Permissions, ",") != strings.Join(tt.want.Permissions, ",") {
				t.Errorf("token principal = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRunHelpHidesSecret(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "super-secret-value" }
	if err := run([]string{"-h"}, getenv, &stdout, &stderr, time.Now()); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(-h) = %v, want flag.ErrHelp", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
	if strings.Contains(stderr.String(), "super-secret-value") {
		t.Errorf("usage leaks $JWT_SECRET: %s", stderr.String())
	}
}
