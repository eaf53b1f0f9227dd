// Package memlimit sets the Go runtime's soft memory limit from the container's own, so a
// service under a memory limit collects harder as it nears the limit instead of being killed
// past it, without anyone keeping GOMEMLIMIT and the container's limit in step by hand.
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// unlimitedV1 is past any real limit: cgroup v1 writes a page-rounded int64 maximum for none.
const unlimitedV1 = 1 << 60

// set sets the runtime's memory limit to fraction of the memory limit of the cgroup under
// root, unless GOMEMLIMIT is set (the runtime has read it: it wins) or the process has no
// limit. It returns the limit set in bytes (0 when it set none) and why.
func set(getenv func(string) string, root string, fraction float64) (int64, string, error) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT=" + v, nil
	}
	if fraction <= 0 || fraction > 1 {
		return 0, "", fmt.Errorf("memory limit fraction %v: must be in (0, 1]", fraction)
	}
	limit, src, err := cgroupLimit(root)
	if err != nil || limit == 0 {
		return 0, src, err
	}
	soft := int64(float64(limit) * fraction)
	debug.SetMemoryLimit(soft)
	return soft, src, nil
}

// cgroupLimit reads the memory limit of the process's cgroup: v2's memory.max, else v1's
// memory.limit_in_bytes; 0 when there is none.
func cgroupLimit(root string) (int64, string, error) {
	for _, name := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		path := filepath.Join(root, name)
		raw, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, path, fmt.Errorf("reading %s: %w", path, err)
		}
		v := strings.TrimSpace(string(raw))
		if v == "max" {
			return 0, path + ": max", nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, path, fmt.Errorf("%s: %q is no memory limit", path, v)
		}
		if n >= unlimitedV1 || n == math.MaxInt64 {
			return 0, path + ": unlimited", nil
		}
		return n, path, nil
	}
	return 0, "no cgroup memory limit file", nil
}

// Apply sets the runtime's soft memory limit to 90 % of the container's, unless GOMEMLIMIT is
// set, and logs it: what each service calls at start.
func Apply(getenv func(string) string, log *slog.Logger) {
	limit, from, err := set(getenv, "/sys/fs/cgroup", 0.9)
	switch {
	case err != nil:
		log.Warn("no soft memory limit set from the container's", "err", err)
	case limit > 0:
		log.Info("soft memory limit set to 90% of the container's", "bytes", limit, "from", from)
	}
}
