package inbox

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStatus follows the watcher's view of its server: connected and
// waiting while it idles (so the inbox counts as reached now), busy while
// a message is in hand, and not connected, with the error, once the server
// is gone for good.
func TestStatus(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	inHand := make(chan struct{})
	release := make(chan struct{})
	h := newTestHandler(t, func(context.Context, Message) Disposition {
		close(inHand)
		<-release
		return Disposition{Action: Handled}
	})
	before := time.Now()
	r := start(t, ts.config(newLogBuffer(t)), h, true)
	ts.waitIdling(t)

	eventually(t, "connected and waiting in IDLE", func() bool {
		st := r.w.Status()
		return st.Connected && st.Waiting
	})
	st := r.w.Status()
	if st.LastSweep.Before(before) || st.LastAnswer.Before(before) || st.LastError != "" {
		t.Errorf("status after the first sweep = %+v", st)
	}
	now := time.Now().Add(time.Hour)
	if got := st.Reached(now); !got.Equal(now) {
		t.Errorf("Reached while waiting in IDLE = %v, want now (%v)", got, now)
	}

	// A message in hand: connected, not waiting, reached when the server
	// last answered (the FETCH).
	ts.appendMsg(t, "INBOX", testMessage(1))
	recv(t, inHand, "the message in the handler")
	st = r.w.Status()
	if !st.Connected || st.Waiting {
		t.Errorf("status with a message in hand = %+v, want connected, not waiting", st)
	}
	if got := st.Reached(now); !got.Equal(st.LastAnswer) {
		t.Errorf("Reached with a message in hand = %v, want the last answer %v", got, st.LastAnswer)
	}
	close(release)
	eventually(t, "waiting again after the message", func() bool { return r.w.Status().Waiting })

	// The server goes away for good: no listener, the connection cut.
	ts.proxy.ln.Close()
	ts.proxy.dropAll()
	eventually(t, "disconnected, with the error", func() bool {
		st := r.w.Status()
		return !st.Connected && !st.Waiting && st.LastError != ""
	})
	st = r.w.Status()
	if got := st.Reached(now); !got.Equal(st.LastAnswer) || !got.Before(time.Now().Add(time.Second)) {
		t.Errorf("Reached after the loss = %v, want the last answer %v", got, st.LastAnswer)
	}
	t.Logf("LastError: %s", st.LastError)
	if !strings.Contains(st.LastError, "closed") && !strings.Contains(st.LastError, "EOF") &&
		!strings.Contains(st.LastError, "refused") && !strings.Contains(st.LastError, "reset") {
		t.Errorf("LastError = %q, want the connection's end", st.LastError)
	}
}
