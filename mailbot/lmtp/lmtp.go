// Package lmtp is the bot's own LMTP server (RFC 2033), as Mailman 3 takes
// its mail: the mail server hands each message for the bot's address
// straight to the pipeline, with no mailbox in between, and hears back for
// each recipient whether it was taken.
//
// A message is acknowledged (250) only once the handler has committed what
// it did with it: a process that dies before leaves the delivery
// unanswered, and the mail server delivers it again later, as it does
// after any 4xx (RFC 5321 §4.2.5). The handler's exactly-once record makes
// a second delivery of a message it took harmless. A message the handler
// leaves for later (a store that cannot be written, a DNS that does not
// answer, the circuit breaker) gets a 4xx and comes back at the server's
// next retry.
//
// Trust is the handler's business, as for mail read over IMAP: the
// Authentication-Results the mail server's milters stamped are in the
// message. Whoever can connect to the listener can hand over mail as the
// mail server would, so it belongs on loopback or on a unix socket only
// the mail server reaches.
package lmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
)

// Handler handles one delivered message and says what became of it:
// package mailbot's Bot.Handle. Its effects must be committed when it
// returns.
type Handler interface {
	Handle(ctx context.Context, raw []byte) inbox.Disposition
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, raw []byte) inbox.Disposition

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, raw []byte) inbox.Disposition { return f(ctx, raw) }

// Config says where to listen and what to take.
type Config struct {
	// Listen is host:port, or unix:/path for a unix socket (made 0666, as
	// Dovecot makes its own: the directory it is in decides who reaches
	// it).
	Listen string
	// Recipients are the addresses taken (the bot's and its aliases),
	// compared without regard to case; mail to any other is refused at
	// RCPT (RFC 2033 §4.2), before its data is sent.
	Recipients []string
	// MaxMessageBytes refuses larger messages at DATA (default 32 MiB).
	// The handler reads only the header of a message over its own limit
	// and answers it, so this only bounds memory.
	MaxMessageBytes int64
	// Keep stores a message the handler quarantined, which has no mailbox
	// to go to here; it returns where. A failure answers 4xx, so the mail
	// server keeps the message. nil keeps nothing.
	Keep func(raw []byte) (string, error)
	// Hostname is the name in the greeting; os.Hostname() by default.
	Hostname string
	// Timeout bounds the wait for the client's next line (default 5m, as
	// RFC 5321 §4.5.3.2.7 asks of a server).
	Timeout time.Duration
	Logger  *slog.Logger
}

// DefaultMaxMessageBytes is Config.MaxMessageBytes' default.
const DefaultMaxMessageBytes = 32 << 20

// Server takes deliveries for the bot over LMTP.
type Server struct {
	cfg  Config
	h    Handler
	rcpt map[string]bool
	log  *slog.Logger
	ln   net.Listener
	srv  *smtp.Server

	mu      sync.Mutex
	closing bool
	inHand  int            // deliveries being read or handled
	conns   map[*conn]bool // open connections
}

// New makes a server for cfg that hands messages to h. Listen opens it.
func New(cfg Config, h Handler) *Server {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, h: h, rcpt: map[string]bool{}, log: cfg.Logger, conns: map[*conn]bool{}}
	for _, r := range cfg.Recipients {
		s.rcpt[strings.ToLower(r)] = true
	}
	return s
}

// Listen opens the listener: a port, or a unix socket (a socket left by a
// previous run is replaced; any other file there is an error).
func (s *Server) Listen() error {
	network, addr := "tcp", s.cfg.Listen
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode().Type() != fs.ModeSocket {
				return fmt.Errorf("lmtp: %s exists and is not a socket", path)
			}
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("lmtp: %w", err)
			}
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("lmtp: %w", err)
	}
	if network == "unix" {
		if err := os.Chmod(addr, 0o666); err != nil {
			ln.Close()
			return fmt.Errorf("lmtp: %w", err)
		}
	}
	s.ln = listener{ln, s}
	return nil
}

// Addr is the address listened on, once Listen returned.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// shutdownGrace is how long Run waits, once ctx is done, for deliveries in
// hand to be answered.
const shutdownGrace = 30 * time.Second

// Run serves deliveries until ctx is done (Listen first). Then it takes no
// new message, finishes the ones in hand and answers them, and closes the
// connections; it returns nil.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	srv := smtp.NewServer(backend{s})
	srv.LMTP = true
	srv.Domain = s.cfg.Hostname
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout, srv.WriteTimeout = s.cfg.Timeout, s.cfg.Timeout
	srv.ErrorLog = errorLog{s.log}
	s.srv = srv
	s.log.Info("lmtp listening", "addr", s.cfg.Listen)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(s.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("lmtp: %w", err)
	case <-ctx.Done():
	}
	// Take no new message: every read from now on fails, which ends each
	// connection once the reply to what it delivered has been written (a
	// connection reads only after answering). A delivery cut off before
	// its message was handled was not taken, and comes again.
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	deadline := time.Now().Add(shutdownGrace)
	for !s.drained() {
		if time.Now().After(deadline) {
			s.log.Warn("lmtp: deliveries still in hand at shutdown")
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Close()
	<-served
	if path, ok := strings.CutPrefix(s.cfg.Listen, "unix:"); ok {
		os.Remove(path)
	}
	s.log.Info("lmtp stopped")
	return nil
}

// begin counts a delivery in hand; false once the server is closing.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inHand++
	return true
}

