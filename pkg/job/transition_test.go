package job_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
)

var (
	t0  = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ttl = 15 * time.Second
	obj = events.Object{Bucket: "exports", Key: "products/j/1/a.csv", SizeBytes: 10, SHA256: "ab", ContentType: "text/csv", FileName: "a.csv"}
)

func queued() job.Job {
	j, _ := job.New(events.ExportRequested{JobID: "0193a1b2-0000-7000-8000-000000000001", Entity: "products",
		Format: "csv", RequestedBy: "alice", RequestedAt: t0})
	return j
}

// must applies commands that are expected to succeed.
func must(t *testing.T, j job.Job, cmds ...job.Command) job.Job {
	t.Helper()
	for _, c := range cmds {
		var err error
		if j, _, err = job.Apply(j, c); err != nil {
			t.Fatalf("%s: %v", job.Name(c), err)
		}
	}
	return j
}

func claim(owner string, at time.Time) job.Claim {
	return job.Claim{Owner: owner, TTL: ttl, MaxAttempts: 3, At: at}
}

// states are the fixtures: every status, a live and a lapsed lease, deleted jobs, a job out of
// attempts.
func states(t *testing.T) map[string]job.Job {
	q := queued()
	running := must(t, q, claim("w1", t0))
	writing := must(t, running, job.Start{Owner: "w1", Attempt: 1, RowsTotal: 100, At: t0.Add(time.Second)})
	completed := must(t, writing, job.Complete{Owner: "w1", Attempt: 1, Rows: 100, Object: obj, StartedAt: t0, ExpiresAt: t0.Add(time.Hour), At: t0.Add(2 * time.Second)})
	cause := &job.Error{Code: "export_failed", Message: "the export failed while storing the file"}
	outOfAttempts := q
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		outOfAttempts = must(t, outOfAttempts, claim("w1", at), job.Release{Owner: "w1", Attempt: i, Cause: cause, At: at})
	}
	return map[string]job.Job{
		"queued":          q,
		"running":         running,
		"writing":         writing,
		"lapsed":          writing, // the same job, looked at after its lease ran out (see at)
		"released":        must(t, writing, job.Release{Owner: "w1", Attempt: 1, At: t0.Add(3 * time.Second)}),
		"completed":       completed,
		"expired":         must(t, completed, job.RemoveFile{At: t0.Add(2 * time.Hour)}),
		"failed":          must(t, writing, job.Fail{Owner: "w1", Attempt: 1, Error: job.Error{Code: "export_failed", Message: "x"}, At: t0.Add(3 * time.Second)}),
		"cancelled":       must(t, writing, job.Cancel{By: "bob", At: t0.Add(3 * time.Second)}),
		"deleted":         must(t, q, job.Delete{By: "bob", At: t0.Add(time.Second)}),
		"deleted-done":    must(t, completed, job.Delete{By: "bob", At: t0.Add(3 * time.Second)}),
		"out-of-attempts": outOfAttempts,
	}
}

// at is when a command is sent to a fixture: within the lease, or after it for "lapsed".
func at(state string) time.Time {
	if state == "lapsed" {
		return t0.Add(time.Hour)
	}
	return t0.Add(10 * time.Second)
}

func commands(now time.Time) map[string]job.Command {
	return map[string]job.Command{
		"claim":         claim("w2", now),
		"renew":         job.Renew{Owner: "w1", Attempt: 1, TTL: ttl, At: now},
		"renew-other":   job.Renew{Owner: "w2", Attempt: 1, TTL: ttl, At: now},
		"start":         job.Start{Owner: "w1", Attempt: 1, RowsTotal: 100, At: now},
		"report":        job.Report{Owner: "w1", Attempt: 1, RowsDone: 50, BytesWritten: 5, Phase: events.PhaseWriting, At: now},
		"complete":      job.Complete{Owner: "w1", Attempt: 1, Rows: 100, Object: obj, StartedAt: t0, ExpiresAt: now.Add(time.Hour), At: now},
		"fail":          job.Fail{Owner: "w1", Attempt: 1, Error: job.Error{Code: "export_failed", Message: "boom"}, At: now},
		"release":       job.Release{Owner: "w1", Attempt: 1, At: now},
		"release-error": job.Release{Owner: "w1", Attempt: 1, Cause: &job.Error{Code: "export_failed", Message: "s3 down"}, At: now},
		"cancel":        job.Cancel{By: "bob", Reason: "cancelled on request", At: now},
		"delete":        job.Delete{By: "bob", At: now},
		"remove-file":   job.RemoveFile{At: now},
	}
}

