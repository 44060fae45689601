package inbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// guard bounds every wait in these tests; it is never the thing measured.
const guard = 15 * time.Second

const (
	testUser = "visa@example.org"
	testPass = "s3cret"
)

// Capability sets of the test servers. imapserver advertises MOVE and
// UIDPLUS only when listed (or implied by IMAP4rev2), and IDLE always.
var (
	capsModern   = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	capsNoMove   = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}
	capsRFC3501  = imap.CapSet{imap.CapIMAP4rev1: {}}
	capsMoveOnly = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}
)

type serverOptions struct {
	caps       imap.CapSet // default capsModern
	noKeywords bool        // PERMANENTFLAGS without \*
	stripIdle  bool        // the proxy hides IDLE from CAPABILITY lines
	tls        string      // "", "implicit" or "starttls"
	oauth      *oauthAuth  // the server takes OAuth2 logins (see oauth_test.go)
}

// testServer is an imapmemserver on 127.0.0.1 behind a proxy that the test
// controls; the test's own client talks to the server directly.
type testServer struct {
	t         *testing.T
	opts      serverOptions
	user      *imapmemserver.User
	backend   string
	proxy     *proxy
	idling    chan struct{} // one signal each time a session starts IDLE
	clientTLS *tls.Config

	mu     sync.Mutex
	helper *imapclient.Client

	subsMu sync.Mutex
	subs   map[chan struct{}]bool // sessions in IDLE, see testSession.Idle
}

func newTestServer(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	if opts.caps == nil {
		opts.caps = capsModern
	}
	ts := &testServer{t: t, opts: opts, user: imapmemserver.NewUser(testUser, testPass), idling: make(chan struct{}, 100), subs: map[chan struct{}]bool{}}
	if err := ts.user.Create("INBOX", nil); err != nil { // NewUser creates no mailbox
		t.Fatal(err)
	}

	srvOpts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if opts.oauth != nil {
				return &oauthSession{testSession: &testSession{srv: ts}, auth: opts.oauth}, nil, nil
			}
			return &testSession{srv: ts}, nil, nil
		},
		Caps:         opts.caps,
		InsecureAuth: opts.tls == "",
		Logger:       log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.tls != "" {
		serverTLS, clientTLS := testCertificates(t)
		ts.clientTLS = clientTLS
		if opts.tls == "implicit" {
			ln = tls.NewListener(ln, serverTLS)
		} else {
			srvOpts.TLSConfig = serverTLS
		}
	}
	srv := imapserver.New(srvOpts)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ts.backend = ln.Addr().String()
	ts.proxy = newProxy(t, ts.backend, opts.stripIdle, opts.tls != "")
	t.Cleanup(func() {
		if ts.helper != nil {
			ts.helper.Close()
		}
	})
	return ts
}

// testSession is imapmemserver's session with the knobs these tests need.
type testSession struct {
	*imapmemserver.UserSession // nil until login
	srv                        *testServer
}

var _ imapserver.SessionIMAP4rev2 = (*testSession)(nil)

func (s *testSession) Login(username, password string) error {
	if err := s.srv.user.Login(username, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.srv.user)
	return nil
}

func (s *testSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.UserSession.Select(name, options)
	if err == nil && s.srv.opts.noKeywords {
		data.PermanentFlags = slices.DeleteFunc(data.PermanentFlags, func(f imap.Flag) bool { return f == imap.FlagWildcard })
	}
	return data, err
}

// Idle reports what happened since the last command, as Dovecot does
// (imapmemserver's own IDLE reports only changes queued after it has
// subscribed), tells the test that the session idles, and from then on
// reports every message the test appends.
//
// The order is what makes "idling" true: the session subscribes to the
// test's appends first, then flushes, then signals. (imapmemserver's IDLE
// subscribes only once it runs, so a message appended between a signal
// sent before it and its subscription was queued but never announced, and
// the watcher, with its hour-long poll interval, never came for it.)
func (s *testSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	appended := s.srv.subscribe()
	defer s.srv.unsubscribe(appended)
	for signalled := false; ; signalled = true {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		if !signalled {
			select {
			case s.srv.idling <- struct{}{}:
			default:
			}
		}
		// imapmemserver's IDLE reports changes made by others while it
		// runs; it ends at the test's next APPEND, which the Poll above
		// then reports, or when the client ends IDLE.
		next, quit := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(next)
			select {
			case <-appended:
			case <-stop:
			case <-quit:
			}
		}()
		err := s.UserSession.Idle(w, next)
		close(quit)
		if err != nil {
			return err
		}
		<-next // (imapmemserver's IDLE returns at once with no mailbox selected)
		select {
		case <-stop:
			return nil
		default:
		}
	}
}

// subscribe returns a channel that receives a value after each APPEND of the
// test's (tryAppend), once the message is in the mailbox.
func (ts *testServer) subscribe() chan struct{} {
	ch := make(chan struct{}, 1)
	ts.subsMu.Lock()
	defer ts.subsMu.Unlock()
	ts.subs[ch] = true
	return ch
}

