package ws

import "sync"

// outbox is one client's queue of encoded messages, from the hub goroutine to the network, and
// the owner of the connection's writer goroutine, which runs only while there is something to
// write. Two choices keep an idle connection small, which matters with 10,000 of them:
//   - a slice guarded by a mutex rather than a buffered channel, which would hold limit slots
//     (6 KiB for 256) per connection even while idle;
//   - no writer goroutine parked per connection (its stack, grown by the writes, is kept):
//     push starts one when the queue was idle, and it ends once the queue is empty.
//
// The messages are the hub's shared encodings: queueing one copies a slice header, never the
// bytes. A nil message is a ping.
type outbox struct {
	limit int    // queued messages beyond which the client is too slow
	run   func() // writes until next reports nothing more; started by push and close

	mu        sync.Mutex
	queue     [][]byte
	writing   bool // a writer goroutine is running
	broken    bool // a write failed: nothing more is written
	closed    bool
	closeCode int
	closeText string
	finished  bool
	done      chan struct{} // closed once the close frame is written, or the connection broke after close
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit, run: func() {}, done: make(chan struct{})}
}

// push queues msg; false when limit messages are already waiting (the client is dropped) or
// the outbox is closed.
func (o *outbox) push(msg []byte) bool {
	o.mu.Lock()
	if o.closed || len(o.queue) >= o.limit {
		o.mu.Unlock()
		return false
	}
	o.queue = append(o.queue, msg)
	start := o.startLocked()
	o.mu.Unlock()
	if start {
		go o.run()
	}
	return true
}

// setLimit changes how many queued messages make the client too slow.
func (o *outbox) setLimit(n int) {
	o.mu.Lock()
	o.limit = n
	o.mu.Unlock()
}

// ping queues a ping, whatever the limit: a client too slow for it is dropped by the next push.
func (o *outbox) ping() {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.queue = append(o.queue, nil)
	start := o.startLocked()
	o.mu.Unlock()
	if start {
		go o.run()
	}
}

// close ends the outbox: the queued messages are written, then a close frame with code and
// text. Closing twice keeps the first code.
func (o *outbox) close(code int, text string) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.closed, o.closeCode, o.closeText = true, code, text
	start := o.startLocked()
	fin := o.broken && o.finishLocked()
	o.mu.Unlock()
	if start {
		go o.run()
	}
	if fin {
		close(o.done)
	}
}

func (o *outbox) startLocked() bool {
	if o.writing || o.broken {
		return false
	}
	o.writing = true
	return true
}

func (o *outbox) finishLocked() bool {
	if o.finished {
		return false
	}
	o.finished = true
	return true
}

// next hands the writer everything queued and whether the outbox is closed; more is false
// when there is nothing left, and the writer must then return (the next push starts another).
// spare (the batch the writer finished) becomes the next queue, so a busy client reuses one
// slice and an idle one holds at most a small one.
func (o *outbox) next(spare [][]byte) (batch [][]byte, closed, more bool) {
	clear(spare)
	if cap(spare) > 64 {
		spare = nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 && !o.closed {
		o.writing = false
		return nil, false, false
	}
	batch, o.queue = o.queue, spare[:0]
	return batch, o.closed, true
}

// closeFrame is the code and text of the close frame, once closed.
func (o *outbox) closeFrame() (int, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closeCode, o.closeText
}

// finish records that the close frame was written.
func (o *outbox) finish() {
	o.mu.Lock()
	fin := o.finishLocked()
	o.writing = false
	o.mu.Unlock()
	if fin {
		close(o.done)
	}
}

// fail records a failed write: nothing more is written; done closes once the hub closed it.
func (o *outbox) fail() {
	o.mu.Lock()
	o.broken, o.writing = true, false
	fin := o.closed && o.finishLocked()
	o.mu.Unlock()
	if fin {
		close(o.done)
	}
}
