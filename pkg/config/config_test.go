package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/config"
)

func TestEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"S": "  x ", "N": "7", "D": "250ms", "B": "true", "L": "a, ,b,",
		"BADN": "seven", "BADD": "soon", "BADB": "maybe",
	}
	e := config.New(func(k string) string { return vars[k] })
	if got := e.String("S", "def"); got != "x" {
		t.Errorf("String = %q", got)
	}
	if got := e.String("MISSING", "def"); got != "def" {
		t.Errorf("String default = %q", got)
	}
	if e.Int("N", 1) != 7 || e.Duration("D", 0) != 250*time.Millisecond || !e.Bool("B", false) {
		t.Error("typed values not read")
	}
	if got := e.List("L", ""); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("List = %q", got)
	}
	if e.Err() != nil {
		t.Fatalf("no error expected yet: %v", e.Err())
	}
	if e.Int("BADN", 3) != 3 || e.Duration("BADD", time.Second) != time.Second || e.Bool("BADB", true) != true {
		t.Error("malformed values must fall back to the default")
	}
	err := e.Err()
	for _, k := range []string{"BADN", "BADD", "BADB"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("error %v does not name %s", err, k)
		}
	}
}
