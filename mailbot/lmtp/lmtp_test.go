package lmtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
)

// guard bounds every wait in these tests; it is never the thing measured.
const guard = 15 * time.Second

const (
	bot   = "visa@example.org"
	alias = "visa-desk@example.org"
)

// recorder is a handler that records each message and answers with the
// dispositions queued by the test (Handled when none is queued).
type recorder struct {
	mu    sync.Mutex
	got   [][]byte
	next  []inbox.Disposition
	block chan struct{} // when set, Handle waits for it to close
	in    chan struct{} // one value when Handle starts
}

func (r *recorder) Handle(_ context.Context, raw []byte) inbox.Disposition {
	r.mu.Lock()
	r.got = append(r.got, raw)
	d := inbox.Disposition{Action: inbox.Handled}
	if len(r.next) > 0 {
		d, r.next = r.next[0], r.next[1:]
	}
	block, in := r.block, r.in
	r.mu.Unlock()
	if in != nil {
		in <- struct{}{}
	}
	if block != nil {
		<-block
	}
	return d
}

func (r *recorder) messages() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.got...)
}

// serve runs a server for bot and alias on a free loopback port (or at
// listen) until the test ends, and returns it with the function that stops
// it and waits for Run to return.
func serve(t *testing.T, listen string, h Handler, keep func([]byte) (string, error)) (*Server, func() error) {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	return serveWith(t, Config{Listen: listen, Recipients: Recipients(bot, []string{alias}), Keep: keep}, h)
}

// serveWith is serve with a config of the test's own (its logger is
// set here).
func serveWith(t *testing.T, cfg Config, h Handler) (*Server, func() error) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(cfg, h)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(guard):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return s, stop
}

