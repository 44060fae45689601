package mailbot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

const (
	testBot  = "visa@visa.test"
	testAuth = "mx.visa.test"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTestBot is a Bot over a fresh store with a manager of indyhall.
func newTestBot(t *testing.T, now func() time.Time) (*Bot, *storage.DB, *int) {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Update(func(tx *storage.Tx) error {
		tx.PutSpace(storage.Space{ID: "indyhall", Name: "Indy Hall"})
		return tx.AddManager(storage.Manager{Email: "alex@indyhall.test", Space: "indyhall"})
	})
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	wakes := new(int)
	// The defaults, but for the hourly limit, low so that a test reaches
	// it with a few messages.
	set := SettingsFrom(testConfig())
	set.Limits.RepliesPerSenderPerHour = 3
	b := NewBot(set, db, tmpl, quiet, now, func() { *wakes++ })
	return b, db, wakes
}

// testConfig is the default configuration of a bot at testBot, trusting
// testAuth, with one admin.
func testConfig() *config.Config {
	cfg := config.Default()
	cfg.Bot.Address, cfg.Bot.Name = testBot, "Visa"
	cfg.Admins = []string{"admin@visa.test"}
	cfg.Auth.AuthservID = testAuth
	return cfg
}

// testDate is the Date of test mail: the time of fixedClock.
const testDate = "Sat, 28 Nov 2026 10:00:00 +0000"

// mail is a plain message from addr to the bot, dated by fixedClock,
// authenticated by our MX unless headers say otherwise.
func mail(from, id, subject, body string, headers ...string) []byte {
	var b strings.Builder
	if len(headers) > 0 && headers[0] == "no auth" {
		headers = headers[1:]
	} else if len(headers) == 0 || !strings.HasPrefix(headers[0], "Authentication-Results:") {
		fmt.Fprintf(&b, "Authentication-Results: %s; dmarc=pass header.from=%s\r\n", testAuth, from[strings.IndexByte(from, '@')+1:])
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", from, testBot, subject, testDate)
	if id != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
	return []byte(b.String())
}

func queued(t *testing.T, db *storage.DB) []string {
	t.Helper()
	var out []string
	db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool {
			out = append(out, string(tx.OutboxRaw(it.ID)))
			return true
		})
	})
	return out
}

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	return func() time.Time { return t }
}

func TestHandleExactlyOnce(t *testing.T) {
	b, db, wakes := newTestBot(t, fixedClock())
	raw := mail("Alex@IndyHall.test", "m1@indyhall.test", "roster", "add member adam@indyhall.test\nverify adam@indyhall.test")
	for i := 0; i < 3; i++ {
		if out := b.Handle(context.Background(), raw); out.Action != inbox.Handled {
			t.Fatalf("Handle #%d = %+v, want Done", i, out)
		}
	}
	replies := queued(t, db)
	if len(replies) != 1 || *wakes != 1 {
		t.Fatalf("%d replies, %d wakes after three deliveries of one message; want 1 and 1", len(replies), *wakes)
	}
	for _, want := range []string{"OK: added adam@indyhall.test", "VERIFIED: adam@indyhall.test", "To: <alex@indyhall.test>",
		"In-Reply-To: <m1@indyhall.test>", "Auto-Submitted: auto-replied", "Subject: Re: roster"} {
		if !strings.Contains(replies[0], want) {
			t.Errorf("reply lacks %q:\n%s", want, replies[0])
		}
	}
	n := 0
	db.View(func(tx *storage.Tx) error {
		return tx.Changes(0, func(c storage.Change) bool { n++; return true })
	})
	if n != 1 {
		t.Errorf("%d audit records, want 1", n)
	}
}

func TestHandleWithoutMessageIDIsStillOnce(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	raw := mail("alex@indyhall.test", "", "x", "add member adam@indyhall.test")
	b.Handle(context.Background(), raw)
	// The same message through another relay: a new Received line on top.
	b.Handle(context.Background(), append([]byte("Received: from relay2 by mx; Sat, 28 Nov 2026 10:00:01 +0000\r\n"), raw...))
	if n := len(queued(t, db)); n != 1 {
		t.Errorf("%d replies, want 1", n)
	}
}

