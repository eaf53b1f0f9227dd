package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// The hub benches (issue 4): the time from an ExportProgress produced to Kafka to a WebSocket
// client holding the matching push, with many clients following every job; and the hub's
// memory with many idle clients. They need no catalog: the jobs are synthetic rows of the
// exports database, marked running so that no exporter claims them, and deleted afterwards.

const wsPath = "/api/v1/exports/ws"

// raiseNoFile lifts this process's soft open-file limit to the hard one (every client holds a
// socket) and returns the soft limit now in force.
func raiseNoFile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

// connectClients opens n WebSockets to the hub, dialling a few at a time, each subscribing to
// every job, and hands each connection to serve in its own goroutine, counted by readers. It returns the
// connections made (fewer than n when dials fail: the first error is returned with them).
func (b *bench) connectClients(ctx context.Context, n int, readers *sync.WaitGroup, serve func(c *wsConn)) ([]*wsConn, error) {
	if lim := raiseNoFile(); lim < uint64(n)+64 {
		b.logf("open file limit %d is below %d clients; expect failed dials", lim, n)
	}
	conns := make([]*wsConn, n)
	var (
		next     atomic.Int64
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				addrs := append([]string{b.cfg.hubAddr}, b.cfg.hubReplicas...)
				c, err := dialWS(dctx, addrs[i%len(addrs)], wsPath, b.token)
				cancel()
				if err == nil {
					err = c.writeText(`{"type":"subscribe","all":true}`)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
				readers.Go(func() { serve(c) })
			}
		})
	}
	wg.Wait()
	out := slices.DeleteFunc(conns, func(c *wsConn) bool { return c == nil })
	return out, firstErr
}

func closeClients(conns []*wsConn) {
	for _, c := range conns {
		c.close()
	}
}

// syntheticJobs inserts n running jobs leased to "bench" for a day (no exporter claims a job
// under a live lease) and returns their ids and a function deleting them.
func (b *bench) syntheticJobs(ctx context.Context, n int) ([]string, func(), error) {
	conn, err := pgx.Connect(ctx, b.cfg.exportsURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the exports database: %w", err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newUUID()
		if _, err := conn.Exec(ctx, `INSERT INTO jobs (id, entity, format, status, requested_by, requester_name,
				started_at, rows_total, attempt, progress_attempt, phase, lease_owner, lease_expires_at, version)
			VALUES ($1, 'products', 'csv', 'running', 'bench', 'make bench (hub)', now(), $2, 1, 1, 'writing',
				'bench', now() + interval '1 day', 2)`,
			ids[i], int64(1)<<40); err != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
			return nil, nil, fmt.Errorf("inserting a synthetic job: %w", err)
		}
	}
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(cctx, `DELETE FROM jobs WHERE id = ANY($1::uuid[])`, ids); err != nil {
			b.logf("deleting the synthetic jobs %v: %v", ids, err)
		}
		_ = conn.Close(cctx)
	}
	return ids, cleanup, nil
}

func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// latencySink matches pushes to the events that caused them: every event of the bench has a
// distinct rows_done (its sequence number), so a push is identified by rows_done alone.
type latencySink struct {
	sent     []atomic.Int64 // seq → unix nanoseconds when the produce call began; 0: not sent
	got      []atomic.Int64 // seq → clients that received its push
	mu       sync.Mutex
	samples  []int64 // nanoseconds
	received atomic.Int64
}

var (
	rowsDoneKey = []byte(`"rows_done":`)
	progressKey = []byte(`"type":"progress"`)
)

