// Package smtpsend submits already-rendered messages to an SMTP server.
//
// The outbox stores every reply as the exact bytes it will send, so this
// package never builds a message: it hands those bytes to the server in one
// MAIL FROM / RCPT TO / DATA transaction (RFC 5321 section 3.3). A Sender keeps
// its connection open between messages, because the daemon sends bursts of
// small replies and a TLS handshake plus AUTH for each one would cost more than
// the message itself.
//
// The connection is set up by go-mail (TLS policy, EHLO, STARTTLS, AUTH); the
// transaction is driven on go-mail's smtp.Client directly, so that the stored
// bytes go out unchanged, and pipelined (RFC 2920) where the server offers it,
// which go-mail does not do.
package smtpsend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// DefaultTimeout bounds each dial and each SMTP command when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// dataChunk is how much of a message is written per deadline extension, so a
// large message on a slow link is bounded per chunk rather than as a whole.
const dataChunk = 64 << 10

// Config says how to reach the submission server.
type Config struct {
	Host string
	// Port defaults by TLS mode: 465 (implicit), 587 (starttls), 25 (none).
	Port int
	// TLS is "implicit" (the default), "starttls" or "none".
	TLS string
	// Username enables AUTH (PLAIN, else LOGIN); leave it empty for a relay
	// that needs none. Credentials are sent only over TLS or to a loopback host.
	Username, Password string
	// OAuth2, when set, logs in as Username with an access token from it
	// (SASL OAUTHBEARER or XOAUTH2, whichever the server offers) instead
	// of the Password.
	OAuth2 TokenSource
	// InsecureSkipVerify accepts any server certificate: for test servers
	// with self-signed certificates only.
	InsecureSkipVerify bool
	// HeloName is the name given in EHLO; empty means the local host name.
	HeloName string
	// Timeout bounds each dial and each command; zero means DefaultTimeout.
	Timeout time.Duration
}

// ErrBadEnvelope reports an envelope refused before anything is sent: no
// recipient, or an address that cannot stand in an SMTP command. Retrying
// cannot help, so IsPermanent reports true for it.
var ErrBadEnvelope = errors.New("smtpsend: bad envelope")

// Sender submits messages over one SMTP connection that it opens on first use
// and reuses across sends.
//
// A Sender is safe for use by one goroutine at a time only: the daemon runs one
// Sender per configured SMTP connection.
type Sender struct {
	cfg Config

	client *smtp.Client // nil when there is no usable connection

	// mu guards conn and cancelled: the context watcher of a running Send
	// closes conn from another goroutine to interrupt a blocked command.
	mu        sync.Mutex
	conn      net.Conn // the raw connection under client (under TLS too)
	cancelled bool

	// lastOK is when the last transaction on the connection ended with
	// the server taking the message: the session is then in its initial
	// state (RFC 5321 section 4.1.4), and alive a moment later.
	lastOK time.Time
}

// freshFor: a connection whose last transaction succeeded this recently
// goes on without an RSET first, sparing a round trip per message in a
// burst. Servers drop idle sessions after minutes (RFC 5321 section
// 4.5.3.2.7 asks for at least 5).
const freshFor = 2 * time.Second

