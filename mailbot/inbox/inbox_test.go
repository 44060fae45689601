package inbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

var (
	flagHandled  = imap.Flag(KeywordHandled)
	flagRejected = imap.Flag(KeywordRejected)
)

// hasFlags reports whether flags holds all of want (case-insensitively, as
// IMAP compares flags).
func hasFlags(flags []imap.Flag, want ...imap.Flag) bool {
	for _, w := range want {
		if !slices.ContainsFunc(flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), string(w)) }) {
			return false
		}
	}
	return true
}

func hasAnyFlag(flags []imap.Flag, any ...imap.Flag) bool {
	for _, a := range any {
		if hasFlags(flags, a) {
			return true
		}
	}
	return false
}

// wantCall receives the next Handle call and checks it is the message with
// that UID and body.
func wantCall(t *testing.T, h *testHandler, ts *testServer, uid imap.UID, raw []byte) Message {
	t.Helper()
	m := recv(t, h.calls, "Handle")
	if m.UID != uint32(uid) {
		t.Fatalf("Handle got UID %d, want %d", m.UID, uid)
	}
	if !bytes.Equal(m.Raw, raw) {
		t.Fatalf("UID %d: Raw = %q, want %q", uid, m.Raw, raw)
	}
	if m.Mailbox != "INBOX" {
		t.Fatalf("UID %d: Mailbox = %q", uid, m.Mailbox)
	}
	if want := ts.uidValidity(t, "INBOX"); m.UIDValidity != want {
		t.Fatalf("UID %d: UIDValidity = %d, want %d", uid, m.UIDValidity, want)
	}
	return m
}

func TestExistingMailHandedOnceInUIDOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps imap.CapSet
	}{
		{"IMAP4rev2", capsModern},
		{"IMAP4rev1+MOVE", capsMoveOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, serverOptions{caps: tc.caps})
			var uids []imap.UID
			for i := 1; i <= 5; i++ {
				uids = append(uids, ts.appendMsg(t, "INBOX", testMessage(i)))
			}
			h := newTestHandler(t, nil)
			logs := newLogBuffer(t)
			cfg := ts.config(logs)
			cfg.BatchSize = 2 // three UID FETCH batches
			start(t, cfg, h, false)

			for i, uid := range uids {
				wantCall(t, h, ts, uid, testMessage(i+1))
			}
			eventually(t, "all five moved to Processed, flagged", func() bool {
				done := ts.messages(t, "Processed")
				if len(ts.messages(t, "INBOX")) != 0 || len(done) != 5 {
					return false
				}
				for _, flags := range done {
					if !hasFlags(flags, flagHandled, imap.FlagSeen) || hasFlags(flags, flagRejected) {
						return false
					}
				}
				return true
			})
			if !ts.proxy.sent(`UID MOVE `) || ts.proxy.sent(`UID COPY `) {
				t.Error("want UID MOVE and no COPY on a server with MOVE")
			}

			// Once each: the next call is for new mail, not a repeat.
			ts.waitIdling(t)
			uid := ts.appendMsg(t, "INBOX", testMessage(6))
			wantCall(t, h, ts, uid, testMessage(6))
		})
	}
}

func TestNewMailWhileIdlingIsHandedPromptly(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	h := newTestHandler(t, nil)
	start(t, ts.config(newLogBuffer(t)), h, true) // PollInterval 1h: only IDLE can wake it

	var lat []time.Duration
	for i := 1; i <= 5; i++ {
		ts.waitIdling(t)
		t0 := time.Now()
		uid := ts.appendMsg(t, "INBOX", testMessage(i))
		m := recv(t, h.calls, "Handle of the appended message")
		lat = append(lat, time.Since(t0))
		if m.UID != uint32(uid) {
			t.Fatalf("Handle got UID %d, want %d", m.UID, uid)
		}
	}
	slices.Sort(lat)
	t.Logf("APPEND→Handle against imapmemserver (IDLE), 5 runs: min %v, median %v, max %v", lat[0], lat[2], lat[4])
}

