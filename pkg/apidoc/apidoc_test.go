package apidoc

import (
	"strings"
	"testing"
)

func TestJSON(t *testing.T) {
	t.Parallel()
	out, err := JSON([]byte("z: &x\n  b: [1, two, true, null, 2.5]\nc: *x\n'200': {d: null}\nm:\n  <<: *x\n  e: 3\n  b: over\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Keys in the written order, the alias resolved, the quoted key kept, the merge expanded
	// and overridden in place.
	want := `{"z":{"b":[1,"two",true,null,2.5]},"c":{"b":[1,"two",true,null,2.5]},"200":{"d":null},"m":{"b":"over","e":3}}`
	if string(out) != want {
		t.Fatalf("JSON =\n %s\nwant\n %s", out, want)
	}
}

func TestJSONRefusesNonStringKeys(t *testing.T) {
	t.Parallel()
	_, err := JSON([]byte("responses:\n  200: {description: ok}\n"))
	if err == nil || !strings.Contains(err.Error(), "/responses") {
		t.Fatalf("err = %v, want a refusal naming /responses", err)
	}
}

func TestJSONRefusesBadYAML(t *testing.T) {
	t.Parallel()
	if _, err := JSON([]byte("a: [1\n")); err == nil {
		t.Fatal("a truncated document was accepted")
	}
}
