package smtpsend

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// received is one message as the test server got it.
type received struct {
	from string
	to   []string
	data []byte
	tls  bool   // the session was encrypted when MAIL was given
	user string // the authenticated user, if any
}

// backend is an in-process SMTP server backend that records what it is sent
// and can be told to refuse a command.
type backend struct {
	mu       sync.Mutex
	sessions int
	msgs     []received
	failAt   string // "MAIL", "RCPT" or "DATA"
	failCode int
	password string        // if set, AUTH PLAIN is required with user "visa"
	inData   chan struct{} // if set, Data signals here, then waits for release
	release  chan struct{}
	oauth    *oauthBackend // if set, AUTH is by OAuth2 (see oauth2_test.go)
}

func (b *backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.mu.Lock()
	b.sessions++
	b.mu.Unlock()
	return &session{b: b, conn: c}, nil
}

// fail returns the configured refusal for cmd, if any.
func (b *backend) fail(cmd string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAt != cmd {
		return nil
	}
	return &gosmtp.SMTPError{
		Code:         b.failCode,
		EnhancedCode: gosmtp.EnhancedCode{b.failCode / 100, 0, 0},
		Message:      "refused by test at " + cmd,
	}
}

func (b *backend) setFail(cmd string, code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failAt, b.failCode = cmd, code
}

func (b *backend) counts() (sessions, msgs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions, len(b.msgs)
}

func (b *backend) last() received {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) == 0 {
		return received{}
	}
	return b.msgs[len(b.msgs)-1]
}

type session struct {
	b    *backend
	conn *gosmtp.Conn
	user string
	cur  received
}