// testClock is a clock the test moves on.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// count counts the command lines matching re (after the tag).
func count(lines []string, re string) int {
	rx := regexp.MustCompile(`^\S+ ` + re)
	n := 0
	for _, l := range lines {
		if rx.MatchString(l) {
			n++
		}
	}
	return n
}

// TestFastPollWhileMailComes: once new mail was handed over, the watcher
// polls with NOOP instead of idling, hands over mail that comes
// meanwhile, and idles again once no new mail came for FastPollFor.
func TestFastPollWhileMailComes(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	cfg := ts.config(newLogBuffer(t)) // PollInterval 1h: only IDLE or the fast poll can wake it
	// A NOOP every 20 ms, for an hour of the test's clock, which the test
	// moves on to end the window.
	cfg.FastPoll, cfg.FastPollFor = 20*time.Millisecond, time.Hour
	clock := &testClock{now: time.Now()}
	h := newTestHandler(t, nil)
	w := New(cfg, h)
	w.now = clock.Now
	startWatcher(t, w, true)

	ts.waitIdling(t) // no mail yet: it idles
	u1 := ts.appendMsg(t, "INBOX", testMessage(1))
	wantCall(t, h, ts, u1, testMessage(1))
	from := len(ts.proxy.commands())
	eventually(t, "NOOPs after new mail", func() bool { return count(ts.proxy.commands()[from:], "NOOP") >= 3 })
	u2 := ts.appendMsg(t, "INBOX", testMessage(2))
	wantCall(t, h, ts, u2, testMessage(2))
	between := ts.proxy.commands()[from:]
	if n := count(between, "IDLE"); n > 0 {
		t.Errorf("the watcher idled %d times while polling fast:\n%s", n, strings.Join(between, "\n"))
	}
	if n := count(between, `UID FETCH \S+ \(UID BODY`); n != 1 {
		t.Errorf("%d fetches of a body while polling fast, want 1 (message 2's): only new mail ends the poll:\n%s", n, strings.Join(between, "\n"))
	}

	clock.Add(2 * time.Hour) // no new mail for longer than FastPollFor
	ts.waitIdling(t)
	u3 := ts.appendMsg(t, "INBOX", testMessage(3))
	wantCall(t, h, ts, u3, testMessage(3))
}

func TestIdleIsRestarted(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	cfg := ts.config(newLogBuffer(t))
	cfg.IdleRestart = 50 * time.Millisecond
	h := newTestHandler(t, nil)
	start(t, cfg, h, true)
	for range 3 {
		ts.waitIdling(t) // each restart ends IDLE, sweeps, and idles again
	}
	uid := ts.appendMsg(t, "INBOX", testMessage(1))
	wantCall(t, h, ts, uid, testMessage(1))
}

func TestHandlerPanicLeavesMessage(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	uid := ts.appendMsg(t, "INBOX", testMessage(1))
	calls := 0
	h := newTestHandler(t, func(context.Context, Message) Disposition {
		if calls++; calls == 1 {
			panic("handler bug")
		}
		return Disposition{Action: Handled}
	})
	logs := newLogBuffer(t)
	r := start(t, ts.config(logs), h, true)
	wantCall(t, h, ts, uid, testMessage(1))
	if flags := ts.messages(t, "INBOX")[uid]; hasAnyFlag(flags, flagHandled, imap.FlagSeen) {
		t.Fatalf("message marked after the handler panicked: %v", flags)
	}
	r.w.Poke()
	wantCall(t, h, ts, uid, testMessage(1))
	if !strings.Contains(logs.String(), "handler bug") {
		t.Error("the panic was not logged")
	}
}