// client connects an LMTP client, as Postfix's lmtp delivery agent does.
func client(t *testing.T, network, addr string) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, guard)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(guard))
	c := smtp.NewClientLMTP(conn)
	if err := c.Hello("mx.example.org"); err != nil {
		t.Fatalf("LHLO: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const message = "From: alex@indyhall.test\r\nTo: visa@example.org\r\nSubject: verify\r\nMessage-ID: <m1@indyhall.test>\r\n\r\nverify adam@indyhall.test\r\n"

// deliver runs one LMTP transaction and returns the per-recipient
// replies (nil for a 250) of the recipients the server took.
func deliver(t *testing.T, c *smtp.Client, from string, to []string, data string) (map[string]*smtp.DataResponse, error) {
	t.Helper()
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL FROM: %v", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := io.WriteString(w, data); err != nil {
		t.Fatal(err)
	}
	return w.CloseWithLMTPResponse()
}

// codes reads each recipient's reply code out of an LMTP DATA outcome.
func codes(t *testing.T, to []string, err error) map[string]int {
	t.Helper()
	out := map[string]int{}
	var lerr smtp.LMTPDataError
	if err != nil && !errors.As(err, &lerr) {
		t.Fatalf("DATA failed as a whole: %v", err)
	}
	for _, r := range to {
		out[r] = 250
		if e := lerr[r]; e != nil {
			out[r] = e.Code
		}
	}
	return out
}

func TestHandledMessageIsAcceptedForEveryRecipient(t *testing.T) {
	h := &recorder{}
	s, _ := serve(t, "", h, nil)
	c := client(t, "tcp", s.Addr().String())
	to := []string{bot, "Visa-Desk@Example.org"}
	_, err := deliver(t, c, "alex@indyhall.test", to, message)
	for r, code := range codes(t, to, err) {
		if code != 250 {
			t.Errorf("recipient %s: %d, want 250", r, code)
		}
	}
	got := h.messages()
	if len(got) != 1 {
		t.Fatalf("the handler got %d messages, want 1 (the bot and its alias are one mailbox)", len(got))
	}
	if want := "Return-Path: <alex@indyhall.test>\r\n" + message; string(got[0]) != want {
		t.Errorf("the handler got\n%q\nwant the message under the envelope sender's Return-Path:\n%q", got[0], want)
	}
}

func TestUnknownRecipientIsRefusedAtRcpt(t *testing.T) {
	h := &recorder{}
	s, _ := serve(t, "", h, nil)
	c := client(t, "tcp", s.Addr().String())
	if err := c.Mail("alex@indyhall.test", nil); err != nil {
		t.Fatal(err)
	}
	err := c.Rcpt("someone-else@example.org", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Fatalf("RCPT of an unknown address: %v, want 550 5.1.1", err)
	}
	// The transaction goes on for the bot: it alone gets the message.
	if err := c.Rcpt(bot, nil); err != nil {
		t.Fatalf("RCPT of the bot after a refused one: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, message)
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if n := len(h.messages()); n != 1 {
		t.Errorf("the handler got %d messages, want 1", n)
	}
}

func TestLeaveIsATemporaryFailureAndTheRetryIsTaken(t *testing.T) {
	h := &recorder{next: []inbox.Disposition{
		{Action: inbox.Leave, Reason: "the store cannot be written:\nintake paused"},
		{Action: inbox.Handled},
	}}
	s, _ := serve(t, "", h, nil)
	c := client(t, "tcp", s.Addr().String())
	to := []string{bot, alias}
	_, err := deliver(t, c, "alex@indyhall.test", to, message)
	var lerr smtp.LMTPDataError
	if !errors.As(err, &lerr) {
		t.Fatalf("DATA = %v, want a reply per recipient", err)
	}
	for _, r := range to {
		e := lerr[r]
		if e == nil || e.Code != 451 || e.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) {
			t.Fatalf("recipient %s: %v, want 451 4.3.0", r, e)
		}
		if !strings.Contains(e.Message, "the store cannot be written: intake paused") {
			t.Errorf("recipient %s: %q does not say why, on one line", r, e.Message)
		}
	}
	// The mail server delivers it again later, on the same connection or
	// another: now it is taken.
	_, err = deliver(t, client(t, "tcp", s.Addr().String()), "alex@indyhall.test", to, message)
	for r, code := range codes(t, to, err) {
		if code != 250 {
			t.Errorf("second delivery, recipient %s: %d, want 250", r, code)
		}
	}
	if n := len(h.messages()); n != 2 {
		t.Errorf("the handler got %d deliveries, want 2", n)
	}
}

func TestSetAsideAndQuarantineAreTaken(t *testing.T) {
	var kept [][]byte
	keep := func(raw []byte) (string, error) {
		if len(kept) == 1 {
			return "", errors.New("disk full")
		}
		kept = append(kept, raw)
		return "/var/lib/mailbot/visa.db.quarantine/1.eml", nil
	}
	h := &recorder{next: []inbox.Disposition{
		{Action: inbox.SetAside, Mailbox: "Rejected", Reason: "forged"},
		{Action: inbox.Quarantine, Mailbox: "Quarantine", Reason: "failed 3 times"},
		{Action: inbox.Quarantine, Mailbox: "Quarantine", Reason: "failed 3 times"},
	}}
	s, _ := serve(t, "", h, keep)
	c := client(t, "tcp", s.Addr().String())
	for i, want := range []int{250, 250, 451} {
		_, err := deliver(t, c, "alex@indyhall.test", []string{bot}, message)
		if got := codes(t, []string{bot}, err)[bot]; got != want {
			t.Errorf("delivery %d: %d, want %d", i+1, got, want)
		}
	}
	if len(kept) != 1 || !bytes.HasSuffix(kept[0], []byte(message)) {
		t.Errorf("kept %d quarantined messages, want the first one", len(kept))
	}
}

// TestShutdownAnswersTheDeliveryInHand: a message being handled when the
// daemon stops is finished and acknowledged before Run returns; a new
// transaction is refused with a 4xx meanwhile.
func TestShutdownAnswersTheDeliveryInHand(t *testing.T) {
	h := &recorder{block: make(chan struct{}), in: make(chan struct{}, 1)}
	s, stop := serve(t, "", h, nil)
	c := client(t, "tcp", s.Addr().String())
	other := client(t, "tcp", s.Addr().String())
	answered := make(chan error, 1)
	go func() {
		_, err := deliver(t, c, "alex@indyhall.test", []string{bot}, message)
		answered <- err
	}()
	select {
	case <-h.in:
	case <-time.After(guard):
		t.Fatal("the handler was not called")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Once closing, a new transaction is told to come back later: its
	// MAIL gets 421, or, on a connection idle when the shutdown began,
	// the next reply read is the 421 the server sent before closing it
	// (the reply to the RSET that ended a transaction begun before).
	deadline := time.Now().Add(guard)
	for {
		err := other.Mail("mad@betahaus.test", nil)
		if err == nil {
			err = other.Reset()
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code == 421 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MAIL FROM during shutdown: %v, want 421", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(h.block)
	if err := <-answered; err != nil {
		t.Errorf("the delivery in hand at shutdown: %v, want 250", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lmtp.sock")
	// A socket left by an earlier run is replaced.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	h := &recorder{}
	serve(t, "unix:"+path, h, nil)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode %v, want 0666 (the directory decides who reaches it)", fi.Mode().Perm())
	}
	_, err = deliver(t, client(t, "unix", path), "alex@indyhall.test", []string{bot}, message)
	if err != nil {
		t.Errorf("delivery over the socket: %v", err)
	}
	if n := len(h.messages()); n != 1 {
		t.Errorf("the handler got %d messages, want 1", n)
	}
}

func TestListenRefusesAFileThatIsNoSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lmtp.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Listen: "unix:" + path, Recipients: []string{bot}}, &recorder{})
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen = %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("the file was replaced")
	}
}

// A message over MaxMessageBytes is refused for good (552) without
// reaching the handler, and the connection goes on taking mail.
func TestMessageOverTheLimitIsRefused(t *testing.T) {
	h := &recorder{}
	s, _ := serveWith(t, Config{Listen: "127.0.0.1:0", Recipients: Recipients(bot, nil), MaxMessageBytes: 1024}, h)
	c := client(t, "tcp", s.Addr().String())
	_, err := deliver(t, c, "alex@indyhall.test", []string{bot}, message+strings.Repeat(strings.Repeat("x", 70)+"\r\n", 60))
	var se *smtp.SMTPError
	var lerr smtp.LMTPDataError
	code := 0
	switch {
	case errors.As(err, &lerr) && lerr[bot] != nil:
		code = lerr[bot].Code
	case errors.As(err, &se):
		code = se.Code
	}
	if code != 552 {
		t.Fatalf("a message over the limit: %v, want 552", err)
	}
	if n := len(h.messages()); n != 0 {
		t.Fatalf("the handler got %d messages, want none", n)
	}
	_, err = deliver(t, c, "alex@indyhall.test", []string{bot}, message)
	if got := codes(t, []string{bot}, err)[bot]; got != 250 {
		t.Errorf("the next message on the connection: %d, want 250", got)
	}
}