func TestHandleSetsAsideWithoutReply(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	for _, c := range []struct {
		name string
		raw  []byte
	}{
		{"no auth", mail("alex@indyhall.test", "f1@x", "x", "add member evil@evil.test", "no auth")},
		{"forged id", mail("alex@indyhall.test", "f2@x", "x", "add member evil@evil.test", "Authentication-Results: mx.evil.test; dmarc=pass header.from=indyhall.test")},
		{"dmarc fail", mail("alex@indyhall.test", "f3@x", "x", "add member evil@evil.test", "Authentication-Results: "+testAuth+"; dmarc=fail header.from=indyhall.test")},
		{"auto-reply", mail("alex@indyhall.test", "f4@x", "Out of office", "add member evil@evil.test", "Auto-Submitted: auto-replied")},
		{"our own mail", mail(testBot, "f5@x", "Re: x", "OK: added", "X-Loop: "+testBot)},
		{"garbage", []byte("\x00\x01 not a message")},
	} {
		out := b.Handle(context.Background(), c.raw)
		if out.Action != inbox.SetAside || out.Mailbox != "Rejected" {
			t.Errorf("%s: %+v, want SetAside to Rejected", c.name, out)
		}
	}
	if n := len(queued(t, db)); n != 0 {
		t.Errorf("%d replies to forged or automatic mail", n)
	}
	db.View(func(tx *storage.Tx) error {
		if of, _ := tx.MembershipsOf("evil@evil.test"); len(of) != 0 {
			t.Errorf("forged mail changed the roster: %+v", of)
		}
		return nil
	})
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	b, db, _ := newTestBot(t, func() time.Time { return now })
	for i := 0; i < 6; i++ {
		b.Handle(context.Background(), mail("alex@indyhall.test", fmt.Sprintf("r%d@x", i), "x", fmt.Sprintf("add member m%d@indyhall.test", i)))
	}
	replies := queued(t, db)
	if len(replies) != 4 {
		t.Fatalf("%d replies, want 3 answers and 1 notice", len(replies))
	}
	if !strings.Contains(replies[3], "more than 3 messages") {
		t.Errorf("fourth reply is not the notice:\n%s", replies[3])
	}
	db.View(func(tx *storage.Tx) error {
		if n := tx.CountMembers("indyhall"); n != 3 {
			t.Errorf("%d members, want 3: messages over the limit must not act", n)
		}
		return nil
	})
	now = now.Add(61 * time.Minute)
	b.Handle(context.Background(), mail("alex@indyhall.test", "later@x", "x", "verify m0@indyhall.test"))
	if n := len(queued(t, db)); n != 5 {
		t.Errorf("after the hour: %d replies, want 5", n)
	}
}

func TestReplyToBotIgnoresSubject(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	b.Handle(context.Background(), mail("alex@indyhall.test", "c1@x", "Re: add member sub@indyhall.test", "verify sub@indyhall.test",
		"In-Reply-To: <0123456789abcdef0123456789abcdef@visa.test>"))
	b.Handle(context.Background(), mail("alex@indyhall.test", "c2@x", "add member sub2@indyhall.test", "verify sub2@indyhall.test"))
	db.View(func(tx *storage.Tx) error {
		if _, ok, _ := tx.Member("indyhall", "sub@indyhall.test"); ok {
			t.Error("the subject of a reply to the bot was run as a command")
		}
		if _, ok, _ := tx.Member("indyhall", "sub2@indyhall.test"); !ok {
			t.Error("the subject of a new message was not run as a command")
		}
		return nil
	})
}

func TestFailingMessageIsQuarantined(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	db.Close() // every transaction now fails: an internal error, not the sender's
	raw := mail("alex@indyhall.test", "p1@x", "x", "verify a@indyhall.test")
	for i, want := range []inbox.Action{inbox.Leave, inbox.Leave, inbox.Quarantine} {
		out := b.Handle(context.Background(), raw)
		if out.Action != want {
			t.Fatalf("attempt %d: %+v, want action %d", i+1, out, want)
		}
		if want == inbox.Quarantine && out.Mailbox != "Quarantine" {
			t.Errorf("quarantined to %q, want Quarantine", out.Mailbox)
		}
	}
}

