package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/pkg/catalog"
)

var copyTag = regexp.MustCompile(`(?m)^COPY (\d+)$`)

// benchCopy measures the host's ceiling: psql's \copy of the exporter's exact products query
// (default fields, no filter) to /dev/null, the fastest the database can hand those rows out.
func (b *bench) benchCopy(ctx context.Context) {
	const name = "copy"
	q, err := catalog.NewQuery("products", nil, nil, nil)
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	sql, _ := q.SQL()
	psql, err := exec.LookPath("psql")
	if err != nil {
		psql = filepath.Join(os.Getenv("PG_BIN"), "psql")
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	// \copy takes the rest of one line: the query's layout whitespace is folded (it holds no
	// string literal with spaces or line breaks).
	meta := `\copy (` + oneLine(sql) + `) to '/dev/null' csv`
	cmd := exec.CommandContext(ctx, psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", b.cfg.catalogURL, "-c", meta)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	t0 := time.Now()
	err = cmd.Run()
	elapsed := time.Since(t0)
	if err != nil {
		b.fail(name, fmt.Sprintf("psql: %v: %s", err, strings.TrimSpace(errOut.String())))
		return
	}
	m := copyTag.FindSubmatch(out.Bytes())
	if m == nil {
		b.fail(name, fmt.Sprintf("psql printed no COPY count: %q", out.String()))
		return
	}
	rows, _ := strconv.ParseInt(string(m[1]), 10, 64)
	b.emit("copy_ceiling_rows", float64(rows), "rows", 0)
	b.emit("copy_ceiling_rows_per_s", float64(rows)/elapsed.Seconds(), "rows/s", 0)
	b.emit("copy_ceiling_seconds", elapsed.Seconds(), "s", 2)
}

// oneLine folds every run of whitespace into one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