// observe handles one message a client received at now.
func (s *latencySink) observe(msg []byte, now int64, local *[]int64) {
	if !bytes.HasPrefix(msg, []byte(`{`)) || !bytes.Contains(msg[:min(len(msg), 32)], progressKey) {
		return // snapshots and anything that is not a push
	}
	i := bytes.Index(msg, rowsDoneKey)
	if i < 0 {
		return
	}
	rest := msg[i+len(rowsDoneKey):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	seq, err := strconv.Atoi(string(rest[:j]))
	if err != nil || seq <= 0 || seq >= len(s.sent) {
		return
	}
	t0 := s.sent[seq].Load()
	if t0 == 0 {
		return // a snapshot-era or foreign update
	}
	*local = append(*local, now-t0)
	s.received.Add(1)
	s.got[seq].Add(1)
}

func (s *latencySink) add(local []int64) {
	s.mu.Lock()
	s.samples = append(s.samples, local...)
	s.mu.Unlock()
}

func (b *bench) kafkaClient() (*kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.cfg.brokers...), kgo.ClientID("bench-hub"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// benchHubLatency: hub_latency_p50_ms and hub_latency_p99_ms from ExportProgress produced (the
// produce call begins) to a client holding the push, over every client and every event.
func (b *bench) benchHubLatency(ctx context.Context) {
	const name = "hub_latency"
	cfg := b.cfg
	ids, cleanup, err := b.syntheticJobs(ctx, cfg.hubJobs)
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	defer cleanup()
	stop, err := b.spawnHubs(ctx, cfg.hubSpawn)
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	defer stop()
	kcl, err := b.kafkaClient()
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	defer kcl.Close()

	nEvents := int(cfg.hubRate * cfg.hubDuration.Seconds())
	sink := &latencySink{sent: make([]atomic.Int64, nEvents+1), got: make([]atomic.Int64, nEvents+1)}
	var readers sync.WaitGroup
	serve := func(c *wsConn) {
		local := make([]int64, 0, nEvents)
		defer func() { sink.add(local) }()
		for {
			msg, err := c.read()
			if err != nil {
				return
			}
			sink.observe(msg, time.Now().UnixNano(), &local)
		}
	}
	t0 := time.Now()
	conns, err := b.connectClients(ctx, cfg.hubClients, &readers, serve)
	b.logf("%s: %d clients connected and subscribed in %s", name, len(conns), time.Since(t0).Round(time.Millisecond))
	if err != nil {
		b.logf("%s: %v", name, err)
	}
	if len(conns) == 0 {
		b.fail(name, "no client could connect")
		return
	}
	pid, _ := b.hubPID()
	// Let the snapshots of {"all": true} go out before measuring pushes.
	time.Sleep(2 * time.Second)
	cpu0 := procCPU(pid)

	b.logf("%s: producing %d ExportProgress over %s across %d jobs", name, nEvents, cfg.hubDuration, len(ids))
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.hubRate))
	start := time.Now()
	for seq := 1; seq <= nEvents; seq++ {
		select {
		case <-ctx.Done():
			closeClients(conns)
			b.fail(name, ctx.Err().Error())
			return
		case <-tick.C:
		}
		job := ids[seq%len(ids)]
		// As the job's writer makes it (pkg/job): the event carries the state it led to,
		// which is what the hub pushes.
		now := time.Now().UTC()
		total, rate := int64(1)<<40, cfg.hubRate
		pct := float64(seq) / float64(nEvents)
		env, err := events.Wrap(events.ExportProgress{
			JobID: job, Attempt: 1, RowsDone: int64(seq), RowsTotal: total,
			Progress: pct, BytesWritten: int64(seq) * 100,
			Phase: events.PhaseWriting, RateRowsPerS: rate, At: now,
			State: &events.JobState{Version: int64(seq) + 2, Status: "running", Phase: events.PhaseWriting,
				Progress: pct, RowsDone: int64(seq), RowsTotal: &total, BytesWritten: int64(seq) * 100,
				RateRowsPerS: &rate, UpdatedAt: now, Owner: "bench"},
		})
		if err != nil {
			b.fail(name, err.Error())
			return
		}
		rec := &kgo.Record{Topic: events.TopicEvents, Key: []byte(env.Key), Value: env.Data}
		for _, h := range env.Headers() {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		sink.sent[seq].Store(time.Now().UnixNano())
		kcl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				b.logf("%s: producing: %v", name, err)
			}
		})
	}
	tick.Stop()
	_ = kcl.Flush(ctx)
	produced := time.Since(start)
	// Wait for the stragglers: until every push arrived, or nothing arrived for 3 s.
	want := int64(nEvents) * int64(len(conns))
	last, lastAt := sink.received.Load(), time.Now()
	for sink.received.Load() < want && time.Since(lastAt) < 3*time.Second {
		time.Sleep(50 * time.Millisecond)
		if n := sink.received.Load(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	cpu := procCPU(pid) - cpu0
	elapsed := time.Since(start)
	closeClients(conns)
	readers.Wait()

	s := sink.samples
	if len(s) == 0 {
		b.fail(name, "no push received")
		return
	}
	slices.Sort(s)
	pct := func(p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / 1e6
	}
	b.emit(name+"_clients", float64(len(conns)), "clients", 0)
	b.emit(name+"_replicas", float64(1+len(b.cfg.hubReplicas)), "hubs", 0)
	b.emit(name+"_events", float64(nEvents), "events", 0)
	b.emit(name+"_pushes_received", float64(len(s)), "pushes", 0)
	b.emit(name+"_pushes_missed", float64(want-int64(len(s))), "pushes", 0)
	b.emit(name+"_p50_ms", pct(0.50), "ms", 1)
	b.emit(name+"_p99_ms", pct(0.99), "ms", 1)
	b.emit(name+"_max_ms", float64(s[len(s)-1])/1e6, "ms", 1)
	if cpu > 0 {
		b.emit(name+"_hub_cpu_percent", 100*cpu.Seconds()/elapsed.Seconds(), "%", 0)
	}
	var short []string
	for seq := 1; seq <= nEvents; seq++ {
		if n := sink.got[seq].Load(); n < int64(len(conns)) && len(short) < 20 {
			short = append(short, fmt.Sprintf("%d:%d", seq, n))
		}
	}
	if len(short) > 0 {
		b.logf("%s: events pushed to fewer clients than connected (seq:clients): %s", name, strings.Join(short, " "))
	}
	b.logf("%s: %d events in %s (%.1f/s), %d pushes to %d clients", name, nEvents, produced.Round(time.Millisecond),
		float64(nEvents)/produced.Seconds(), len(s), len(conns))
}

// benchHubIdle: the hub's resident memory with many connected clients that subscribed to every
// job and then stay idle: hub_idle_rss_mib once settled, and the high-water mark of the whole
// connect phase (snapshots included).
func (b *bench) benchHubIdle(ctx context.Context) {
	const name = "hub_idle"
	pid, err := b.hubPID()
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	st, _ := readStatus(pid)
	base := st["VmRSS"]
	mon := startRSS(pid, 100*time.Millisecond)
	var readers sync.WaitGroup
	serve := func(c *wsConn) {
		for {
			if _, err := c.read(); err != nil {
				return
			}
		}
	}
	t0 := time.Now()
	conns, err := b.connectClients(ctx, b.cfg.hubIdleClients, &readers, serve)
	b.logf("%s: %d clients connected and subscribed in %s", name, len(conns), time.Since(t0).Round(time.Millisecond))
	if err != nil {
		b.logf("%s: %v", name, err)
	}
	if len(conns) == 0 {
		mon.Stop()
		b.fail(name, "no client could connect")
		return
	}
	// Settled: the snapshots are out and the garbage collector had time to run.
	time.Sleep(b.cfg.hubSettle)
	st, _ = readStatus(pid)
	settled := st["VmRSS"]
	res := mon.Stop()
	b.emit(name+"_clients", float64(len(conns)), "clients", 0)
	b.emit(name+"_rss_mib", kib(settled), "MiB", 1)
	b.emit(name+"_peak_rss_mib", res.peakMiB(), "MiB", 1)
	b.emit(name+"_kib_per_client", float64(settled-base)/float64(len(conns)), "KiB", 1)
	b.logf("%s: hub RSS before %.1f MiB, settled %.1f MiB; %s", name, kib(base), kib(settled), res)
	closeClients(conns)
	readers.Wait()
}

// hubPID is the hub process the figures are about.
func (b *bench) hubPID() (int, error) {
	if b.cfg.hubPID > 0 {
		return b.cfg.hubPID, nil
	}
	return b.servicePID("progress-hub")
}

// procCPU is the user+system CPU time a process used so far (0 when unknown).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(raw[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// spawnHubs starts n more hub replicas of the stack's binary on 127.0.0.1:18181.., adds them to
// the addresses clients are spread over, and returns once each answers /readyz; stop ends them.
func (b *bench) spawnHubs(ctx context.Context, n int) (stop func(), err error) {
	stop, addrs, err := b.spawn(ctx, "progress-hub", n, 18181, func(_ int, addr string) []string {
		return []string{"HUB_ADDR=" + addr, "LOG_LEVEL=warn"}
	})
	if err != nil {
		return nil, err
	}
	b.cfg.hubReplicas = append(b.cfg.hubReplicas, addrs...)
	for _, addr := range addrs {
		b.logf("hub_latency: started a hub replica on %s", addr)
	}
	return stop, nil
}

// spawn starts n processes of a stack service (.stack/bin/NAME) on 127.0.0.1:port, port+1…,
// each with the stack's settings and env(i, addr), and returns once each answers /readyz;
// stop ends them (SIGTERM).
func (b *bench) spawn(ctx context.Context, name string, n, port int, env func(i int, addr string) []string) (stop func(), addrs []string, err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	}
	for i := range n {
		addr := fmt.Sprintf("127.0.0.1:%d", port+i)
		cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.stackDir, "bin", name))
		cmd.Env = append(os.Environ(), env(i, addr)...)
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("starting %s on %s: %w", name, addr, err)
		}
		cmds = append(cmds, cmd)
		if !waitReady(addr, 30*time.Second) {
			stop()
			return nil, nil, fmt.Errorf("%s on %s not ready", name, addr)
		}
		addrs = append(addrs, addr)
	}
	return stop, addrs, nil
}

// waitReady polls addr's /readyz until it answers 200, or timeout passes.
func waitReady(addr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