// end counts a delivery done.
func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inHand--
}

// drained reports whether no delivery is in hand and no connection open.
func (s *Server) drained() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inHand == 0 && len(s.conns) == 0
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// listener tracks the connections it accepts, for shutdown.
type listener struct {
	net.Listener
	s *Server
}

func (l listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, s: l.s}
	l.s.mu.Lock()
	l.s.conns[c] = true
	closing := l.s.closing
	l.s.mu.Unlock()
	if closing {
		c.SetReadDeadline(time.Now())
	}
	return c, nil
}

// conn is an accepted connection whose reads fail once the server is
// closing.
type conn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *conn) Read(b []byte) (int, error) {
	if c.s.isClosing() {
		return 0, os.ErrDeadlineExceeded
	}
	return c.Conn.Read(b)
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// errClosing answers during shutdown: the mail server tries again later.
var errClosing = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down, try again later"}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s}, nil
}

// session is one LMTP connection's transaction state (RFC 2033 §4.1).
type session struct {
	s    *Server
	from string
	to   []string
}

var _ smtp.LMTPSession = (*session)(nil)

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.isClosing() {
		return errClosing
	}
	ss.from = from
	return nil
}

// Rcpt takes the bot's addresses only (RFC 2033 §4.2: a recipient the
// server does not serve is refused here, and the mail server bounces the
// message for it alone).
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.s.rcpt[strings.ToLower(to)] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such recipient here"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	return ss.deliver(r, nil)
}

// LMTPData hands the message to the handler once, whatever the number of
// recipients (the bot and an alias are one mailbox), and answers every
// recipient with what became of it.
func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	return ss.deliver(r, status)
}

func (ss *session) deliver(r io.Reader, status smtp.StatusCollector) error {
	if !ss.s.begin() {
		return errClosing
	}
	defer ss.s.end()
	// The final delivery records the envelope sender (RFC 5321 §4.4), as
	// Dovecot does: the pipeline tells bounces by it. The message is read
	// in after it, not copied behind it.
	var b bytes.Buffer
	b.WriteString("Return-Path: <" + ss.from + ">\r\n")
	if _, err := b.ReadFrom(r); err != nil {
		return err // too large, or the connection failed: go-smtp answers
	}
	raw := b.Bytes()
	d := ss.s.h.Handle(context.Background(), raw)
	reply := ss.s.answer(d, raw)
	ss.s.log.Debug("lmtp: delivery answered", "from", ss.from, "to", ss.to, "action", d.Action, "reply", replyText(reply))
	if status != nil {
		for _, to := range ss.to {
			status.SetStatus(to, reply)
		}
	}
	return reply
}

// answer is the reply to a delivery the handler decided on: nil (250) once
// the message was taken, a 4xx when it is to come again.
func (s *Server) answer(d inbox.Disposition, raw []byte) error {
	switch d.Action {
	case inbox.Handled, inbox.SetAside:
		return nil
	case inbox.Quarantine:
		if s.cfg.Keep == nil {
			s.log.Error("lmtp: message quarantined and not kept", "reason", d.Reason)
			return nil
		}
		where, err := s.cfg.Keep(raw)
		if err != nil {
			s.log.Error("lmtp: a quarantined message could not be kept: the mail server keeps it and delivers it again", "error", err)
			return tempFail("could not keep the message: " + err.Error())
		}
		s.log.Warn("lmtp: message quarantined", "file", where, "reason", d.Reason)
		return nil
	}
	return tempFail(d.Reason)
}

// tempFail is a 451 (RFC 3463 4.3.0): the mail server keeps the message
// and tries again later.
func tempFail(why string) error {
	why = strings.Join(strings.Fields(why), " ")
	if why == "" {
		why = "not taken now"
	}
	if len(why) > 200 {
		why = why[:200]
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later: " + why}
}

func replyText(err error) string {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return "250"
	case errors.As(err, &se):
		return fmt.Sprintf("%d %s", se.Code, se.Message)
	}
	return err.Error()
}

// errorLog puts go-smtp's own complaints (a connection that failed) in
// the daemon's log.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Debug("lmtp: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (e errorLog) Println(v ...any) {
	e.log.Debug("lmtp: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

// Recipients is the list of addresses a bot takes: its own and its
// aliases, lowercased, each once.
func Recipients(address string, aliases []string) []string {
	out := []string{strings.ToLower(address)}
	for _, a := range aliases {
		if a = strings.ToLower(a); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