func (ts *testServer) unsubscribe(ch chan struct{}) {
	ts.subsMu.Lock()
	defer ts.subsMu.Unlock()
	delete(ts.subs, ch)
}

// appended wakes every subscribed session.
func (ts *testServer) appended() {
	ts.subsMu.Lock()
	defer ts.subsMu.Unlock()
	for ch := range ts.subs {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// config is the watcher configuration for this server. PollInterval is long
// so that only IDLE, Poke or a reconnect can explain a prompt hand-over.
func (ts *testServer) config(logs *logBuffer) Config {
	tlsMode := ts.opts.tls
	if tlsMode == "" {
		tlsMode = "none"
	}
	return Config{
		Addr:             ts.proxy.addr(),
		TLS:              tlsMode,
		TLSConfig:        ts.clientTLS,
		Username:         testUser,
		Password:         testPass,
		ProcessedMailbox: "Processed",
		PollInterval:     time.Hour,
		IdleRestart:      10 * time.Minute,
		CommandTimeout:   guard,
		Logger:           logs.logger(),
	}
}

// waitIdling waits until some session starts IDLE.
func (ts *testServer) waitIdling(t *testing.T) {
	t.Helper()
	recv(t, ts.idling, "the watcher to start IDLE")
}

// client returns the test's own logged-in connection to the server.
func (ts *testServer) client(t *testing.T) *imapclient.Client {
	t.Helper()
	if ts.helper != nil {
		return ts.helper
	}
	opts := &imapclient.Options{TLSConfig: ts.clientTLS}
	var c *imapclient.Client
	var err error
	switch ts.opts.tls {
	case "implicit":
		c, err = imapclient.DialTLS(ts.backend, opts)
	case "starttls":
		c, err = imapclient.DialStartTLS(ts.backend, opts)
	default:
		c, err = imapclient.DialInsecure(ts.backend, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	ts.helper = c
	return c
}

// appendMsg APPENDs a message (RFC 3501 §6.3.11) and returns its UID.
func (ts *testServer) appendMsg(t *testing.T, mailbox string, raw []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	uid, err := ts.tryAppend(t, mailbox, raw, flags...)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// tryAppend is appendMsg for goroutines other than the test's.
func (ts *testServer) tryAppend(t *testing.T, mailbox string, raw []byte, flags ...imap.Flag) (imap.UID, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	cmd := ts.client(t).Append(mailbox, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, fmt.Errorf("APPEND to %s: %w", mailbox, err)
	}
	ts.appended()
	return data.UID, nil
}

// messages returns the flags of each message in mailbox, by UID; nil if the
// mailbox does not exist.
func (ts *testServer) messages(t *testing.T, mailbox string) map[imap.UID][]imap.Flag {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	c := ts.client(t)
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID][]imap.Flag{}
	uids := data.AllUIDs()
	if len(uids) == 0 {
		return out
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		out[m.UID] = m.Flags
	}
	return out
}

// uidValidity returns the UIDVALIDITY of mailbox.
func (ts *testServer) uidValidity(t *testing.T, mailbox string) uint32 {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	data, err := ts.client(t).Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return data.UIDValidity
}

// proxy forwards TCP connections to the server and lets the test cut them,
// freeze them (drop everything the server says) or read the commands sent.
type proxy struct {
	ln        net.Listener
	backend   string
	stripIdle bool
	raw       bool          // TLS passes through: no line handling
	accepts   chan struct{} // one per accepted connection
	conts     chan struct{} // one per continuation request ("+ ...") passed to the client

	mu    sync.Mutex
	conns map[*proxyConn]bool
	cmds  []string

	// rate throttles what the server sends, in bytes per second; 0 means
	// no limit.
	rate atomic.Int64
}

type proxyConn struct {
	client, server net.Conn
	frozen         atomic.Bool
}

// slowWrite writes b to w at rate bytes per second (0: at once), in small
// pieces, as a throttled link delivers it: bytes keep arriving.
func slowWrite(w net.Conn, b []byte, rate int64) error {
	if rate <= 0 {
		_, err := w.Write(b)
		return err
	}
	piece := max(int(rate/20), 1) // at most 50 ms worth at a time
	for len(b) > 0 {
		n := min(piece, len(b))
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		time.Sleep(time.Duration(int64(n) * int64(time.Second) / rate))
	}
	return nil
}

func newProxy(t *testing.T, backend string, stripIdle, raw bool) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, backend: backend, stripIdle: stripIdle, raw: raw, accepts: make(chan struct{}, 100), conts: make(chan struct{}, 100), conns: map[*proxyConn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.dropAll()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.backend)
		if err != nil {
			client.Close()
			continue
		}
		pc := &proxyConn{client: client, server: server}
		p.mu.Lock()
		p.conns[pc] = true
		p.mu.Unlock()
		p.accepts <- struct{}{}
		go p.pipe(pc, pc.client, pc.server, p.fromClient)
		go p.pipe(pc, pc.server, pc.client, p.fromServer)
	}
}

// pipe copies one direction line by line through edit (which may drop or
// change a line) and closes both sides when either ends.
func (p *proxy) pipe(pc *proxyConn, from, to net.Conn, edit func(*proxyConn, []byte) []byte) {
	defer p.drop(pc)
	if p.raw {
		io.Copy(to, from)
		return
	}
	r := bufio.NewReader(from)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			rate := int64(0)
			if to == pc.client {
				rate = p.rate.Load()
			}
			if werr := slowWrite(to, edit(pc, line), rate); werr != nil {
				return
			}
			if to == pc.client && bytes.HasPrefix(line, []byte("+ ")) && !pc.frozen.Load() {
				select {
				case p.conts <- struct{}{}:
				default:
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) fromClient(_ *proxyConn, line []byte) []byte {
	p.mu.Lock()
	p.cmds = append(p.cmds, strings.TrimRight(string(line), "\r\n"))
	p.mu.Unlock()
	return line
}

var idleCap = regexp.MustCompile(` IDLE\b`)

func (p *proxy) fromServer(pc *proxyConn, line []byte) []byte {
	if pc.frozen.Load() {
		return nil
	}
	if p.stripIdle && bytes.Contains(line, []byte("CAPABILITY ")) {
		return idleCap.ReplaceAll(line, nil)
	}
	return line
}

func (p *proxy) drop(pc *proxyConn) {
	pc.client.Close()
	pc.server.Close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// dropAll closes every open connection, as a server restart would.
func (p *proxy) dropAll() {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		p.drop(pc)
	}
}

// freeze makes the open connections silent: the server's answers are lost,
// as over a dead link that TCP has not noticed yet.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		pc.frozen.Store(true)
	}
}

func (p *proxy) drainAccepts() { drain(p.accepts) }
func (p *proxy) drainConts()   { drain(p.conts) }

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// commands returns the command lines the watcher sent so far, in order.
func (p *proxy) commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.cmds)
}

