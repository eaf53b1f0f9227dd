package api_test

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// errorSources are the packages whose answers carry the API's error codes (CONTRACT §3): the
// producer-api's handlers, the shared server and auth middleware, and the progress hub (whose
// WebSocket path the API proxies).
var errorSources = []string{".", "../../../pkg/server", "../../../pkg/auth", "../../../progress-hub"}

// errorWriters are the functions that answer an error, with the index of their code argument;
// each takes five arguments (the API's a.refuse(w, r, err) is not one: its badRequest is).
var errorWriters = map[string]int{
	"WriteError": 2, // server.WriteError(w, status, code, message, field)
	"writeError": 3, // auth's writeError(w, r, status, code, message)
	"authError":  3, // a.authError(w, r, status, code, message)
	"onError":    3, // auth's ErrorWriter(w, r, status, code, message)
	"refuse":     2, // the hub's s.refuse(w, status, code, msg, reason)
}

// statusNames are the net/http constants the sources use; a new one fails the test until it is
// added here.
var statusNames = map[string]int{
	"StatusBadRequest": http.StatusBadRequest, "StatusUnauthorized": http.StatusUnauthorized,
	"StatusForbidden": http.StatusForbidden, "StatusNotFound": http.StatusNotFound,
	"StatusMethodNotAllowed": http.StatusMethodNotAllowed, "StatusConflict": http.StatusConflict,
	"StatusGone": http.StatusGone, "StatusRequestEntityTooLarge": http.StatusRequestEntityTooLarge,
	"StatusTooManyRequests": http.StatusTooManyRequests, "StatusInternalServerError": http.StatusInternalServerError,
	"StatusBadGateway": http.StatusBadGateway, "StatusServiceUnavailable": http.StatusServiceUnavailable,
	"StatusUnprocessableEntity": http.StatusUnprocessableEntity, "StatusNotAcceptable": http.StatusNotAcceptable,
	"StatusUnsupportedMediaType": http.StatusUnsupportedMediaType, "StatusRequestTimeout": http.StatusRequestTimeout,
	"StatusPreconditionFailed": http.StatusPreconditionFailed, "StatusGatewayTimeout": http.StatusGatewayTimeout,
}

// TestREADMEListsEveryErrorCode reads the Go sources that answer errors and the README's
// "Error codes" table: every code the sources pass to an error writer (or put in a badRequest)
// has a row, with each HTTP status it is sent with; every row is a code the sources still send.
func TestREADMEListsEveryErrorCode(t *testing.T) {
	t.Parallel()
	fset := gotoken.NewFileSet()
	var files []*ast.File
	for _, dir := range errorSources {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasSuffix(d.Name(), "test") && path != dir) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			files = append(files, f)
			return nil
		})
		if err != nil {
			t.Fatalf("reading %s: %v", dir, err)
		}
	}
	if len(files) < 10 {
		t.Fatalf("only %d Go files under %v: the test reads the wrong directories", len(files), errorSources)
	}

	// String constants, by name (auth.CodeUnauthenticated resolves as CodeUnauthenticated).
	consts := map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							consts[name.Name] = s
						}
					}
				}
			}
			return true
		})
	}
	codes := map[string]map[int]bool{} // code -> the statuses it is sent with (0: decided at run time)
	add := func(code string, status int) {
		if codes[code] == nil {
			codes[code] = map[int]bool{}
		}
		codes[code][status] = true
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				at, ok := errorWriters[name]
				if !ok || len(n.Args) != 5 {
					return true
				}
				if w, ok := n.Args[0].(*ast.Ident); !ok || (w.Name != "w" && w.Name != "rec") {
					return true // not an http.ResponseWriter's error (pkg/platform's refuse(field, ...))
				}
				code, known := codeOf(n.Args[at], consts)
				if !known {
					if passThrough(n.Args[at]) {
						return true // a parameter or a badRequest's code, found where it is set
					}
					t.Errorf("%s: cannot tell the code of %s(...): give a string literal or constant", fset.Position(n.Pos()), name)
					return true
				}
				add(code, statusOf(t, fset, n.Args[at-1]))
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "badRequest" {
					for _, el := range n.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if k, _ := kv.Key.(*ast.Ident); !ok || k == nil || k.Name != "code" {
							continue
						}
						if code, ok := codeOf(kv.Value, consts); ok {
							add(code, http.StatusBadRequest)
						} else if !passThrough(kv.Value) {
							t.Errorf("%s: cannot tell the code of a badRequest", fset.Position(kv.Pos()))
						}
					}
				}
			}
			return true
		})
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d codes: %v", len(codes), codes)
	}

	table := readmeErrorCodes(t)
	for code, statuses := range codes {
		row, ok := table[code]
		if !ok {
			t.Errorf("README's Error codes table lacks %q (sent with %v)", code, keys(statuses))
			continue
		}
		for s := range statuses {
			if s != 0 && !strings.Contains(row, strconv.Itoa(s)) {
				t.Errorf("README's row of %q does not name status %d: %q", code, s, row)
			}
		}
	}
	for code := range table {
		if _, ok := codes[code]; !ok {
			t.Errorf("README's Error codes table lists %q, which no source sends any more", code)
		}
	}
}

// readmeErrorCodes returns the rows of README's "Error codes" table, by code (the first cell,
// in backquotes); the value is the statuses cell.
func readmeErrorCodes(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Error codes\n")
	if !ok {
		t.Fatal(`README.md has no "## Error codes" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([^|]+) \\|[^|]+\\|[^|]+\\|$")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		if _, dup := out[m[1]]; dup {
			t.Errorf("README lists %q twice", m[1])
		}
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		t.Fatal("README's Error codes section has no row | `code` | status | meaning | what to do |")
	}
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == gotoken.STRING {
		s, err := strconv.Unquote(bl.Value)
		return s, err == nil
	}
	return "", false
}

func codeOf(e ast.Expr, consts map[string]string) (string, bool) {
	if s, ok := stringLit(e); ok {
		return s, true
	}
	var name string
	switch e := e.(type) {
	case *ast.Ident:
		name = e.Name
	case *ast.SelectorExpr:
		name = e.Sel.Name
	}
	s, ok := consts[name]
	return s, ok
}

// passThrough is a code handed on from elsewhere: a parameter named code, or x.code.
func passThrough(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "code"
	case *ast.SelectorExpr:
		return e.Sel.Name == "code"
	}
	return false
}

// statusOf is the status of http.StatusXxx, or 0 when it is a variable.
func statusOf(t *testing.T, fset *gotoken.FileSet, e ast.Expr) int {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return 0
	}
	if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "http" {
		return 0
	}
	s, ok := statusNames[sel.Sel.Name]
	if !ok {
		t.Errorf("%s: add http.%s to statusNames", fset.Position(e.Pos()), sel.Sel.Name)
	}
	return s
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