// New returns a Sender for cfg. It does not connect: the first Send does.
func New(cfg Config) *Sender {
	if cfg.TLS == "" {
		cfg.TLS = "implicit"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Port == 0 {
		switch cfg.TLS {
		case "starttls":
			cfg.Port = 587
		case "none":
			cfg.Port = 25
		default:
			cfg.Port = 465
		}
	}
	return &Sender{cfg: cfg}
}

// Send submits raw, a complete RFC 5322 message, from the envelope sender from
// (empty for the null sender, sent as MAIL FROM:<>) to every address in to.
//
// The bytes go out as given. Bare LF line endings are sent as CRLF, as SMTP
// requires; a message that already uses CRLF is not altered. A message not
// ending in a line break gets one.
//
// Send is all or nothing: if any recipient is refused, the transaction is
// abandoned and no one gets the message, so a retry cannot deliver twice to
// the recipients that were accepted. Use IsPermanent on the error to decide
// between dropping and retrying the message.
func (s *Sender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	if err := checkEnvelope(from, to); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	stop := s.watch(ctx)
	defer stop()

	// A connection kept from an earlier send may have been closed by the
	// server meanwhile; RSET both checks it and clears any aborted
	// transaction (RFC 5321 section 4.1.1.5). One that just took a message
	// needs neither.
	fresh := s.client != nil && time.Since(s.lastOK) < freshFor
	if s.client != nil && !fresh {
		s.extendDeadline()
		if err := s.client.Reset(); err != nil {
			s.drop()
		}
	}
	if s.client == nil {
		if err := s.dial(ctx); err != nil {
			return s.fail(ctx, err)
		}
	}
	err := s.transaction(from, to, raw)
	if fresh && lostAtMail(err) && ctx.Err() == nil {
		// The server closed the session all the same: nothing was sent,
		// so try once on a new one.
		s.drop()
		if err = s.dial(ctx); err == nil {
			err = s.transaction(from, to, raw)
		}
	}
	if err != nil {
		s.lastOK = time.Time{}
		return s.fail(ctx, err)
	}
	s.lastOK = time.Now()
	return nil
}

// lostAtMail reports a transaction that failed at its first command for
// want of a connection, not by a reply: no message data was sent.
func lostAtMail(err error) bool {
	var se *stepError
	var te *textproto.Error
	return errors.As(err, &se) && strings.HasPrefix(se.step, "MAIL FROM") && !errors.As(err, &te)
}

// Close ends the session with QUIT and closes the connection, if one is open.
// The Sender stays usable: a later Send dials again.
func (s *Sender) Close() error {
	if s.client == nil {
		return nil
	}
	s.extendDeadline()
	err := s.client.Quit()
	s.drop()
	s.lastOK = time.Time{}
	if err != nil {
		return fmt.Errorf("smtp QUIT: %w", err)
	}
	return nil
}

// IsPermanent reports whether err means the message will never be accepted:
// a 5xx reply to MAIL FROM, RCPT TO or DATA (RFC 5321 section 4.2.1), or
// ErrBadEnvelope. Such a message should be dropped and logged.
//
// Everything else is worth a retry later: 4xx replies, network and TLS
// errors, timeouts, cancellation, and failures while setting up the session
// (EHLO, STARTTLS, AUTH), which are about the configuration or the server,
// not about the message. A 530 "authentication required" reply to MAIL is
// treated the same way, for the same reason.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrBadEnvelope) {
		return true
	}
	var se *stepError
	if !errors.As(err, &se) {
		return false
	}
	var te *textproto.Error
	return errors.As(se.err, &te) && te.Code >= 500 && te.Code <= 599 && te.Code != 530
}

// IsSessionFailure reports whether err is about the server rather than the
// message: it could not be reached, or the session could not be set up
// (connect, TLS, EHLO, STARTTLS, AUTH), or it closed the session with 421
// (RFC 5321 section 3.8). Every message waits on such a failure alike.
func IsSessionFailure(err error) bool {
	if err == nil || errors.Is(err, ErrBadEnvelope) {
		return false
	}
	var te *textproto.Error
	if errors.As(err, &te) && te.Code == 421 {
		return true
	}
	var se *stepError
	return !errors.As(err, &se)
}

// stepError marks a failure inside a mail transaction, naming the command.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return "smtp " + e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// transaction runs MAIL FROM, RCPT TO and DATA on the open connection:
// as one group when the server offers PIPELINING, else one at a time.
func (s *Sender) transaction(from string, to []string, raw []byte) error {
	if ok, _ := s.client.Extension("PIPELINING"); ok {
		return s.pipelined(from, to, raw)
	}
	step := "MAIL FROM:<" + from + ">"
	s.extendDeadline()
	if err := s.client.Mail("<" + from + ">"); err != nil {
		return &stepError{step, err}
	}
	for _, rcpt := range to {
		step = "RCPT TO:<" + rcpt + ">"
		s.extendDeadline()
		if err := s.client.Rcpt("<" + rcpt + ">"); err != nil {
			return &stepError{step, err}
		}
	}
	s.extendDeadline()
	w, err := s.client.Data()
	if err != nil {
		return &stepError{"DATA", err}
	}
	// go-mail's closer reads the reply to the end of the message.
	return s.writeData(w, raw)
}