func TestSummary(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	b.Handle(context.Background(), mail("alex@indyhall.test", "s1@x", "hi", "Hello\nverify a@indyhall.test\nadd member bad\nadd space x name=y"))
	r := queued(t, db)[0]
	for _, want := range []string{"3 commands: 1 NOT VERIFIED, 1 ERROR, 1 DENIED; 1 line ignored.", "Not commands (ignored):", "  Hello"} {
		if !strings.Contains(r, want) {
			t.Errorf("reply lacks %q:\n%s", want, r)
		}
	}
}

func TestTooLargeGetsAnError(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	b.set.Message.MaxBytes = 4096
	raw := mail("alex@indyhall.test", "big@x", "roster", "add member big@indyhall.test\n"+strings.Repeat("x", 8000))
	if out := b.Handle(context.Background(), raw); out.Action != inbox.Handled {
		t.Fatalf("Handle = %+v, want Done", out)
	}
	replies := queued(t, db)
	if len(replies) != 1 || !strings.Contains(replies[0], "ERROR: the message is larger than 4 KiB") {
		t.Fatalf("replies = %q", replies)
	}
	db.View(func(tx *storage.Tx) error {
		if _, ok, _ := tx.Member("indyhall", "big@indyhall.test"); ok {
			t.Error("a command of a message over the limit was applied")
		}
		return nil
	})
	// Forged and too large: still no answer.
	forged := mail("alex@indyhall.test", "big2@x", "x", strings.Repeat("y", 8000), "no auth")
	if out := b.Handle(context.Background(), forged); out.Action != inbox.SetAside {
		t.Errorf("forged large mail: %+v", out)
	}
}

func TestCircuitBreaker(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 10, 0, time.UTC)
	b, db, _ := newTestBot(t, func() time.Time { return now })
	// A breaker of 2 a minute instead of the default 1000, so that three
	// messages open it.
	b.set.Limits.RepliesPerMinute = 2
	b.limiter = NewLimiter(b.set.Limits)
	db.Update(func(tx *storage.Tx) error {
		return tx.AddManager(storage.Manager{Email: "bob@indyhall.test", Space: "indyhall"})
	})
	msgs := [][]byte{
		mail("alex@indyhall.test", "b1@x", "x", "verify a@indyhall.test"),
		mail("bob@indyhall.test", "b2@x", "x", "verify a@indyhall.test"),
		mail("admin@visa.test", "b3@x", "x", "verify a@indyhall.test"),
	}
	for i, want := range []inbox.Action{inbox.Handled, inbox.Handled, inbox.Leave, inbox.Leave} {
		if out := b.Handle(context.Background(), msgs[min(i, 2)]); out.Action != want {
			t.Fatalf("message %d: %+v, want action %d", i, out, want)
		}
	}
	replies := queued(t, db)
	if len(replies) != 3 || !strings.Contains(replies[2], "To: <admin@visa.test>") || !strings.Contains(replies[2], "circuit breaker") {
		t.Fatalf("want 2 replies and one notice to the admin, got %d:\n%s", len(replies), strings.Join(replies, "\n----\n"))
	}
	// A stranger is neither held up by the open breaker nor counted by it.
	if out := b.Handle(context.Background(), mail("eve@elsewhere.test", "b4@x", "x", "help")); out.Action != inbox.Handled {
		t.Errorf("a stranger while the breaker is open: %+v, want handled", out)
	}
	now = now.Add(time.Minute)
	if out := b.Handle(context.Background(), msgs[2]); out.Action != inbox.Handled {
		t.Errorf("after the minute: %+v", out)
	}
}

