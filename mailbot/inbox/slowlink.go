package inbox

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
)

// A slow link (a provider that throttles, a thin line) must never stop the
// inbox for good. The watchdog therefore bounds silence, not duration: a
// command may take as long as it needs while bytes keep arriving, and the
// connection is closed only when the server sends nothing for
// CommandTimeout. Fetches are sized by bytes, not by count: the sizes come
// first (RFC822.SIZE), a message larger than the budget is fetched on its
// own, and the budget halves after a fetch that ran into the watchdog, so
// that the next round asks for less.

// Bounds of the fetch budget, the bytes asked for in one UID FETCH.
const (
	maxFetchBytes = 4 << 20
	minFetchBytes = 64 << 10
)

// trackedConn records when bytes last arrived on a connection.
type trackedConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds of the last read that returned bytes
}

func track(c net.Conn) *trackedConn {
	t := &trackedConn{Conn: c}
	t.last.Store(time.Now().UnixNano())
	return t
}

func (t *trackedConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 {
		t.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// lastRead is when bytes last arrived.
func (t *trackedConn) lastRead() time.Time { return time.Unix(0, t.last.Load()) }

// silence runs f and closes the connection when the server sends nothing
// for timeout while f runs, or when ctx ends. It reports whether it closed
// the connection for silence, and how long f ran. Once f has returned the
// connection is never closed here, however late the watcher wakes up.
func silence(ctx context.Context, conn *trackedConn, timeout time.Duration, f func() error) (err error, silent bool, took time.Duration) {
	const (
		running int32 = iota
		finished
		closedSilent
		closedCtx
	)
	var state atomic.Int32
	stop := func(why int32) {
		if state.CompareAndSwap(running, why) {
			conn.Close()
		}
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(min(timeout/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				stop(closedCtx)
				return
			case now := <-tick.C:
				last := conn.lastRead()
				if last.Before(start) {
					last = start
				}
				if now.Sub(last) >= timeout {
					stop(closedSilent)
					return
				}
			}
		}
	}()
	err = f()
	state.CompareAndSwap(running, finished)
	close(done)
	switch state.Load() {
	case closedCtx:
		if err == nil {
			err = ctx.Err()
		}
	case closedSilent:
		silent = true
	}
	return err, silent, time.Since(start)
}

// sized is a message and its size, for planning fetches.
type sized struct {
	uid  imap.UID
	size int64
}

// fetchBatches splits messages in UID order into fetches of at most budget
// bytes and at most count messages each; a message larger than the budget
// is a fetch of its own.
func fetchBatches(msgs []sized, budget int64, count int) [][]imap.UID {
	var out [][]imap.UID
	var cur []imap.UID
	var bytes int64
	for _, m := range msgs {
		if len(cur) > 0 && (bytes+m.size > budget || len(cur) >= count) {
			out = append(out, cur)
			cur, bytes = nil, 0
		}
		cur = append(cur, m.uid)
		bytes += m.size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sizes asks for the sizes of the messages (UID FETCH … RFC822.SIZE, RFC
// 3501 §6.4.5), in UID order; a message the server does not answer for
// (expunged meanwhile) is left out.
func (s *session) sizes(ctx context.Context, uids []imap.UID) ([]sized, error) {
	var out []sized
	err := s.guard(ctx, "UID FETCH RFC822.SIZE", func() error {
		bufs, err := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
		for _, b := range bufs {
			if b.UID != 0 {
				out = append(out, sized{uid: b.UID, size: b.RFC822Size})
			}
		}
		return err
	})
	slices.SortFunc(out, func(a, b sized) int { return int(a.uid) - int(b.uid) })
	return out, err
}
