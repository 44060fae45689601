package localmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Replies of our own. go-smtp's ErrAuthRequired uses 502; RFC 4954 section 6
// names 530 for a command refused before AUTH.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errBadHeader    = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Malformed message header"}
)

// smtpBackend hands each SMTP connection a session on the shared mailboxes.
type smtpBackend struct{ srv *Server }

// NewSession implements smtp.Backend.
func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{srv: b.srv, conn: c}, nil
}

// smtpSession is one SMTP connection: a submission session that must
// authenticate before it may send, and delivers to local users only.
type smtpSession struct {
	srv   *Server
	conn  *smtp.Conn
	login string // the authenticated address; empty before AUTH

	from  string
	rcpts map[string]*imapmemserver.User // by normalized address
}

var _ smtp.AuthSession = (*smtpSession)(nil)

// AuthMechanisms implements smtp.AuthSession.
func (s *smtpSession) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements smtp.AuthSession: PLAIN (RFC 4616) and, for the many
// clients that still prefer it, LOGIN.
func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && normalize(identity) != normalize(username) {
				return smtp.ErrAuthFailed // no acting on behalf of others
			}
			return s.authenticate(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{authenticate: s.authenticate}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *smtpSession) authenticate(username, password string) error {
	_, login, err := s.srv.login(username, password)
	if err != nil {
		return smtp.ErrAuthFailed
	}
	s.login = login
	return nil
}

// Mail implements smtp.Session. Any envelope sender, the null one included,
// is accepted once the session is authenticated.
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.login == "" {
		return errAuthRequired
	}
	s.Reset()
	s.from = from
	return nil
}

// Rcpt implements smtp.Session: only local users receive mail.
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	u := s.srv.user(to)
	if u == nil {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: fmt.Sprintf("<%s>: no such user here", to)}
	}
	if s.rcpts == nil {
		s.rcpts = make(map[string]*imapmemserver.User)
	}
	s.rcpts[normalize(to)] = u
	return nil
}

// Data implements smtp.Session: it stamps the message and appends it to the
// INBOX of every recipient.
func (s *smtpSession) Data(r io.Reader) error {
	msg, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp's ErrDataTooLarge, or a broken connection
	}
	id := s.srv.nextID()
	msg, dmarc, err := stamp(msg, trace{
		authservID: s.srv.authservID,
		login:      s.login,
		mailFrom:   s.from,
		received:   s.received(id),
		id:         id,
	})
	if err != nil {
		s.srv.logf("localmail: smtp %s: rejected message from %s: %v", id, s.login, err)
		return errBadHeader
	}
	for addr, u := range s.rcpts {
		opts := &imap.AppendOptions{Time: time.Now()}
		if _, err := u.Append("INBOX", bytes.NewReader(msg), opts); err != nil {
			s.srv.logf("localmail: smtp %s: deliver to %s: %v", id, addr, err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Delivery failed, try again later"}
		}
	}
	s.srv.arrivals.notify()
	s.srv.logf("localmail: smtp %s: delivered from %s (login %s, dmarc=%s) to %s",
		id, "<"+s.from+">", s.login, dmarc, strings.Join(keys(s.rcpts), ", "))
	return nil
}

// received returns the value of our Received field (RFC 5321 section 4.4),
// "with ESMTPA" for an authenticated session (RFC 3848).
func (s *smtpSession) received(id string) string {
	ip := "unknown"
	if host, _, err := net.SplitHostPort(s.conn.Conn().RemoteAddr().String()); err == nil {
		ip = host
	}
	v := fmt.Sprintf("from %s ([%s]) by %s with ESMTPA id %s", printable(s.conn.Hostname()), ip, s.srv.authservID, id)
	if len(s.rcpts) == 1 {
		v += " for <" + keys(s.rcpts)[0] + ">"
	}
	return v + "; " + time.Now().Format(time.RFC1123Z)
}

// Reset implements smtp.Session.
func (s *smtpSession) Reset() {
	s.from = ""
	s.rcpts = nil
}

// Logout implements smtp.Session.
func (s *smtpSession) Logout() error { return nil }

// nextID numbers accepted messages, for the Received field and the log.
func (s *Server) nextID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%d", s.seq)
}

// loginServer implements the LOGIN SASL mechanism
// (draft-murchison-sasl-login), which go-sasl offers only as a client.
type loginServer struct {
	authenticate func(username, password string) error
	step         int
	username     string
}

// Next implements sasl.Server.
func (a *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	a.step++
	switch {
	case a.step == 1 && len(response) == 0:
		return []byte("Username:"), false, nil
	case a.step == 1: // "AUTH LOGIN <username>", as some clients send it
		a.step++
		fallthrough
	case a.step == 2:
		a.username = string(response)
		return []byte("Password:"), false, nil
	case a.step == 3:
		return nil, true, a.authenticate(a.username, string(response))
	}
	return nil, false, errors.New("unexpected LOGIN response")
}

// printable replaces anything but printable ASCII, so that a client's HELO
// argument cannot bend our Received field.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || r == '(' || r == ')' {
			return '?'
		}
		return r
	}, s)
}

func keys(m map[string]*imapmemserver.User) []string {
	return slices.Sorted(maps.Keys(m))
}
