package inbox

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// The ways mail gets back on track: a quarantined message moved back by a
// person, a message flagged but not moved, handled mail expunged without
// UIDPLUS.

// TestQuarantineIsUndoneByMovingBack: a quarantined message carries none of
// the bot's keywords, so a person who moves it back into the inbox (once
// the cause is fixed) has it handled, with MOVE and with the COPY fallback.
func TestQuarantineIsUndoneByMovingBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps imap.CapSet
	}{
		{"MOVE", capsModern},
		{"COPY and UID EXPUNGE", capsNoMove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, serverOptions{caps: tc.caps})
			uid := ts.appendMsg(t, "INBOX", testMessage(1))
			var fixed atomic.Bool
			h := newTestHandler(t, func(context.Context, Message) Disposition {
				if !fixed.Load() {
					return Disposition{Action: Quarantine, Mailbox: "Quarantine", Reason: "failed 3 times"}
				}
				return Disposition{Action: Handled}
			})
			r := start(t, ts.config(newLogBuffer(t)), h, false)
			wantCall(t, h, ts, uid, testMessage(1))
			var q map[imap.UID][]imap.Flag
			eventually(t, "the message in Quarantine, none left in INBOX", func() bool {
				q = ts.messages(t, "Quarantine")
				return len(q) == 1 && len(ts.messages(t, "INBOX")) == 0
			})
			if flags := slices.Collect(maps.Values(q))[0]; hasAnyFlag(flags, flagHandled, flagRejected, imap.FlagSeen, imap.FlagDeleted) {
				t.Fatalf("the quarantined message carries %v", flags)
			}

			// The cause is fixed; a person moves it back.
			fixed.Store(true)
			ts.mu.Lock()
			c := ts.client(t)
			if _, err := c.Select("Quarantine", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			_, err := c.Move(imap.UIDSetNum(slices.Collect(maps.Keys(q))...), "INBOX").Wait()
			ts.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			r.w.Poke()
			m := recv(t, h.calls, "Handle of the message moved back")
			if string(m.Raw) != string(testMessage(1)) {
				t.Fatalf("handed %q", m.Raw)
			}
			eventually(t, "the message handled into Processed", func() bool {
				return len(ts.messages(t, "Processed")) == 1 && len(ts.messages(t, "Quarantine")) == 0
			})
		})
	}
}

// TestFlaggedButNotMovedIsMovedOnTheNextConnection: a message carrying the
// handled keyword in the inbox (the process died between flag and move) is
// handed again when the watcher connects, and goes where it was going.
func TestFlaggedButNotMovedIsMovedOnTheNextConnection(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	left := ts.appendMsg(t, "INBOX", testMessage(1), flagHandled, imap.FlagSeen)
	aside := ts.appendMsg(t, "INBOX", testMessage(2), flagHandled, flagRejected, imap.FlagSeen)
	fresh := ts.appendMsg(t, "INBOX", testMessage(3))
	h := newTestHandler(t, func(_ context.Context, m Message) Disposition {
		if imap.UID(m.UID) == aside {
			return Disposition{Action: SetAside, Mailbox: "Rejected"}
		}
		return Disposition{Action: Handled}
	})
	logs := newLogBuffer(t)
	start(t, ts.config(logs), h, true)
	wantCall(t, h, ts, left, testMessage(1))
	wantCall(t, h, ts, aside, testMessage(2))
	wantCall(t, h, ts, fresh, testMessage(3))
	eventually(t, "all moved out of INBOX", func() bool {
		return len(ts.messages(t, "INBOX")) == 0 && len(ts.messages(t, "Processed")) == 2 && len(ts.messages(t, "Rejected")) == 1
	})
	if !strings.Contains(logs.String(), "flagged handled but still in the mailbox") {
		t.Error("the leftovers were not logged")
	}
}

// TestFlaggedMailStaysWhereHandledMailStays: without a processed mailbox
// handled mail stays in the inbox, flagged; it is not handed again.
func TestFlaggedMailStaysWhereHandledMailStays(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	ts.appendMsg(t, "INBOX", testMessage(1), flagHandled, imap.FlagSeen)
	fresh := ts.appendMsg(t, "INBOX", testMessage(2))
	h := newTestHandler(t, nil)
	cfg := ts.config(newLogBuffer(t))
	cfg.ProcessedMailbox = ""
	start(t, cfg, h, true)
	// The first call is the unflagged message: the flagged one was skipped.
	wantCall(t, h, ts, fresh, testMessage(2))
}

// TestMoveFallbackWithoutUIDPlusExpungesWhenSafe: without MOVE and UIDPLUS,
// a plain EXPUNGE is sent when every message flagged \Deleted is one the
// bot copied, so handled mail does not pile up in the inbox.
func TestMoveFallbackWithoutUIDPlusExpungesWhenSafe(t *testing.T) {
	ts := newTestServer(t, serverOptions{caps: capsRFC3501})
	u1 := ts.appendMsg(t, "INBOX", testMessage(1))
	u2 := ts.appendMsg(t, "INBOX", testMessage(2))
	h := newTestHandler(t, func(_ context.Context, m Message) Disposition {
		if imap.UID(m.UID) == u2 {
			return Disposition{Action: Quarantine, Mailbox: "Quarantine"}
		}
		return Disposition{Action: Handled}
	})
	start(t, ts.config(newLogBuffer(t)), h, false)
	wantCall(t, h, ts, u1, testMessage(1))
	wantCall(t, h, ts, u2, testMessage(2))
	eventually(t, "copied out and expunged from INBOX", func() bool {
		return len(ts.messages(t, "INBOX")) == 0 && len(ts.messages(t, "Processed")) == 1 && len(ts.messages(t, "Quarantine")) == 1
	})
	if !ts.proxy.sent(`EXPUNGE$`) {
		t.Error("no EXPUNGE sent")
	}
	for _, flags := range ts.messages(t, "Quarantine") {
		if hasAnyFlag(flags, flagHandled, imap.FlagDeleted) {
			t.Errorf("the quarantined copy carries %v", flags)
		}
	}
}