// writeData writes the message through w, a dot-writer (which stuffs
// leading dots and turns bare LF into CRLF), in chunks with a deadline
// each, and closes it: the end of the message.
func (s *Sender) writeData(w io.WriteCloser, raw []byte) error {
	for b := raw; len(b) > 0; {
		n := min(len(b), dataChunk)
		s.extendDeadline()
		if _, err := w.Write(b[:n]); err != nil {
			return &stepError{"DATA", err}
		}
		b = b[n:]
	}
	s.extendDeadline()
	if err := w.Close(); err != nil {
		return &stepError{"DATA (end of message)", err}
	}
	return nil
}

// pipelined runs the transaction with MAIL FROM, RCPT TO and DATA sent
// as one group and their replies read in order (RFC 2920): two round
// trips a message instead of three and one per recipient. On a loaded
// machine each round trip waits for the server's process to be
// scheduled, so this is what lets one connection keep pace with a
// burst. The replies are those of the unpipelined transaction, and the
// errors too: a refused MAIL or RCPT is reported as such, with the
// DATA that followed it answered but the message never sent.
func (s *Sender) pipelined(from string, to []string, raw []byte) error {
	c := s.client
	mail := "MAIL FROM:<" + from + ">"
	w := c.Text.W
	w.WriteString(mail + mailParams(c) + "\r\n")
	for _, rcpt := range to {
		w.WriteString("RCPT TO:<" + rcpt + ">\r\n")
	}
	w.WriteString("DATA\r\n")
	s.extendDeadline()
	if err := w.Flush(); err != nil {
		return &stepError{mail, err}
	}
	// Every command of the group is answered, whatever became of the
	// ones before it; the first refusal is the transaction's error.
	var refused error
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		if !isReply(err) {
			return &stepError{mail, err} // no reply at all: nothing sent
		}
		refused = &stepError{mail, err}
	}
	for _, rcpt := range to {
		if _, _, err := c.Text.ReadResponse(25); err != nil {
			if !isReply(err) {
				return &stepError{"RCPT TO:<" + rcpt + ">", err}
			}
			if refused == nil {
				refused = &stepError{"RCPT TO:<" + rcpt + ">", err}
			}
		}
	}
	_, _, err := c.Text.ReadResponse(354)
	switch {
	case err != nil && refused == nil:
		return &stepError{"DATA", err}
	case err != nil:
		return refused
	case refused != nil:
		// The server wants the message for the recipients it took; none
		// may have it, so the session ends without it (RFC 5321 section
		// 3.3 leaves no other way to abandon a DATA it accepted).
		s.drop()
		return refused
	}
	if err := s.writeData(c.Text.DotWriter(), raw); err != nil {
		return err
	}
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		return &stepError{"DATA (end of message)", err}
	}
	return nil
}

// mailParams are the MAIL FROM parameters go-mail's own Mail sends: BODY=8BITMIME
// and SMTPUTF8 when the server offers them.
func mailParams(c *smtp.Client) string {
	var p string
	if ok, _ := c.Extension("8BITMIME"); ok {
		p += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		p += " SMTPUTF8"
	}
	return p
}