// TestEveryTransition runs every command on every state. want is the outcome: the error, or
// the status reached and the events announced ("running" with none, "cancelled+cancelled").
func TestEveryTransition(t *testing.T) {
	t.Parallel()
	var (
		lost       = "err:" + job.ErrLeaseLost.Error()
		finished   = "err:" + job.ErrFinished.Error()
		notFound   = "err:" + job.ErrNotFound.Error()
		notClaim   = "err:" + job.ErrNotClaimable.Error()
		stale      = "err:" + job.ErrStale.Error()
		invalid    = "err:" + job.ErrInvalid.Error()
		terminalNo = map[string]string{ // what a terminal job answers, but for delete and remove-file
			"claim": notClaim, "renew": lost, "renew-other": lost, "start": finished, "report": finished,
			"complete": finished, "fail": finished, "release": finished, "release-error": finished, "cancel": finished,
		}
	)
	want := map[string]map[string]string{
		"queued": {
			"claim": "running", "renew": lost, "renew-other": lost, "start": lost, "report": lost, "complete": lost,
			"fail": lost, "release": lost, "release-error": lost, "cancel": "cancelled+cancelled",
			"delete": "cancelled+cancelled", "remove-file": stale,
		},
		"running": {
			"claim": notClaim, "renew": "running", "renew-other": lost, "start": "running+started", "report": invalid,
			"complete": "completed+completed", "fail": "failed+failed", "release": "queued", "release-error": "queued",
			"cancel": "cancelled+cancelled", "delete": "cancelled+cancelled", "remove-file": stale,
		},
		"writing": {
			"claim": notClaim, "renew": "running", "renew-other": lost, "start": "running+started", "report": "running+progress",
			"complete": "completed+completed", "fail": "failed+failed", "release": "queued", "release-error": "queued",
			"cancel": "cancelled+cancelled", "delete": "cancelled+cancelled", "remove-file": stale,
		},
		"lapsed": {
			// Nobody claimed it yet: the holder may still go on; a rescuer may take it.
			"claim": "running", "renew": "running", "renew-other": lost, "start": "running+started", "report": "running+progress",
			"complete": "completed+completed", "fail": "failed+failed", "release": "queued", "release-error": "queued",
			"cancel": "cancelled+cancelled", "delete": "cancelled+cancelled", "remove-file": stale,
		},
		"released": {
			"claim": "running", "renew": lost, "renew-other": lost, "start": lost, "report": lost, "complete": lost,
			"fail": lost, "release": lost, "release-error": lost, "cancel": "cancelled+cancelled",
			"delete": "cancelled+cancelled", "remove-file": stale,
		},
		"completed":       with(terminalNo, "delete", "completed", "remove-file", "completed"),
		"expired":         with(terminalNo, "delete", "expired", "remove-file", stale),
		"failed":          with(terminalNo, "delete", "failed", "remove-file", stale),
		"cancelled":       with(terminalNo, "delete", "cancelled", "remove-file", stale),
		"deleted":         with(terminalNo, "delete", notFound, "remove-file", stale, "cancel", notFound),
		"deleted-done":    with(terminalNo, "delete", notFound, "remove-file", "completed", "cancel", notFound),
		"out-of-attempts": {},
	}
	// A job whose three attempts failed fails at the next claim, with the real error.
	for name := range commands(t0) {
		want["out-of-attempts"][name] = want["released"][name]
	}
	want["out-of-attempts"]["claim"] = "failed+failed"

	fixtures := states(t)
	for state, j := range fixtures {
		for name, c := range commands(at(state)) {
			t.Run(state+"/"+name, func(t *testing.T) {
				w, ok := want[state][name]
				if !ok {
					t.Fatalf("no expectation for %s on %s", name, state)
				}
				next, evs, err := job.Apply(j, c)
				got := outcome(next, evs, err)
				if got != w {
					t.Fatalf("got %s, want %s", got, w)
				}
				if err != nil {
					if next.Version != j.Version {
						t.Errorf("a refusal changed the version %d → %d", j.Version, next.Version)
					}
					return
				}
				if next.Version != j.Version+1 {
					t.Errorf("version %d → %d, want +1", j.Version, next.Version)
				}
				for _, ev := range evs {
					checkEvent(t, next, ev)
				}
			})
		}
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func outcome(j job.Job, evs []events.Event, err error) string {
	if err != nil {
		for _, e := range []error{job.ErrLeaseLost, job.ErrFinished, job.ErrNotFound, job.ErrNotClaimable, job.ErrStale, job.ErrInvalid} {
			if errors.Is(err, e) {
				return "err:" + e.Error()
			}
		}
		return "err:" + err.Error()
	}
	s := string(j.Status)
	for _, ev := range evs {
		s += "+" + strings.TrimSuffix(strings.TrimPrefix(string(ev.EventType()), "com.productsmanager.export."), ".v1")
	}
	return s
}

// checkEvent: every event names the job and carries its new state.
func checkEvent(t *testing.T, j job.Job, ev events.Event) {
	t.Helper()
	if ev.Key() != j.ID {
		t.Errorf("%s keyed %q, want %q", ev.EventType(), ev.Key(), j.ID)
	}
	st := events.StateOf(ev)
	if st == nil || st.Version != j.Version || st.Status != string(j.Status) || !st.UpdatedAt.Equal(j.UpdatedAt) {
		t.Errorf("%s carries state %+v, want the job's (version %d, %s)", ev.EventType(), st, j.Version, j.Status)
	}
}

func TestProgressOnlyGrowsWithinAnAttempt(t *testing.T) {
	t.Parallel()
	j := must(t, queued(), claim("w1", t0), job.Start{Owner: "w1", Attempt: 1, RowsTotal: 200, At: t0})
	rep := func(rows int64, phase string) job.Report {
		return job.Report{Owner: "w1", Attempt: 1, RowsDone: rows, BytesWritten: rows * 10, Phase: phase, At: t0.Add(time.Duration(rows) * time.Millisecond)}
	}
	j = must(t, j, rep(100, events.PhaseWriting))
	if j.Progress != 50 || j.RowsDone != 100 {
		t.Fatalf("after 100 of 200 rows: progress %v rows %d", j.Progress, j.RowsDone)
	}
	for _, c := range []job.Report{rep(100, events.PhaseWriting), rep(99, events.PhaseWriting)} {
		if _, _, err := job.Apply(j, c); !errors.Is(err, job.ErrStale) {
			t.Errorf("report of %d rows after 100: %v, want ErrStale", c.RowsDone, err)
		}
	}
	j = must(t, j, rep(200, events.PhaseWriting), rep(200, events.PhaseUploading))
	if j.Progress != 99.9 || j.Phase != events.PhaseUploading {
		t.Fatalf("every row written, uploading: progress %v phase %s; want 99.9 until stored", j.Progress, j.Phase)
	}
	if _, _, err := job.Apply(j, rep(200, events.PhaseUploading)); !errors.Is(err, job.ErrStale) {
		t.Errorf("a repeated uploading report: %v, want ErrStale", err)
	}
	// A new attempt restarts the progress.
	j = must(t, j, job.Release{Owner: "w1", Attempt: 1, At: t0.Add(time.Second)}, claim("w2", t0.Add(2*time.Second)))
	if j.RowsDone != 0 || j.Progress != 0 || j.Attempt != 2 {
		t.Fatalf("second attempt starts at rows %d progress %v attempt %d", j.RowsDone, j.Progress, j.Attempt)
	}
	// The first worker's late report is refused.
	if _, _, err := job.Apply(j, rep(200, events.PhaseWriting)); !errors.Is(err, job.ErrLeaseLost) {
		t.Errorf("old attempt's report: %v, want ErrLeaseLost", err)
	}
}

func TestHandOverIsNotCharged(t *testing.T) {
	t.Parallel()
	j := queued()
	// Ten shutdowns in a row cost nothing: the job still runs after them.
	for i := 1; i <= 10; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		j = must(t, j, claim(fmt.Sprintf("w%d", i), at), job.Release{Owner: fmt.Sprintf("w%d", i), Attempt: i, At: at})
	}
	j = must(t, j, claim("w11", t0.Add(time.Minute)))
	if j.Status != job.StatusRunning || j.Attempt != 11 || j.Charged != 1 {
		t.Fatalf("after 10 hand-overs: status %s attempt %d charged %d; want running, 11, 1", j.Status, j.Attempt, j.Charged)
	}
}

func TestGivingUpKeepsTheRealError(t *testing.T) {
	t.Parallel()
	j := queued()
	cause := &job.Error{Code: "export_failed", Message: "the export failed while storing the file in object storage (attempt 2)"}
	// Attempt 1: the worker vanished (its lease lapsed, a rescuer claims). Attempt 2 failed
	// with a real error. Attempt 3 vanished too.
	j = must(t, j, claim("w1", t0))
	j = must(t, j, claim("w2", t0.Add(time.Minute)), job.Release{Owner: "w2", Attempt: 2, Cause: cause, At: t0.Add(61 * time.Second)})
	j = must(t, j, claim("w3", t0.Add(2*time.Minute)))
	next, evs, err := job.Apply(j, claim("w4", t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if next.Status != job.StatusFailed || len(evs) != 1 {
		t.Fatalf("a fourth claim over 3 charged attempts: %s with %d events, want failed with ExportFailed", next.Status, len(evs))
	}
	if !strings.Contains(next.Error.Message, "storing the file in object storage") {
		t.Errorf("failed with %q, want the last real error", next.Error.Message)
	}
	// With no error recorded, the message says the workers stopped.
	k := queued()
	for i := range 3 {
		k = must(t, k, claim("w", t0.Add(time.Duration(i)*time.Hour)))
	}
	k, _, _ = job.Apply(k, claim("w", t0.Add(5*time.Hour)))
	if k.Status != job.StatusFailed || !strings.Contains(k.Error.Message, "workers stopped") {
		t.Errorf("three vanished workers: %s %+v", k.Status, k.Error)
	}
}

func TestCompletionAnnouncesOneObject(t *testing.T) {
	t.Parallel()
	j := must(t, queued(), claim("w1", t0), job.Start{Owner: "w1", Attempt: 1, RowsTotal: 3, At: t0})
	done, evs, err := job.Apply(j, job.Complete{Owner: "w1", Attempt: 1, Rows: 3, Object: obj, StartedAt: t0, ExpiresAt: t0.Add(time.Hour), At: t0.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := evs[0].(events.ExportCompleted)
	if !ok || c.Object != obj || done.File == nil || *done.File != obj || done.Progress != 100 || done.LeaseOwner != nil {
		t.Fatalf("completion: %+v / %+v", evs, done)
	}
	// Nothing can complete it again nor cancel it: one job, one announced object.
	if _, _, err := job.Apply(done, job.Complete{Owner: "w1", Attempt: 1, Rows: 3, Object: obj, At: t0}); !errors.Is(err, job.ErrFinished) {
		t.Errorf("second completion: %v", err)
	}
	if _, _, err := job.Apply(done, claim("w2", t0.Add(time.Hour))); !errors.Is(err, job.ErrNotClaimable) {
		t.Errorf("claiming a completed job: %v", err)
	}
	// A cancel first: the worker's completion is refused, it must remove its file.
	cancelled := must(t, j, job.Cancel{By: "bob", At: t0})
	if _, _, err := job.Apply(cancelled, job.Complete{Owner: "w1", Attempt: 1, Rows: 3, Object: obj, At: t0}); !errors.Is(err, job.ErrFinished) {
		t.Errorf("completing a cancelled job: %v", err)
	}
}

func TestFileRemovalExpiresOnlyPastExpiry(t *testing.T) {
	t.Parallel()
	j := must(t, queued(), claim("w1", t0), job.Start{Owner: "w1", Attempt: 1, RowsTotal: 3, At: t0},
		job.Complete{Owner: "w1", Attempt: 1, Rows: 3, Object: obj, StartedAt: t0, ExpiresAt: t0.Add(time.Hour), At: t0})
	// Deleted before its expiry: the file goes, the status stays completed.
	early := must(t, j, job.Delete{By: "a", At: t0.Add(time.Minute)}, job.RemoveFile{At: t0.Add(time.Minute)})
	if early.Status != job.StatusCompleted || !early.FileRemoved {
		t.Errorf("deleted then removed: %s removed=%v", early.Status, early.FileRemoved)
	}
	late := must(t, j, job.RemoveFile{At: t0.Add(time.Hour)})
	if late.Status != job.StatusExpired {
		t.Errorf("removed at expiry: %s", late.Status)
	}
}

// TestDeleteEmitsItsAudit: a delete given its request's audit event emits it with the job's
// details, after the cancel it implies, so both commit with the delete.
func TestDeleteEmitsItsAudit(t *testing.T) {
	t.Parallel()
	j := queued()
	_, evs, err := job.Apply(j, job.Delete{By: "bob", At: t0, Audit: &events.Accessed{ID: "a-1", ActorID: "bob", ClientIP: "192.0.2.7", At: t0}})
	if err != nil || len(evs) != 2 {
		t.Fatalf("delete of a queued job: %v %v", evs, err)
	}
	a, ok := evs[1].(events.Accessed)
	if evs[0].EventType() != events.TypeCancelled || !ok || a.Action != events.ActionDeleted || a.ResourceID != j.ID ||
		a.Owner != j.RequestedBy || a.Entity != j.Entity || a.ActorID != "bob" || a.ClientIP != "192.0.2.7" || a.ID != "a-1" {
		t.Errorf("events %+v", evs)
	}
	if _, evs, _ := job.Apply(j, job.Delete{By: "bob", At: t0}); len(evs) != 1 {
		t.Errorf("a delete without an audit event emitted %v", evs)
	}
}

// TestDeliveryTransitions: a completed job of a delivering platform waits for its delivery;
// one worker at a time attempts it under a lease; a failed attempt comes back when its delay
// ends, a final one fails the delivery with one event; a success announces one
// ExportDelivered; the job stays completed throughout.
func TestDeliveryTransitions(t *testing.T) {
	t.Parallel()
	q := queued()
	q.Deliver = true
	done := must(t, q, claim("w1", t0), job.Complete{Owner: "w1", Attempt: 1, Rows: 3, Object: obj, StartedAt: t0, ExpiresAt: t0.Add(time.Hour), At: t0})
	if d := done.Delivery; d == nil || d.Status != job.DeliveryPending || !d.DueAt().Equal(t0) {
		t.Fatalf("completed job's delivery %+v", d)
	}
	if plain := must(t, queued(), claim("w1", t0), job.Complete{Owner: "w1", Attempt: 1, Rows: 3, Object: obj, StartedAt: t0, ExpiresAt: t0.Add(time.Hour), At: t0}); plain.Delivery != nil {
		t.Errorf("a job without a destination got a delivery %+v", plain.Delivery)
	}
	lease := time.Minute
	try := func(j job.Job, c job.Command) (job.Job, []events.Event, error) {
		t.Helper()
		return job.Apply(j, c)
	}
	d1, _, err := try(done, job.ClaimDelivery{Owner: "d1", TTL: lease, At: t0})
	if err != nil || d1.Delivery.Status != job.DeliveryDelivering || d1.Delivery.Attempts != 1 || d1.Status != job.StatusCompleted {
		t.Fatalf("claim: %+v %v", d1.Delivery, err)
	}
	if _, _, err := try(d1, job.ClaimDelivery{Owner: "d2", TTL: lease, At: t0.Add(time.Second)}); !errors.Is(err, job.ErrNotClaimable) {
		t.Errorf("a second worker claimed a held delivery: %v", err)
	}
	if _, _, err := try(d1, job.Delivered{Owner: "d2", Attempt: 1, Target: "x", At: t0}); !errors.Is(err, job.ErrLeaseLost) {
		t.Errorf("another worker's success: %v", err)
	}
	// A failed attempt with a retry: pending until its delay ends.
	boom := job.Error{Code: "delivery_failed", Message: "sftp 127.0.0.1:2222: connection refused"}
	p, evs, err := try(d1, job.DeliveryAttemptFailed{Owner: "d1", Attempt: 1, Target: "sftp://x", Error: boom, RetryAfter: time.Minute, At: t0.Add(time.Second)})
	if err != nil || len(evs) != 0 || p.Delivery.Status != job.DeliveryPending || !p.Delivery.DueAt().Equal(t0.Add(61*time.Second)) ||
		p.Delivery.LastError.Message != boom.Message {
		t.Fatalf("failed attempt: %+v %v %v", p.Delivery, evs, err)
	}
	if _, _, err := try(p, job.ClaimDelivery{Owner: "d2", TTL: lease, At: t0.Add(30 * time.Second)}); !errors.Is(err, job.ErrNotClaimable) {
		t.Errorf("claimed before its delay ended: %v", err)
	}
	d2, _, err := try(p, job.ClaimDelivery{Owner: "d2", TTL: lease, At: t0.Add(61 * time.Second)})
	if err != nil || d2.Delivery.Attempts != 2 {
		t.Fatalf("second claim: %+v %v", d2.Delivery, err)
	}
	// Its worker dies: once the lease ends another takes it, and the first one's word is void.
	d3, _, err := try(d2, job.ClaimDelivery{Owner: "d3", TTL: lease, At: t0.Add(122 * time.Second)})
	if err != nil || d3.Delivery.Attempts != 3 {
		t.Fatalf("claim after a lapsed lease: %+v %v", d3.Delivery, err)
	}
	if _, _, err := try(d3, job.Delivered{Owner: "d2", Attempt: 2, Target: "x", At: t0}); !errors.Is(err, job.ErrLeaseLost) {
		t.Errorf("a lapsed holder's success: %v", err)
	}
	ok, evs, err := try(d3, job.Delivered{Owner: "d3", Attempt: 3, Target: "sftp://partner@127.0.0.1:2222/upload/p.csv", At: t0.Add(130 * time.Second)})
	if err != nil || len(evs) != 1 || ok.Delivery.Status != job.DeliveryDelivered || ok.Delivery.DueAt() != nil || ok.Delivery.LastError != nil {
		t.Fatalf("delivered: %+v %v %v", ok.Delivery, evs, err)
	}
	if e, isDelivered := evs[0].(events.ExportDelivered); !isDelivered || e.Object.Key != obj.Key || e.Attempt != 3 || e.Key() != "delivery:"+ok.ID {
		t.Errorf("event %+v", evs[0])
	}
	if _, _, err := try(ok, job.ClaimDelivery{Owner: "d4", TTL: lease, At: t0.Add(time.Hour)}); !errors.Is(err, job.ErrNotClaimable) {
		t.Errorf("a delivered file claimed again: %v", err)
	}
	// A final failure: one event; a retry starts a new round; a retry of what did not fail is stale.
	f, evs, err := try(d3, job.DeliveryAttemptFailed{Owner: "d3", Attempt: 3, Error: boom, At: t0.Add(130 * time.Second)})
	if err != nil || len(evs) != 1 || f.Delivery.Status != job.DeliveryFailed || evs[0].EventType() != events.TypeDeliveryFailed {
		t.Fatalf("final failure: %+v %v %v", f.Delivery, evs, err)
	}
	r, _, err := try(f, job.RetryDelivery{By: "alice", At: t0.Add(time.Hour)})
	if err != nil || r.Delivery.Status != job.DeliveryPending || r.Delivery.Attempts != 0 || !r.Delivery.DueAt().Equal(t0.Add(time.Hour)) {
		t.Errorf("retry: %+v %v", r.Delivery, err)
	}
	if _, _, err := try(ok, job.RetryDelivery{By: "alice", At: t0}); !errors.Is(err, job.ErrStale) {
		t.Errorf("retry of a delivered file: %v", err)
	}
	// A deleted job, or one whose file is gone, is not delivered.
	del := must(t, done, job.Delete{By: "alice", At: t0})
	if _, _, err := try(del, job.ClaimDelivery{Owner: "d1", TTL: lease, At: t0}); !errors.Is(err, job.ErrNotClaimable) {
		t.Errorf("a deleted job's delivery claimed: %v", err)
	}
	if _, _, err := try(queued(), job.ClaimDelivery{Owner: "d1", TTL: lease, At: t0}); !errors.Is(err, job.ErrInvalid) {
		t.Errorf("a job without delivery: %v", err)
	}
}