func TestLeaveIsRetriedAndSetAsideMovesAside(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	a := ts.appendMsg(t, "INBOX", testMessage(1))
	b := ts.appendMsg(t, "INBOX", testMessage(2))
	var mu sync.Mutex
	seenA := 0
	h := newTestHandler(t, func(_ context.Context, m Message) Disposition {
		if imap.UID(m.UID) == b {
			return Disposition{Action: SetAside, Mailbox: "Rejected", Reason: "no DMARC pass for space-a.example"}
		}
		mu.Lock()
		defer mu.Unlock()
		seenA++
		if seenA == 1 {
			return Disposition{Action: Leave, Reason: "store busy"}
		}
		return Disposition{Action: Handled}
	})
	logs := newLogBuffer(t)
	r := start(t, ts.config(logs), h, false)

	wantCall(t, h, ts, a, testMessage(1))
	wantCall(t, h, ts, b, testMessage(2))
	eventually(t, "B set aside in Rejected (created on demand)", func() bool {
		rej := ts.messages(t, "Rejected")
		return len(rej) == 1 && hasFlags(slices.Collect(maps.Values(rej))[0], flagHandled, flagRejected, imap.FlagSeen)
	})
	if flags, ok := ts.messages(t, "INBOX")[a]; !ok || hasAnyFlag(flags, flagHandled, imap.FlagSeen, imap.FlagDeleted) {
		t.Fatalf("left message: present %v, flags %v; want present and untouched", ok, flags)
	}
	if !strings.Contains(logs.String(), "no DMARC pass for space-a.example") {
		t.Error("the set-aside reason is not in the log")
	}

	r.w.Poke()
	wantCall(t, h, ts, a, testMessage(1))
	eventually(t, "A handled on the second try", func() bool {
		return len(ts.messages(t, "INBOX")) == 0 && len(ts.messages(t, "Processed")) == 1
	})
}

func TestNotMarkedWhileHandlerRuns(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	release := make(chan struct{})
	h := newTestHandler(t, func(context.Context, Message) Disposition {
		<-release
		return Disposition{Action: Handled}
	})
	start(t, ts.config(newLogBuffer(t)), h, true)
	ts.waitIdling(t)
	uid := ts.appendMsg(t, "INBOX", testMessage(1))
	wantCall(t, h, ts, uid, testMessage(1))

	// Handle is still running: nothing may be marked, not even \Seen by
	// reading the body.
	flags, ok := ts.messages(t, "INBOX")[uid]
	if !ok || hasAnyFlag(flags, flagHandled, imap.FlagSeen, imap.FlagDeleted) {
		t.Fatalf("while Handle runs: present %v, flags %v; want present, unflagged", ok, flags)
	}
	if len(ts.messages(t, "Processed")) != 0 {
		t.Fatal("message moved while Handle runs")
	}
	close(release)
	eventually(t, "the message marked and moved after Handle returned", func() bool {
		done := ts.messages(t, "Processed")
		return len(done) == 1 && len(ts.messages(t, "INBOX")) == 0
	})
}

func TestReconnectsAfterServerDropsConnection(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	h := newTestHandler(t, nil)
	logs := newLogBuffer(t)
	start(t, ts.config(logs), h, true)

	ts.waitIdling(t)
	uid := ts.appendMsg(t, "INBOX", testMessage(1))
	wantCall(t, h, ts, uid, testMessage(1))
	ts.waitIdling(t)

	ts.proxy.drainAccepts()
	ts.proxy.dropAll() // the server goes away while the watcher idles
	recv(t, ts.proxy.accepts, "a new connection")
	ts.waitIdling(t)
	uid = ts.appendMsg(t, "INBOX", testMessage(2))
	wantCall(t, h, ts, uid, testMessage(2))
	if !strings.Contains(logs.String(), "imap connection failed") {
		t.Error("the lost connection was not logged")
	}
}

