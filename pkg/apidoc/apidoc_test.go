package apidoc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSON(t *testing.T) {
	out, err := JSON([]byte("a: &x\n  b: [1, two]\nc: *x\n'200': {d: null}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"200":{"d":null},"a":{"b":[1,"two"]},"c":{"b":[1,"two"]}}`
	if string(out) != want {
		t.Fatalf("JSON = %s, want %s (the alias resolved, the quoted key kept)", out, want)
	}
}

func TestJSONRefusesNonStringKeys(t *testing.T) {
	_, err := JSON([]byte("responses:\n  200: {description: ok}\n"))
	if err == nil || !strings.Contains(err.Error(), "/responses") {
		t.Fatalf("err = %v, want a refusal naming /responses", err)
	}
}

func TestJSONRefusesBadYAML(t *testing.T) {
	if _, err := JSON([]byte("a: [1\n")); err == nil {
		t.Fatal("a truncated document was accepted")
	}
}