func (s *session) AuthMechanisms() []string {
	if s.b.oauth != nil {
		return s.b.oauth.mechs
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.b.oauth != nil {
		return s.b.oauth.server(s, mech)
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "visa" || password != s.b.password {
			return gosmtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if (s.b.password != "" || s.b.oauth != nil) && s.user == "" {
		return gosmtp.ErrAuthRequired
	}
	if err := s.b.fail("MAIL"); err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = received{from: from, tls: isTLS, user: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if err := s.b.fail("RCPT"); err != nil {
		return err
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	s.b.mu.Lock()
	inData, release := s.b.inData, s.b.release
	s.b.mu.Unlock()
	if inData != nil {
		inData <- struct{}{}
		<-release
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.b.fail("DATA"); err != nil {
		return err
	}
	s.cur.data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

// lockedBuffer collects the server's protocol log, written from its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testServer is a running go-smtp server on a loopback address.
type testServer struct {
	be    *backend
	srv   *gosmtp.Server
	host  string
	port  int
	debug *lockedBuffer
}

type serverOpts struct {
	addr     string      // listen address; "127.0.0.1:0" if empty
	starttls *tls.Config // offer STARTTLS with this config
	implicit *tls.Config // speak TLS from the first byte
}

func startServer(t *testing.T, be *backend, o serverOpts) *testServer {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if o.implicit != nil {
		l = tls.NewListener(l, o.implicit)
	}
	srv := gosmtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = o.implicit == nil && o.starttls == nil
	srv.TLSConfig = o.starttls
	srv.ErrorLog = log.New(io.Discard, "", 0)
	debug := &lockedBuffer{}
	srv.Debug = debug
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	host, portStr, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(portStr)
	return &testServer{be: be, srv: srv, host: host, port: port, debug: debug}
}

// plainConfig is a Sender config for a test server without TLS.
func (ts *testServer) plainConfig() Config {
	return Config{Host: ts.host, Port: ts.port, TLS: "none", HeloName: "bot.test"}
}

func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	s := New(cfg)
	t.Cleanup(func() { s.Close() })
	return s
}

// reply builds a rendered reply as the outbox stores it: CRLF, an
// Auto-Submitted and an X-Loop header, and a CSV attachment in base64 that is
// long enough to need several DATA chunks.
func reply(t *testing.T) []byte {
	t.Helper()
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	csv := make([]byte, 150<<10)
	for i := range csv {
		csv[i] = byte(rng.IntN(256))
	}
	enc := base64.StdEncoding.EncodeToString(csv)
	var b strings.Builder
	for _, h := range []string{
		"From: Coworking Visa <visa@example.org>",
		"To: manager@space.example",
		"Subject: Re: list members",
		"Message-ID: <reply-1@example.org>",
		"In-Reply-To: <cmd-1@space.example>",
		"References: <cmd-0@space.example> <cmd-1@space.example>",
		"Auto-Submitted: auto-replied",
		"X-Loop: visa@example.org",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="b1"`,
		"",
		"--b1",
		"Content-Type: text/plain; charset=utf-8",
		"",
		"> list members",
		"OK: 2 members.",
		".a line that starts with a dot",
		"..and one with two",
		"",
		"--b1",
		`Content-Type: text/csv; name="members.csv"`,
		"Content-Transfer-Encoding: base64",
		`Content-Disposition: attachment; filename="members.csv"`,
		"",
	} {
		b.WriteString(h + "\r\n")
	}
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	return []byte(b.String())
}

func TestSendDeliversBytes(t *testing.T) {
	msg := reply(t)
	tests := []struct {
		name string
		raw  []byte
		want []byte
	}{
		{"CRLF message unchanged", msg, msg},
		{"bare LF turned into CRLF", bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), msg},
		{"missing final line break added", []byte("Subject: x\r\n\r\nbody"), []byte("Subject: x\r\n\r\nbody\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &backend{}, serverOpts{})
			s := newSender(t, ts.plainConfig())
			to := []string{"manager@space.example", "second@space.example"}
			if err := s.Send(context.Background(), "visa@example.org", to, tt.raw); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := ts.be.last()
			if got.from != "visa@example.org" || strings.Join(got.to, ",") != strings.Join(to, ",") {
				t.Errorf("envelope = %q -> %q, want visa@example.org -> %q", got.from, got.to, to)
			}
			if !bytes.Equal(got.data, tt.want) {
				t.Errorf("data differs: got %d bytes, want %d; first difference at %d",
					len(got.data), len(tt.want), firstDiff(got.data, tt.want))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestSendNullSender(t *testing.T) {
	ts := startServer(t, &backend{}, serverOpts{})
	s := newSender(t, ts.plainConfig())
	if err := s.Send(context.Background(), "", []string{"postmaster@space.example"}, reply(t)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := ts.be.last(); got.from != "" || len(got.data) == 0 {
		t.Errorf("server got from=%q with %d bytes, want the null sender and the message", got.from, len(got.data))
	}
	if !strings.Contains(ts.debug.String(), "MAIL FROM:<>") {
		t.Errorf("protocol log has no MAIL FROM:<>:\n%s", ts.debug)
	}
}

func TestSendReusesConnection(t *testing.T) {
	ts := startServer(t, &backend{}, serverOpts{})
	s := newSender(t, ts.plainConfig())
	for i := range 3 {
		raw := fmt.Appendf(nil, "Subject: %d\r\n\r\nbody %d\r\n", i, i)
		if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, raw); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if sessions, msgs := ts.be.counts(); sessions != 1 || msgs != 3 {
		t.Errorf("server saw %d sessions and %d messages, want 1 and 3", sessions, msgs)
	}
	// Right after a message was taken the session is known to be fresh.
	if got := strings.Count(ts.debug.String(), "RSET"); got != 0 {
		t.Errorf("client sent RSET %d times in a burst, want none", got)
	}
	// A connection left idle is checked with RSET first.
	s.lastOK = s.lastOK.Add(-freshFor)
	if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, []byte("Subject: 4\r\n\r\nbody\r\n")); err != nil {
		t.Fatalf("Send after a pause: %v", err)
	}
	if got := strings.Count(ts.debug.String(), "RSET"); got != 1 {
		t.Errorf("client sent RSET %d times after a pause, want 1", got)
	}
	if sessions, msgs := ts.be.counts(); sessions != 1 || msgs != 4 {
		t.Errorf("server saw %d sessions and %d messages, want 1 and 4", sessions, msgs)
	}
}

func TestSendRedialsAfterServerRestart(t *testing.T) {
	first := startServer(t, &backend{}, serverOpts{})
	s := newSender(t, first.plainConfig())
	raw := []byte("Subject: hi\r\n\r\nbody\r\n")
	if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, raw); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	first.srv.Close()

	addr := net.JoinHostPort(first.host, strconv.Itoa(first.port))
	second := startServer(t, &backend{}, serverOpts{addr: addr})
	if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, raw); err != nil {
		t.Fatalf("Send after restart: %v", err)
	}
	if sessions, msgs := second.be.counts(); sessions != 1 || msgs != 1 {
		t.Errorf("restarted server saw %d sessions and %d messages, want 1 and 1", sessions, msgs)
	}
}

func TestSendErrorClassification(t *testing.T) {
	tests := []struct {
		at        string
		code      int
		permanent bool
		step      string
	}{
		{"MAIL", 451, false, "smtp MAIL FROM:<visa@example.org>: 451"},
		{"MAIL", 550, true, "smtp MAIL FROM:<visa@example.org>: 550"},
		{"MAIL", 530, false, "smtp MAIL FROM:<visa@example.org>: 530"},
		{"RCPT", 451, false, "smtp RCPT TO:<gone@space.example>: 451"},
		{"RCPT", 550, true, "smtp RCPT TO:<gone@space.example>: 550"},
		{"DATA", 451, false, "smtp DATA (end of message): 451"},
		{"DATA", 552, true, "smtp DATA (end of message): 552"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.at, tt.code), func(t *testing.T) {
			be := &backend{}
			ts := startServer(t, be, serverOpts{})
			s := newSender(t, ts.plainConfig())
			be.setFail(tt.at, tt.code)

			err := s.Send(context.Background(), "visa@example.org", []string{"gone@space.example"}, reply(t))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if !strings.HasPrefix(err.Error(), tt.step) {
				t.Errorf("error %q does not start with %q", err, tt.step)
			}
			var te *textproto.Error
			if !errors.As(err, &te) || te.Code != tt.code {
				t.Errorf("errors.As(%v, *textproto.Error) gives %v, want code %d", err, te, tt.code)
			}

			// The session survives a refusal: the next message goes
			// out on the same connection.
			be.setFail("", 0)
			if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t)); err != nil {
				t.Fatalf("Send after refusal: %v", err)
			}
			if sessions, msgs := be.counts(); sessions != 1 || msgs != 1 {
				t.Errorf("server saw %d sessions and %d messages, want 1 and 1", sessions, msgs)
			}
		})
	}
}

func TestSendNetworkErrorsAreTemporary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		cfg  Config
		ctx  context.Context
	}{
		{"closed port", Config{Host: "127.0.0.1", Port: closedPort, TLS: "none"}, context.Background()},
		{"implicit TLS to a closed port", Config{Host: "127.0.0.1", Port: closedPort}, context.Background()},
		{"cancelled before start", Config{Host: "127.0.0.1", Port: closedPort, TLS: "none"}, cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSender(t, tt.cfg)
			err := s.Send(tt.ctx, "visa@example.org", []string{"a@space.example"}, []byte("Subject: x\r\n\r\nx\r\n"))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = true, want false", err)
			}
		})
	}
}

// scriptedServer answers every connection with greeting, then with reply to
// every line the client sends: a server that refuses the session itself.
func scriptedServer(t *testing.T, greeting, reply string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tp := textproto.NewConn(c)
				if tp.PrintfLine("%s", greeting) != nil {
					return
				}
				for {
					if _, err := tp.ReadLine(); err != nil {
						return
					}
					if tp.PrintfLine("%s", reply) != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func TestSendSessionRefusalsAreTemporary(t *testing.T) {
	tests := []struct {
		name            string
		greeting, reply string
	}{
		{"greeting 554", "554 5.7.1 no service for you", "554 5.7.1 no"},
		{"EHLO and HELO refused", "220 mx.test ESMTP", "550 5.7.1 go away"},
		{"closing at once", "421 4.3.2 shutting down", "421 4.3.2 bye"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := scriptedServer(t, tt.greeting, tt.reply)
			s := newSender(t, Config{Host: "127.0.0.1", Port: port, TLS: "none"})
			err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, []byte("Subject: x\r\n\r\nx\r\n"))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = true, want false: the session, not the message, was refused", err)
			}
		})
	}
}

func TestSendBadEnvelope(t *testing.T) {
	tests := []struct {
		name string
		from string
		to   []string
	}{
		{"no recipient", "visa@example.org", nil},
		{"empty recipient", "visa@example.org", []string{""}},
		{"command injection", "visa@example.org", []string{"a@x.example>\r\nRCPT TO:<b@x.example"}},
		{"space in sender", "visa @example.org", []string{"a@x.example"}},
		{"angle bracket", "<visa@example.org>", []string{"a@x.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &backend{}, serverOpts{})
			s := newSender(t, ts.plainConfig())
			err := s.Send(context.Background(), tt.from, tt.to, []byte("Subject: x\r\n\r\nx\r\n"))
			if !errors.Is(err, ErrBadEnvelope) || !IsPermanent(err) {
				t.Errorf("Send = %v, want a permanent ErrBadEnvelope", err)
			}
			if sessions, _ := ts.be.counts(); sessions != 0 {
				t.Errorf("server saw %d sessions, want none", sessions)
			}
		})
	}
}

func TestSendAuthPlainOnLoopback(t *testing.T) {
	tests := []struct {
		name     string
		listen   string
		password string
		wantErr  bool
	}{
		{"127.0.0.1", "127.0.0.1:0", "s3cret", false},
		{"elsewhere in 127/8", "127.0.0.2:0", "s3cret", false},
		{"wrong password", "127.0.0.1:0", "wrong", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &backend{password: "s3cret"}
			ts := startServer(t, be, serverOpts{addr: tt.listen})
			cfg := ts.plainConfig()
			cfg.Username, cfg.Password = "visa", tt.password
			s := newSender(t, cfg)
			err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t))
			if tt.wantErr {
				if err == nil {
					t.Fatal("Send succeeded with a wrong password")
				}
				// A refused login is a configuration problem: the
				// message must wait, not be dropped.
				if IsPermanent(err) {
					t.Errorf("IsPermanent(%v) = true, want false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := be.last().user; got != "visa" {
				t.Errorf("message sent as user %q, want visa", got)
			}
		})
	}
}

func TestSendTLS(t *testing.T) {
	serverTLS := &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	tests := []struct {
		name       string
		mode       string
		opts       serverOpts
		skipVerify bool
		wantErr    bool
	}{
		{"starttls", "starttls", serverOpts{starttls: serverTLS}, true, false},
		{"implicit", "implicit", serverOpts{implicit: serverTLS}, true, false},
		{"starttls, certificate not trusted", "starttls", serverOpts{starttls: serverTLS}, false, true},
		{"implicit, certificate not trusted", "implicit", serverOpts{implicit: serverTLS}, false, true},
		{"starttls required, server has none", "starttls", serverOpts{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &backend{password: "s3cret"}
			ts := startServer(t, be, tt.opts)
			s := newSender(t, Config{
				Host: ts.host, Port: ts.port, TLS: tt.mode,
				Username: "visa", Password: "s3cret",
				InsecureSkipVerify: tt.skipVerify,
			})
			err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t))
			if tt.wantErr {
				if err == nil {
					t.Fatal("Send succeeded, want an error")
				}
				if IsPermanent(err) {
					t.Errorf("IsPermanent(%v) = true, want false", err)
				}
				if _, msgs := be.counts(); msgs != 0 {
					t.Errorf("server got %d messages, want none", msgs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := be.last(); !got.tls || got.user != "visa" {
				t.Errorf("message went with tls=%v user=%q, want TLS and user visa", got.tls, got.user)
			}
		})
	}
}

func TestSendCancelledMidway(t *testing.T) {
	be := &backend{inData: make(chan struct{}), release: make(chan struct{})}
	ts := startServer(t, be, serverOpts{})
	cfg := ts.plainConfig()
	cfg.Timeout = time.Hour // only the cancellation can end the wait
	s := newSender(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- s.Send(ctx, "visa@example.org", []string{"a@space.example"}, reply(t))
	}()
	<-be.inData // the server holds the DATA reply back
	cancel()
	err := <-errc
	close(be.release)

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	if IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want false", err)
	}

	// The interrupted connection is dropped; the next send dials afresh.
	be.mu.Lock()
	be.inData = nil
	be.mu.Unlock()
	if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t)); err != nil {
		t.Fatalf("Send after cancel: %v", err)
	}
	if sessions, _ := be.counts(); sessions != 2 {
		t.Errorf("server saw %d sessions, want 2", sessions)
	}
}

func TestCloseThenSendRedials(t *testing.T) {
	ts := startServer(t, &backend{}, serverOpts{})
	s := newSender(t, ts.plainConfig())
	raw := []byte("Subject: x\r\n\r\nx\r\n")
	for i := range 2 {
		if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, raw); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close without a connection: %v", err)
	}
	if sessions, msgs := ts.be.counts(); sessions != 2 || msgs != 2 {
		t.Errorf("server saw %d sessions and %d messages, want 2 and 2", sessions, msgs)
	}
	if got := strings.Count(ts.debug.String(), "QUIT"); got != 2 {
		t.Errorf("client sent QUIT %d times, want 2", got)
	}
}

// selfSigned makes a certificate for 127.0.0.1 signed by itself.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// dialogue is a hand-written SMTP server that checks how the transaction
// is sent. Offering PIPELINING, it reads the whole group MAIL … DATA
// before it answers any of it, so a client that waited for a reply in
// between would stall; without, it notes every command that arrived
// before the reply to the one before it.
type dialogue struct {
	pipelining bool
	rcptReply  string // the reply to each RCPT
	dataReply  string // the reply to DATA

	mu       sync.Mutex
	early    []string // commands sent before the previous reply
	messages int      // messages received (DATA … ".")
	closed   chan struct{}
}

func (d *dialogue) start(t *testing.T) int {
	t.Helper()
	d.closed = make(chan struct{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer close(d.closed)
		defer c.Close()
		d.serve(textproto.NewConn(c))
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func (d *dialogue) serve(tp *textproto.Conn) {
	say := func(lines ...string) bool {
		for _, l := range lines {
			if tp.PrintfLine("%s", l) != nil {
				return false
			}
		}
		return true
	}
	read := func() (string, bool) {
		l, err := tp.ReadLine()
		if err == nil && !d.pipelining && tp.R.Buffered() > 0 {
			d.mu.Lock()
			d.early = append(d.early, l)
			d.mu.Unlock()
		}
		return strings.ToUpper(l), err == nil
	}
	if !say("220 dialogue.test ESMTP") {
		return
	}
	for {
		l, ok := read()
		if !ok {
			return
		}
		var replies []string
		switch {
		case strings.HasPrefix(l, "EHLO"):
			replies = []string{"250-dialogue.test", "250 8BITMIME"}
			if d.pipelining {
				replies = []string{"250-dialogue.test", "250-PIPELINING", "250 8BITMIME"}
			}
		case strings.HasPrefix(l, "MAIL"):
			replies = []string{"250 2.1.0 ok"}
			for d.pipelining {
				if l, ok = read(); !ok {
					return
				}
				if l == "DATA" {
					break
				}
				replies = append(replies, d.rcptReply)
			}
			if d.pipelining {
				replies = append(replies, d.dataReply)
			}
		case strings.HasPrefix(l, "RCPT"):
			replies = []string{d.rcptReply}
		case l == "DATA":
			replies = []string{d.dataReply}
		case l == "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			replies = []string{"250 2.0.0 ok"}
		}
		if !say(replies...) {
			return
		}
		if strings.HasPrefix(replies[len(replies)-1], "354") {
			if _, err := tp.ReadDotBytes(); err != nil {
				return
			}
			d.mu.Lock()
			d.messages++
			d.mu.Unlock()
			if !say("250 2.0.0 queued") {
				return
			}
		}
	}
}

func TestSendPipelinesWhenOffered(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("PIPELINING offered: %v", pipelining), func(t *testing.T) {
			d := &dialogue{pipelining: pipelining, rcptReply: "250 2.1.5 ok", dataReply: "354 go ahead"}
			port := d.start(t)
			// Short, so that a client waiting for a reply the pipelining
			// server gives only after DATA fails rather than hangs.
			s := newSender(t, Config{Host: "127.0.0.1", Port: port, TLS: "none", Timeout: 3 * time.Second})
			for range 3 {
				if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example", "b@space.example"}, reply(t)); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			s.Close()
			<-d.closed
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.messages != 3 {
				t.Errorf("server received %d messages, want 3", d.messages)
			}
			if len(d.early) > 0 {
				t.Errorf("commands sent before the reply to the one before them, to a server without PIPELINING: %q", d.early)
			}
		})
	}
}

// A server that answers DATA with 354 although a recipient was refused
// (as a pipelined group lets it) must not get the message: it would go to
// the recipients it took, while Send reports a failure and the message is
// retried or dropped for all of them.
func TestSendPipelinedRefusalSendsNothing(t *testing.T) {
	d := &dialogue{pipelining: true, rcptReply: "550 5.1.1 no such user", dataReply: "354 go ahead"}
	port := d.start(t)
	s := newSender(t, Config{Host: "127.0.0.1", Port: port, TLS: "none", Timeout: 3 * time.Second})
	err := s.Send(context.Background(), "visa@example.org", []string{"gone@space.example"}, reply(t))
	if err == nil {
		t.Fatal("Send succeeded, want the refusal of the recipient")
	}
	if !IsPermanent(err) || !strings.HasPrefix(err.Error(), "smtp RCPT TO:<gone@space.example>: 550") {
		t.Errorf("error %q (permanent %v), want the permanent 550 of RCPT", err, IsPermanent(err))
	}
	select {
	case <-d.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was kept open after a DATA that may not be used")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.messages != 0 {
		t.Errorf("server received %d messages, want none", d.messages)
	}
}