func TestWatchdogOnSilentServer(t *testing.T) {
	// A server that greets and then never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepts := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
			go io.Copy(io.Discard, c)
			accepts <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-accepts:
				c.Close()
			default:
				return
			}
		}
	})

	logs := newLogBuffer(t)
	cfg := Config{Addr: ln.Addr().String(), TLS: "none", Username: testUser, Password: testPass,
		CommandTimeout: 200 * time.Millisecond, Logger: logs.logger()}
	r := start(t, cfg, newTestHandler(t, nil), false)

	first := recv(t, accepts, "the first connection")
	second := recv(t, accepts, "a reconnect after the watchdog fired")
	first.Close()
	second.Close()
	select {
	case <-r.w.Ready():
		t.Fatal("Ready closed although no login ever succeeded")
	default:
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if !strings.Contains(logs.String(), errWatchdog.Error()) {
		t.Error("the watchdog did not report the unanswered command")
	}
}

func TestWatchdogWhenEndOfIdleIsNotAnswered(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	h := newTestHandler(t, nil)
	logs := newLogBuffer(t)
	cfg := ts.config(logs)
	cfg.CommandTimeout = time.Second
	ts.proxy.drainConts()
	r := start(t, cfg, h, true)
	recv(t, ts.proxy.conts, `the server's "+ idling" passed to the watcher`)

	ts.proxy.drainAccepts()
	ts.proxy.freeze() // the link dies silently while idling
	r.w.Poke()        // DONE goes out, no answer comes back
	recv(t, ts.proxy.accepts, "a reconnect after the watchdog fired")
	ts.waitIdling(t)
	uid := ts.appendMsg(t, "INBOX", testMessage(1))
	wantCall(t, h, ts, uid, testMessage(1))
	if !strings.Contains(logs.String(), "DONE (end IDLE): "+errWatchdog.Error()) {
		t.Error("the watchdog did not report the unanswered DONE")
	}
}

func TestShutdownFinishesMessageInHand(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	release := make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	h := newTestHandler(t, func(ctx context.Context, _ Message) Disposition {
		<-release
		handlerCtxErr <- ctx.Err()
		return Disposition{Action: Handled}
	})
	r := start(t, ts.config(newLogBuffer(t)), h, true)
	ts.waitIdling(t)
	uid := ts.appendMsg(t, "INBOX", testMessage(1))
	wantCall(t, h, ts, uid, testMessage(1))

	r.cancel()
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) while Handle was still running", err)
	default:
	}
	close(release)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if err := <-handlerCtxErr; err != nil {
		t.Errorf("the handler's context was cancelled mid-message: %v", err)
	}
	if done := ts.messages(t, "Processed"); len(done) != 1 {
		t.Errorf("the message in hand was not finished: Processed holds %d", len(done))
	}
	if !ts.proxy.sent(`LOGOUT`) {
		t.Error("no LOGOUT on shutdown")
	}
}

func TestMoveFallbackWithUIDPlus(t *testing.T) {
	ts := newTestServer(t, serverOptions{caps: capsNoMove})
	// Someone else's message, flagged \Deleted but not expunged: it must
	// survive (a plain EXPUNGE would remove it).
	other := ts.appendMsg(t, "INBOX", []byte("Subject: not ours\r\n\r\nx\r\n"), imap.FlagDeleted)
	u1 := ts.appendMsg(t, "INBOX", testMessage(1))
	u2 := ts.appendMsg(t, "INBOX", testMessage(2))
	h := newTestHandler(t, nil)
	start(t, ts.config(newLogBuffer(t)), h, false)

	wantCall(t, h, ts, u1, testMessage(1))
	wantCall(t, h, ts, u2, testMessage(2))
	eventually(t, "both copied to Processed and expunged from INBOX", func() bool {
		inbox := ts.messages(t, "INBOX")
		_, otherLeft := inbox[other]
		return len(inbox) == 1 && otherLeft && len(ts.messages(t, "Processed")) == 2
	})
	if ts.proxy.sent(`UID MOVE `) || ts.proxy.sent(`MOVE `) || ts.proxy.sent(`EXPUNGE$`) {
		t.Error("sent MOVE or a plain EXPUNGE to a server without MOVE")
	}
	if !ts.proxy.sent(`UID COPY `) || !ts.proxy.sent(`UID EXPUNGE `) {
		t.Error("want UID COPY and UID EXPUNGE")
	}
}