// isReply reports whether err is the server's reply rather than a failure
// to hear one.
func isReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// dial opens a new session through go-mail: connect, EHLO, STARTTLS, AUTH.
func (s *Sender) dial(ctx context.Context) error {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	opts := []mail.Option{
		mail.WithPort(s.cfg.Port),
		mail.WithTimeout(s.cfg.Timeout),
		mail.WithTLSConfig(s.tlsConfig()),
		// Our own dial function hands us the raw connection, so that a
		// cancelled context can interrupt any command, and a failed
		// handshake does not leak the socket.
		mail.WithDialContextFunc(s.dialConn),
	}
	switch s.cfg.TLS {
	case "implicit":
		opts = append(opts, mail.WithSSL()) // dialConn does the TLS handshake
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		return fmt.Errorf("smtp connect to %s: unknown tls mode %q (want implicit, starttls or none)", addr, s.cfg.TLS)
	}
	if s.cfg.HeloName != "" {
		opts = append(opts, mail.WithHELO(s.cfg.HeloName))
	}
	var oauth *oauth2Auth
	if s.cfg.OAuth2 != nil {
		token, err := s.cfg.OAuth2.AccessToken(ctx)
		if err != nil {
			return fmt.Errorf("smtp connect to %s: oauth2: %w", addr, err)
		}
		oauth = &oauth2Auth{user: s.cfg.Username, token: token, host: s.cfg.Host}
		opts = append(opts, mail.WithSMTPAuthCustom(oauth))
	} else if s.cfg.Username != "" {
		// go-mail's PLAIN and LOGIN refuse to send credentials in clear
		// except to "localhost", 127.0.0.1 and ::1; the -NOENC variants
		// drop that check, so use them only where we checked it ourselves.
		mechs := []mail.SMTPAuthType{mail.SMTPAuthPlain, mail.SMTPAuthLogin}
		if s.cfg.TLS == "none" && isLoopback(s.cfg.Host) {
			mechs = []mail.SMTPAuthType{mail.SMTPAuthPlainNoEnc, mail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts, mail.WithOpportunisticSMTPAuth(mechs...),
			mail.WithUsername(s.cfg.Username), mail.WithPassword(s.cfg.Password))
	}
	mc, err := mail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp connect to %s: %w", addr, err)
	}
	client, err := mc.DialToSMTPClientWithContext(ctx)
	if oauth != nil {
		oauth.report(s.cfg.OAuth2, err)
	}
	if err != nil {
		s.drop() // go-mail leaves the connection open when EHLO, STARTTLS or AUTH fails
		return fmt.Errorf("smtp connect to %s: %w", addr, err)
	}
	s.client = client
	return nil
}

// dialConn is go-mail's dial function: it records the raw connection.
func (s *Sender) dialConn(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	if s.cfg.TLS == "implicit" {
		td := &tls.Dialer{NetDialer: d, Config: s.tlsConfig()}
		conn, err = td.DialContext(ctx, network, addr)
	} else {
		conn, err = d.DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelled {
		conn.Close()
		return nil, context.Canceled
	}
	s.conn = conn
	return conn, nil
}

func (s *Sender) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         s.cfg.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.cfg.InsecureSkipVerify,
	}
}

// watch interrupts the connection when ctx is done, until the returned stop
// is called. After an interruption the connection is in an unknown state, so
// stop drops it.
func (s *Sender) watch(ctx context.Context) (stop func()) {
	s.mu.Lock()
	s.cancelled = false
	s.mu.Unlock()
	done := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(done)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.cancelled = true
		if s.conn != nil {
			s.conn.Close()
		}
	})
	return func() {
		if !stopWatch() {
			<-done
			s.drop()
		}
	}
}

// fail decides whether the connection survives err, and returns err with
// the context's error added when the context ended the send.
func (s *Sender) fail(ctx context.Context, err error) error {
	// After a reply other than 421 (closing) the session is still in step
	// and the next Send's RSET starts afresh; after anything else, such as a
	// broken or timed-out connection, it is not.
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code == 421 {
		s.drop()
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// drop forgets the connection, closing it.
func (s *Sender) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn, s.client = nil, nil
}

// extendDeadline gives the next command a full Timeout.
func (s *Sender) extendDeadline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		// An error here means the connection is closed: the command
		// that follows reports it.
		_ = s.conn.SetDeadline(time.Now().Add(s.cfg.Timeout))
	}
}

// checkEnvelope refuses addresses that would break or extend the SMTP command
// line they are written into.
func checkEnvelope(from string, to []string) error {
	if len(to) == 0 {
		return fmt.Errorf("%w: no recipient", ErrBadEnvelope)
	}
	if err := checkPath(from); err != nil {
		return fmt.Errorf("%w: MAIL FROM:<%s>: %v", ErrBadEnvelope, from, err)
	}
	for _, rcpt := range to {
		if rcpt == "" {
			return fmt.Errorf("%w: empty recipient", ErrBadEnvelope)
		}
		if err := checkPath(rcpt); err != nil {
			return fmt.Errorf("%w: RCPT TO:<%s>: %v", ErrBadEnvelope, rcpt, err)
		}
	}
	return nil
}

func checkPath(addr string) error {
	if i := strings.IndexFunc(addr, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '<' || r == '>'
	}); i >= 0 {
		return fmt.Errorf("address contains %q", addr[i])
	}
	return nil
}

// isLoopback reports whether host names this machine: a password sent there
// in clear never crosses a network.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