// A reply written below the quote (Thunderbird's default) is read below
// it; a reply written above it stops at the quote.
func TestBottomPostedReply(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	b.Handle(context.Background(), mail("alex@indyhall.test", "q1@x", "Re: x",
		"On Mon, 30 Nov 2026 at 09:12, Visa <visa@visa.test> wrote:\n> add member quoted@indyhall.test\n\nadd member below@indyhall.test\n",
		"In-Reply-To: <0123456789abcdef0123456789abcdef@visa.test>"))
	b.Handle(context.Background(), mail("alex@indyhall.test", "q2@x", "Re: y",
		"add member above@indyhall.test\n\nOn Mon, 30 Nov 2026 at 09:12, Visa <visa@visa.test> wrote:\n> add member quoted2@indyhall.test\n\nadd member after@indyhall.test\n"))
	db.View(func(tx *storage.Tx) error {
		for addr, want := range map[string]bool{"below@indyhall.test": true, "above@indyhall.test": true,
			"quoted@indyhall.test": false, "quoted2@indyhall.test": false, "after@indyhall.test": false} {
			if _, ok, _ := tx.Member("indyhall", addr); ok != want {
				t.Errorf("%s is a member: %v, want %v", addr, ok, want)
			}
		}
		return nil
	})
}

// A reply to one of the bot's messages that holds no command ("Thanks!",
// or an auto-responder that marks nothing) gets no answer: two robots must
// not start a conversation.
func TestReplyToBotWithoutCommandsIsNotAnswered(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	out := b.Handle(context.Background(), mail("alex@indyhall.test", "t1@x", "Re: roster", "Great, thank you so much!\n\n> OK: added adam@indyhall.test",
		"In-Reply-To: <0123456789abcdef0123456789abcdef@visa.test>"))
	if out.Action != inbox.Handled {
		t.Fatalf("Handle = %+v", out)
	}
	if n := len(queued(t, db)); n != 0 {
		t.Errorf("%d replies to a thank-you", n)
	}
	// A new message without commands still gets the help text.
	b.Handle(context.Background(), mail("alex@indyhall.test", "t2@x", "hello", "How does this work?"))
	if r := queued(t, db); len(r) != 1 || !strings.Contains(r[0], "How to use") {
		t.Errorf("no help for a new message without commands: %q", r)
	}
}

// Replies dropped for good reach the admins in one notice; a dropped
// notice is not reported (an admin address that refuses mail cannot start
// a loop of notices).
func TestDroppedRepliesAreReported(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	refused := errors.New("550 5.1.1 no such user")
	b.NotifyDropped(storage.OutboxItem{Kind: "reply", To: []string{"first@indyhall.test"}, Answers: "cmd0@indyhall.test"}, refused)
	if r := queued(t, db); len(r) != 1 || !strings.Contains(replyText(t, r[0]), "first@indyhall.test") {
		t.Fatalf("the first drop is not told at once: %d notices", len(r))
	}
	db.Update(func(tx *storage.Tx) error { // sent
		return tx.Outbox(func(it storage.OutboxItem) bool { tx.DeleteOutboxItem(it.ID); return true })
	})
	// Those within the next minute are told together.
	b.NotifyDropped(storage.OutboxItem{Kind: "reply", To: []string{"gone@indyhall.test"}, Answers: "cmd1@indyhall.test"}, refused)
	b.NotifyDropped(storage.OutboxItem{Kind: "digest", To: []string{"old@betahaus.test"}}, refused)
	b.NotifyDropped(storage.OutboxItem{Kind: "notice", To: []string{"admin@visa.test"}}, refused)
	if r := queued(t, db); len(r) != 0 {
		t.Fatalf("%d notices before the minute is over, want 0", len(r))
	}
	b.flushDropped() // as the minute's timer does
	r := queued(t, db)
	if len(r) != 1 {
		t.Fatalf("%d notices, want 1", len(r))
	}
	plain := replyText(t, r[0])
	if !strings.Contains(r[0], "To: <admin@visa.test>") || !strings.Contains(r[0], "Subject: [Visa] replies could not be delivered") {
		t.Errorf("not a notice to the admin:\n%.600s", r[0])
	}
	for _, want := range []string{"reply to gone@indyhall.test, answering the message cmd1@indyhall.test: 550 5.1.1", "digest to old@betahaus.test"} {
		if !strings.Contains(oneSpaced(plain), want) {
			t.Errorf("the notice lacks %q:\n%s", want, plain)
		}
	}
	if strings.Contains(plain, "admin@visa.test:") {
		t.Errorf("a dropped notice was reported:\n%s", plain)
	}
}