func TestMoveFallbackWithoutUIDPlusLeavesMailFlagged(t *testing.T) {
	ts := newTestServer(t, serverOptions{caps: capsRFC3501})
	other := ts.appendMsg(t, "INBOX", []byte("Subject: not ours\r\n\r\nx\r\n"), imap.FlagDeleted)
	u1 := ts.appendMsg(t, "INBOX", testMessage(1))
	h := newTestHandler(t, nil)
	logs := newLogBuffer(t)
	start(t, ts.config(logs), h, false)

	wantCall(t, h, ts, u1, testMessage(1))
	eventually(t, "copied to Processed, original flagged \\Deleted in place", func() bool {
		inbox := ts.messages(t, "INBOX")
		_, otherLeft := inbox[other]
		return otherLeft && hasFlags(inbox[u1], flagHandled, imap.FlagSeen, imap.FlagDeleted) &&
			len(ts.messages(t, "Processed")) == 1
	})
	if ts.proxy.sent(`(UID )?MOVE `) || ts.proxy.sent(`(UID )?EXPUNGE`) {
		t.Error("sent MOVE or EXPUNGE to a server with neither MOVE nor UIDPLUS while another message was flagged \\Deleted")
	}
	// Not handed again: the next call is the next message.
	ts.waitIdling(t)
	u2 := ts.appendMsg(t, "INBOX", testMessage(2))
	wantCall(t, h, ts, u2, testMessage(2))
	// The log says once why nothing is expunged.
	eventually(t, "the second copied to Processed", func() bool { return len(ts.messages(t, "Processed")) == 2 })
	if n := strings.Count(logs.String(), "other messages are flagged"); n != 1 {
		t.Errorf("the reason not to expunge is logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestPollingWithoutIdle(t *testing.T) {
	t.Run("poke", func(t *testing.T) {
		ts := newTestServer(t, serverOptions{caps: capsMoveOnly, stripIdle: true})
		h := newTestHandler(t, nil)
		r := start(t, ts.config(newLogBuffer(t)), h, true) // PollInterval 1h
		uid := ts.appendMsg(t, "INBOX", testMessage(1))
		r.w.Poke()
		wantCall(t, h, ts, uid, testMessage(1))
		if ts.proxy.sent(`IDLE`) || !ts.proxy.sent(`NOOP`) {
			t.Error("want NOOP and no IDLE on a server without IDLE")
		}
	})
	t.Run("mail arriving during a sweep", func(t *testing.T) {
		ts := newTestServer(t, serverOptions{caps: capsMoveOnly, stripIdle: true})
		appended := make(chan imap.UID, 1)
		h := newTestHandler(t, func(_ context.Context, m Message) Disposition {
			if m.UID == 1 {
				uid, err := ts.tryAppend(t, "INBOX", testMessage(2))
				if err != nil {
					t.Error(err)
				}
				appended <- uid
			}
			return Disposition{Action: Handled}
		})
		ts.appendMsg(t, "INBOX", testMessage(1))
		start(t, ts.config(newLogBuffer(t)), h, false) // PollInterval 1h, no poke
		wantCall(t, h, ts, 1, testMessage(1))
		wantCall(t, h, ts, recv(t, appended, "the APPEND"), testMessage(2))
	})
	t.Run("interval", func(t *testing.T) {
		ts := newTestServer(t, serverOptions{caps: capsMoveOnly, stripIdle: true})
		h := newTestHandler(t, nil)
		cfg := ts.config(newLogBuffer(t))
		cfg.PollInterval = 50 * time.Millisecond
		start(t, cfg, h, true)
		for i := 1; i <= 2; i++ {
			uid := ts.appendMsg(t, "INBOX", testMessage(i))
			wantCall(t, h, ts, uid, testMessage(i))
		}
		if ts.proxy.sent(`IDLE`) {
			t.Error("sent IDLE to a server without IDLE")
		}
	})
}

func TestNoKeywordsFallsBackToSeen(t *testing.T) {
	ts := newTestServer(t, serverOptions{noKeywords: true})
	read := ts.appendMsg(t, "INBOX", testMessage(1), imap.FlagSeen)
	u2 := ts.appendMsg(t, "INBOX", testMessage(2))
	h := newTestHandler(t, nil)
	logs := newLogBuffer(t)
	start(t, ts.config(logs), h, false)

	wantCall(t, h, ts, u2, testMessage(2)) // the \Seen one is taken for handled
	eventually(t, "moved with \\Seen and no keyword", func() bool {
		done := ts.messages(t, "Processed")
		for _, flags := range done {
			return len(done) == 1 && hasFlags(flags, imap.FlagSeen) && !hasFlags(flags, flagHandled)
		}
		return false
	})
	if _, ok := ts.messages(t, "INBOX")[read]; !ok {
		t.Fatal("the \\Seen message was moved")
	}

	ts.waitIdling(t)
	ts.proxy.dropAll() // a second connection must not log the fallback again
	ts.waitIdling(t)
	u3 := ts.appendMsg(t, "INBOX", testMessage(3))
	wantCall(t, h, ts, u3, testMessage(3))
	if n := strings.Count(logs.String(), "mailbox takes no keywords"); n != 1 {
		t.Errorf("fallback logged %d times, want once", n)
	}
}

func TestUIDValidityChangeIsLogged(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	h := newTestHandler(t, nil)
	logs := newLogBuffer(t)
	start(t, ts.config(logs), h, true)
	ts.waitIdling(t)
	old := ts.uidValidity(t, "INBOX")

	// The mailbox is recreated behind the watcher's back, then the server restarts.
	if err := ts.user.Delete("INBOX"); err != nil {
		t.Fatal(err)
	}
	if err := ts.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	ts.proxy.dropAll()
	ts.waitIdling(t)
	uid := ts.appendMsg(t, "INBOX", testMessage(1))
	m := wantCall(t, h, ts, uid, testMessage(1))
	if m.UIDValidity == old {
		t.Fatalf("UIDValidity still %d after the mailbox was recreated", old)
	}
	if !strings.Contains(logs.String(), "UIDVALIDITY changed") {
		t.Error("the UIDVALIDITY change was not logged")
	}
}

func TestTLSModes(t *testing.T) {
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			// The server refuses LOGIN without TLS, so a hand-over proves TLS.
			ts := newTestServer(t, serverOptions{tls: mode})
			h := newTestHandler(t, nil)
			start(t, ts.config(newLogBuffer(t)), h, true)
			ts.waitIdling(t)
			uid := ts.appendMsg(t, "INBOX", testMessage(1))
			wantCall(t, h, ts, uid, testMessage(1))
		})
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	good := Config{Addr: "127.0.0.1:1", TLS: "none"}
	for name, mutate := range map[string]func(*Config){
		"tls mode":          func(c *Config) { c.TLS = "ssl" },
		"no address":        func(c *Config) { c.Addr = "" },
		"idle restart":      func(c *Config) { c.IdleRestart = 11 * time.Minute },
		"processed = inbox": func(c *Config) { c.ProcessedMailbox = "INBOX" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			mutate(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			err := New(cfg, newTestHandler(t, nil)).Run(ctx) // nil after guard if it tried to connect
			if err == nil {
				t.Fatalf("Run = %v, want a configuration error", err)
			}
		})
	}
}