// sent reports whether the watcher sent a command matching re (after the tag).
func (p *proxy) sent(re string) bool {
	rx := regexp.MustCompile(`^\S+ ` + re)
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.ContainsFunc(p.cmds, rx.MatchString)
}

// testHandler records each Handle call and answers with decide (Handled by
// default). It fails the test if two calls ever overlap.
type testHandler struct {
	t        *testing.T
	calls    chan Message
	decide   func(ctx context.Context, m Message) Disposition
	inflight atomic.Int32
}

func newTestHandler(t *testing.T, decide func(ctx context.Context, m Message) Disposition) *testHandler {
	return &testHandler{t: t, calls: make(chan Message, 100), decide: decide}
}

func (h *testHandler) Handle(ctx context.Context, m Message) Disposition {
	if h.inflight.Add(1) != 1 {
		h.t.Errorf("Handle called for UID %d while another call was running", m.UID)
	}
	defer h.inflight.Add(-1)
	h.calls <- m
	if h.decide == nil {
		return Disposition{Action: Handled}
	}
	return h.decide(ctx, m)
}

// running is a watcher started by start.
type running struct {
	w      *Watcher
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// start runs a watcher until the test ends; waitReady says whether to wait
// for Ready first.
func start(t *testing.T, cfg Config, h Handler, waitReady bool) *running {
	t.Helper()
	return startWatcher(t, New(cfg, h), waitReady)
}

// startWatcher is start with a watcher the test made (and changed).
func startWatcher(t *testing.T, w *Watcher, waitReady bool) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- r.w.Run(ctx) }()
	t.Cleanup(func() {
		if err := r.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if waitReady {
		recv(t, r.w.Ready(), "Ready")
	}
	return r
}

// stop cancels Run and returns its result.
func (r *running) stop(t *testing.T) error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(guard):
			r.err = fmt.Errorf("Run did not return within %v of cancel", guard)
		}
	})
	return r.err
}

// logBuffer collects the watcher's log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogBuffer(t *testing.T) *logBuffer {
	l := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("watcher log:\n%s", l.String())
		}
	})
	return l
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recv receives from ch within the guard time.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually waits, within the guard time, until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testMessage is a small command email, distinct for each n.
func testMessage(n int) []byte {
	return fmt.Appendf(nil, "From: Alice <alice@space-a.example>\r\n"+
		"To: visa@example.org\r\n"+
		"Subject: verify %d\r\n"+
		"Message-ID: <cmd-%d@space-a.example>\r\n"+
		"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n"+
		"\r\n"+
		"verify visitor%d@example.net\r\n", n, n, n)
}

// testCertificates returns a server config with a fresh self-signed
// certificate for 127.0.0.1 and a client config that trusts it.
func testCertificates(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool}
}
