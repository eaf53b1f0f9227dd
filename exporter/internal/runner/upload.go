package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

// upload is one file streamed into object storage through a pipe, watched for stalls: when
// storage takes no bytes for UploadStall while the writer has some to give (or does not finish
// the upload that long after the last byte), the upload is cancelled with ErrUploadStalled.
// Without it a storage server that stops reading would hold the job, and its renewed lease,
// for ever.
type upload struct {
	pr     *io.PipeReader
	pw     *io.PipeWriter
	result chan putResult
	cancel context.CancelCauseFunc
	// stalled is closed with stallErr set once the watch gave up on storage: the attempt then
	// ends at once, without waiting for the storage client to notice (its own clean-up, an
	// abort sent to the same stalled server, may take a minute).
	stalled  chan struct{}
	stallErr error
	// since is when the writer began waiting on storage (a Write in progress, or the end of
	// the file), in unix nanoseconds; 0 while the writer is producing.
	since atomic.Int64
	stop  chan struct{}
}

type putResult struct {
	info objectstore.Info
	err  error
}

func (r *Runner) upload(ctx context.Context, key, contentType string) *upload {
	pr, pw := io.Pipe()
	uctx, cancel := context.WithCancelCause(ctx)
	u := &upload{pr: pr, pw: pw, result: make(chan putResult, 1), cancel: cancel, stop: make(chan struct{}), stalled: make(chan struct{})}
	go func() {
		info, err := r.objects.Put(uctx, key, pr, contentType)
		if cause := context.Cause(uctx); err != nil && errors.Is(cause, ErrUploadStalled) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		pr.CloseWithError(err) // unblock the writer if the upload gave up
		u.result <- putResult{info, err}
	}()
	go u.watch(r.cfg.UploadStall)
	return u
}

func (u *upload) watch(stall time.Duration) {
	t := time.NewTicker(min(stall/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case now := <-t.C:
			if since := u.since.Load(); since != 0 && now.Sub(time.Unix(0, since)) > stall {
				u.stallErr = fmt.Errorf("%w for %s", ErrUploadStalled, stall)
				close(u.stalled)
				u.pr.CloseWithError(u.stallErr) // a Write blocked on the pipe returns
				u.cancel(u.stallErr)
				return
			}
		}
	}
}

func (u *upload) Write(p []byte) (int, error) {
	u.since.Store(time.Now().UnixNano())
	n, err := u.pw.Write(p)
	u.since.Store(0)
	return n, err
}

// abort ends a failed write: it returns the upload's own error when the upload failed first
// (the writer only saw its pipe close), nil otherwise.
func (u *upload) abort(cause error) error {
	u.pw.CloseWithError(cause)
	res := u.wait()
	if res.err != nil && (errors.Is(cause, res.err) || errors.Is(res.err, ErrUploadStalled)) {
		return res.err
	}
	return nil
}

// wait returns the upload's result, or the stall as its error as soon as the watch gave up.
func (u *upload) wait() putResult {
	var res putResult
	select {
	case res = <-u.result:
	case <-u.stalled:
		res = putResult{err: u.stallErr}
	}
	select {
	case <-u.stalled:
	default:
		close(u.stop)
	}
	u.cancel(nil)
	return res
}

// finish closes the file and waits for the upload to complete (or stall).
func (u *upload) finish() (objectstore.Info, error) {
	u.since.Store(time.Now().UnixNano())
	u.pw.Close()
	res := u.wait()
	return res.info, res.err
}