// A slow link: batches that take far longer than the watchdog's timeout to
// arrive, bytes flowing all the while, are fetched and handled; the log
// says "slow", not that the server did not answer.
func TestSlowLinkMakesProgress(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	big := strings.Repeat("padding to make the message large on a slow link\r\n", 800) // ~40 KB
	for i := range 5 {
		ts.appendMsg(t, "INBOX", append(testMessage(i), big...))
	}
	// About 60 KB/s: the five messages (200 KB) take over three seconds
	// to arrive, each 40 KB one about 0.7 s, against a watchdog shortened
	// to 400 ms (from 60 s) so that the test runs in seconds.
	ts.proxy.rate.Store(60 << 10)
	logs := newLogBuffer(t)
	cfg := ts.config(logs)
	cfg.CommandTimeout = 400 * time.Millisecond
	h := newTestHandler(t, nil)
	r := start(t, cfg, h, false)
	for i := range 5 {
		recv(t, h.calls, fmt.Sprintf("message %d over the slow link", i+1))
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), errWatchdog.Error()) {
		t.Errorf("the watchdog cut a command while bytes flowed:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "slow link") {
		t.Errorf("the log does not say the link is slow:\n%s", logs.String())
	}
}

// fetchBatches keeps fetches within the byte budget, a big message alone.
func TestFetchBatches(t *testing.T) {
	msgs := []sized{{1, 100}, {2, 100}, {3, 5000}, {4, 100}, {5, 100}, {6, 100}}
	got := fetchBatches(msgs, 1000, 2)
	want := [][]imap.UID{{1, 2}, {3}, {4, 5}, {6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fetchBatches = %v, want %v", got, want)
	}
}

// The same failure again and again (here a watched mailbox that does not
// exist) is logged at Warn once, not at every retry.
func TestRepeatedFailureWarnsOnce(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	logs := newLogBuffer(t)
	cfg := ts.config(logs)
	cfg.Mailbox = "Deleted"
	ctx, cancel := context.WithCancel(context.Background())
	w := New(cfg, newTestHandler(t, nil))
	// Retries every few milliseconds instead of 1 s to 60 s, so that the
	// test sees many of them.
	w.backoffMin, w.backoffMax = time.Millisecond, 5*time.Millisecond
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	eventually(t, "ten retries", func() bool { return strings.Count(logs.String(), "imap connection failed") >= 10 })
	cancel()
	<-done
	if n := strings.Count(logs.String(), `level=WARN msg="imap connection failed"`); n != 1 {
		t.Errorf("%d warnings for the same failure, want 1:\n%s", n, logs.String())
	}
}

// batchHandler takes fetched batches whole; it leaves UID 3 for later.
type batchHandler struct {
	mu      sync.Mutex
	batches [][]uint32
	single  int
}

func (h *batchHandler) Handle(ctx context.Context, m Message) Disposition {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.single++
	return Disposition{Action: Handled}
}

func (h *batchHandler) HandleBatch(ctx context.Context, ms []Message) []Disposition {
	h.mu.Lock()
	defer h.mu.Unlock()
	var uids []uint32
	out := make([]Disposition, len(ms))
	for i, m := range ms {
		uids = append(uids, m.UID)
		out[i] = Disposition{Action: Handled}
		if m.UID == 3 {
			out[i] = Disposition{Action: Leave, Reason: "later"}
		}
	}
	h.batches = append(h.batches, uids)
	return out
}

// A handler that takes batches gets the fetched batch in one call, in UID
// order; each message is then marked as its disposition says.
func TestBatchHandlerGetsTheFetchedBatch(t *testing.T) {
	ts := newTestServer(t, serverOptions{})
	for i := 1; i <= 5; i++ {
		ts.appendMsg(t, "INBOX", testMessage(i))
	}
	h := &batchHandler{}
	start(t, ts.config(newLogBuffer(t)), h, true)
	eventually(t, "four messages moved", func() bool { return len(ts.messages(t, "Processed")) == 4 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.batches) != 1 || !slices.Equal(h.batches[0], []uint32{1, 2, 3, 4, 5}) || h.single != 0 {
		t.Errorf("batches %v and %d single calls, want one batch of UIDs 1-5", h.batches, h.single)
	}
	left := ts.messages(t, "INBOX")
	if flags, ok := left[3]; len(left) != 1 || !ok || slices.Contains(flags, KeywordHandled) {
		t.Errorf("INBOX holds %v, want UID 3 alone, unflagged", left)
	}
}
