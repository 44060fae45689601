package mailbot

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/storage"
)

// freeAddr is a loopback address nothing listens on a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runDaemon runs d until the test ends, when it stops it and checks that
// Run ended well. It returns once the daemon is ready.
func runDaemon(tb testing.TB, d *Daemon) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		tb.Fatal("the daemon did not get ready")
	}
}

// lmtpDeliver hands raw to the daemon's LMTP listener for the bot, as the
// mail server does, and returns the bot's reply code.
func lmtpDeliver(t *testing.T, addr, from string, raw []byte) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.visa.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(testBot, nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	_, err = w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	switch {
	case err == nil:
		return 250
	case errors.As(err, &lerr) && lerr[testBot] != nil:
		return lerr[testBot].Code
	}
	t.Fatalf("DATA: %v", err)
	return 0
}

// TestDaemonOverLMTPAlone runs the daemon with lmtp.listen and no imap
// section: a command delivered over LMTP is taken once (a second delivery
// of it queues no second reply), and forged mail is taken and set aside.
func TestDaemonOverLMTPAlone(t *testing.T) {
	cfg := testConfig()
	cfg.Store.Path = filepath.Join(t.TempDir(), "visa.db")
	cfg.LMTP.Listen = freeAddr(t)
	// Nothing answers there: replies stay in the outbox, where the test
	// counts them.
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS = "127.0.0.1", 9, "none"
	d, err := Open(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if d.Watcher != nil {
		t.Fatal("a daemon without an imap section reads a mailbox")
	}
	d.DB.Update(func(tx *storage.Tx) error {
		tx.PutSpace(storage.Space{ID: "indyhall", Name: "Indy Hall"})
		return tx.AddManager(storage.Manager{Email: "alex@indyhall.test", Space: "indyhall"})
	})
	runDaemon(t, d)
	// Ready comes just before the listener serves; a connection waits in
	// its backlog meanwhile.
	raw := []byte(strings.ReplaceAll(string(mail("alex@indyhall.test", "m1@indyhall.test", "desk", "verify adam@indyhall.test")), "Date: "+testDate, "Date: "+time.Now().Format(time.RFC1123Z)))
	for i := range 2 {
		if code := lmtpDeliver(t, cfg.LMTP.Listen, "alex@indyhall.test", raw); code != 250 {
			t.Fatalf("delivery %d: %d, want 250", i+1, code)
		}
	}
	forged := mail("alex@indyhall.test", "m2@indyhall.test", "desk", "verify adam@indyhall.test", "no auth")
	if code := lmtpDeliver(t, cfg.LMTP.Listen, "alex@indyhall.test", forged); code != 250 {
		t.Fatalf("forged mail: %d, want 250 (taken and set aside)", code)
	}
	// (The weekly digest may be queued too: it is not a reply.)
	var replies []string
	for _, q := range queued(t, d.DB) {
		if strings.Contains(q, "In-Reply-To:") {
			replies = append(replies, q)
		}
	}
	if len(replies) != 1 || !strings.Contains(replies[0], "In-Reply-To: <m1@indyhall.test>") ||
		!strings.Contains(replies[0], "NOT VERIFIED: adam@indyhall.test") {
		t.Fatalf("queued %d replies, want one answering the verify in m1: %q", len(replies), replies)
	}
}

// TestKeepQuarantined: a quarantined message is kept whole in a file only
// its owner reads.
func TestKeepQuarantined(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "visa.db.quarantine")
	raw := mail("alex@indyhall.test", "m1@indyhall.test", "x", "verify adam@indyhall.test")
	name, err := keepQuarantined(dir, raw)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(name) != dir || !strings.HasSuffix(name, ".eml") {
		t.Errorf("kept as %s, want a .eml file in %s", name, dir)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	fi, _ := f.Stat()
	if string(got) != string(raw) || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept %d bytes with mode %v, want the %d bytes of the message, 0600", len(got), fi.Mode().Perm(), len(raw))
	}
}

// Over LMTP alone, the admins' notice of a quarantined message says where
// its file is kept and how to hand it over again.
func TestQuarantineNoticeOverLMTP(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	b.set.QuarantineMailbox, b.set.QuarantineKept = "/var/lib/mailbot/visa.db.quarantine", true
	withReplyTemplate(t, b, `{{template "no-such-template"}}`)
	raw := mail("alex@indyhall.test", "q1@indyhall.test", "x", "verify adam@indyhall.test")
	var d inbox.Disposition
	for range 3 {
		d = b.Handle(context.Background(), raw)
	}
	if d.Action != inbox.Quarantine {
		t.Fatalf("after 3 failures: %+v, want quarantine", d)
	}
	notices := queued(t, db)
	if len(notices) != 1 || !strings.Contains(notices[0], "in the directory") || !strings.Contains(notices[0], "sendmail -t") ||
		!strings.Contains(notices[0], "visa.db.quarantine") {
		t.Errorf("the admins' notice does not say where the message is kept:\n%q", notices)
	}
}
