package ws

import (
	"sync"
	"testing"
)

// TestOutboxStartsOneWriterAtATime: push starts a writer only when none runs; the writer takes
// everything queued, ends once the queue is empty, and the next push starts another. The limit
// refuses a push (the hub then drops the client); close queues the close frame after the rest.
func TestOutboxStartsOneWriterAtATime(t *testing.T) {
	t.Parallel()
	o := newOutbox(3)
	var mu sync.Mutex
	starts := 0
	o.run = func() { mu.Lock(); starts++; mu.Unlock() } // a writer that does nothing by itself
	started := func() int { mu.Lock(); defer mu.Unlock(); return starts }
	waitStarts := func(want int) {
		t.Helper()
		eventually(t, "writers started", func() bool { return started() == want })
	}

	for _, m := range []string{"a", "b", "c"} {
		if !o.push([]byte(m)) {
			t.Fatalf("push %s refused", m)
		}
	}
	waitStarts(1) // one writer for three messages
	if o.push([]byte("d")) {
		t.Fatal("push beyond the limit accepted")
	}
	batch, closed, more := o.next(nil)
	if !more || closed || len(batch) != 3 || string(batch[0]) != "a" || string(batch[2]) != "c" {
		t.Fatalf("next = %q, closed %v, more %v", batch, closed, more)
	}
	if _, _, more := o.next(batch); more {
		t.Fatal("next with an empty queue says more")
	}
	o.ping()
	waitStarts(2) // the writer ended; a ping starts the next one
	if batch, _, _ := o.next(nil); len(batch) != 1 || batch[0] != nil {
		t.Fatalf("ping queued as %q", batch)
	}
	o.push([]byte("e"))
	waitStarts(2) // the writer is still running (next said more): no second writer
	o.close(1001, "bye")
	o.close(1000, "")
	if o.push([]byte("f")) {
		t.Fatal("push after close accepted")
	}
	batch, closed, more = o.next(nil)
	if !more || !closed || len(batch) != 1 || string(batch[0]) != "e" {
		t.Fatalf("after close: next = %q, closed %v, more %v", batch, closed, more)
	}
	if code, text := o.closeFrame(); code != 1001 || text != "bye" {
		t.Errorf("close frame %d %q, want the first close's", code, text)
	}
	select {
	case <-o.done:
		t.Fatal("done before the close frame was written")
	default:
	}
	o.finish()
	<-o.done
}

// TestOutboxFailedWriteEndsAfterClose: after a failed write nothing more is written, and done
// closes once the hub closed the outbox.
func TestOutboxFailedWriteEndsAfterClose(t *testing.T) {
	t.Parallel()
	o := newOutbox(8)
	o.push([]byte("a"))
	o.fail()
	o.push([]byte("b")) // queued, but no writer starts on a broken connection
	select {
	case <-o.done:
		t.Fatal("done before close")
	default:
	}
	o.close(1000, "")
	<-o.done
}
