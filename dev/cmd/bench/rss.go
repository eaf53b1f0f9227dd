package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssMonitor measures a process's peak resident memory over an interval, two ways:
//   - the kernel's own high-water mark: writing 5 to /proc/PID/clear_refs resets VmHWM to the
//     current RSS (Linux ≥ 4.0, needs ptrace rights: root or the same user), and VmHWM read at
//     the end is the exact peak, spikes included;
//   - sampling VmRSS every interval (20 ms), which works everywhere but can miss a short spike.
//
// peak prefers the high-water mark when the reset worked.
type rssMonitor struct {
	pid      int
	startKiB int64
	hwmReset bool
	stop     chan struct{}
	done     sync.WaitGroup
	maxKiB   int64 // sampled, owned by the sampler until done
	samples  int
	tmpDir   string // the process's temporary directory
	maxTmp   int64  // the largest sum of its open files there, sampled, in bytes
}

func startRSS(pid int, every time.Duration) *rssMonitor {
	m := &rssMonitor{pid: pid, stop: make(chan struct{})}
	if st, err := readStatus(pid); err == nil {
		m.startKiB = st["VmRSS"]
		m.maxKiB = st["VmRSS"]
	}
	m.hwmReset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	m.tmpDir = tempDirOf(pid)
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				if st, err := readStatus(pid); err == nil {
					m.samples++
					m.maxKiB = max(m.maxKiB, st["VmRSS"])
				}
				m.maxTmp = max(m.maxTmp, openBytesUnder(pid, m.tmpDir))
			}
		}
	}()
	return m
}

// rssResult is what a monitor saw, in KiB.
type rssResult struct {
	startKiB, sampledKiB, hwmKiB int64
	hwmReset                     bool
	samples                      int
	tmpBytes                     int64 // the most temporary disk it held open at once, sampled
}

// peakMiB is the high-water mark when it could be reset, else the sampled maximum. The kernel
// folds per-thread RSS counters into VmHWM lazily, so a sample may top it by a few pages: the
// larger of the two counts.
func (r rssResult) peakMiB() float64 {
	if r.hwmReset && r.hwmKiB > 0 {
		return kib(max(r.hwmKiB, r.sampledKiB))
	}
	return kib(r.sampledKiB)
}

func (r rssResult) String() string {
	method := "VmHWM after clear_refs"
	if !r.hwmReset {
		method = "sampled VmRSS (clear_refs failed)"
	}
	return fmt.Sprintf("peak %.1f MiB by %s; start %.1f MiB, sampled max %.1f MiB (%d samples), VmHWM %.1f MiB",
		r.peakMiB(), method, kib(r.startKiB), kib(r.sampledKiB), r.samples, kib(r.hwmKiB))
}

func kib(v int64) float64 { return float64(v) / 1024 }

func (m *rssMonitor) Stop() rssResult {
	close(m.stop)
	m.done.Wait()
	r := rssResult{startKiB: m.startKiB, sampledKiB: m.maxKiB, hwmReset: m.hwmReset, samples: m.samples, tmpBytes: m.maxTmp}
	if st, err := readStatus(m.pid); err == nil {
		r.hwmKiB = st["VmHWM"]
		r.sampledKiB = max(r.sampledKiB, st["VmRSS"])
	}
	return r
}

// tempDirOf is the temporary directory of process pid: its TMPDIR, else /tmp (os.TempDir).
func tempDirOf(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for kv := range bytes.SplitSeq(raw, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("TMPDIR=")); ok && len(v) > 0 {
			return filepath.Clean(string(v))
		}
	}
	return "/tmp"
}

// openBytesUnder sums the sizes of the regular files process pid holds open under dir, deleted
// ones included: the temporary disk it uses.
func openBytesUnder(pid int, dir string) int64 {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return 0
	}
	var sum int64
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		if st, err := os.Stat(filepath.Join(fdDir, fd.Name())); err == nil && st.Mode().IsRegular() {
			sum += st.Size()
		}
	}
	return sum
}

// readStatus returns the kB fields of /proc/PID/status (VmRSS, VmHWM, ...).
func readStatus(pid int) (map[string]int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	return parseStatus(raw), nil
}

func parseStatus(raw []byte) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			continue
		}
		if v, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
			out[string(key)] = v
		}
	}
	return out
}
