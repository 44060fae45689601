// Package localmail runs a small IMAP and SMTP server on loopback inside the
// process, for "mailbot demo": a new user can try the bot with swaks or any
// mail client and no mail server of their own.
//
// Both servers share one set of in-memory mailboxes. The SMTP side behaves
// like a provider's submission server: it requires AUTH, stamps every
// accepted message with Return-Path, Received and an Authentication-Results
// header field of its own authserv-id (RFC 8601), and delivers into the INBOX
// of local recipients, where IMAP clients (IDLE included) see it at once.
//
// Nothing is persisted and nothing is encrypted: this is for loopback only.
package localmail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// Defaults for Options: loopback ports above 1024, so that no privilege is
// needed, and a host name that no real server claims.
const (
	DefaultIMAPAddr   = "127.0.0.1:1143"
	DefaultSMTPAddr   = "127.0.0.1:1025"
	DefaultAuthservID = "localhost"
)

// MaxMessageBytes is the largest message the SMTP server accepts, as large as
// common providers allow.
const MaxMessageBytes = 25 << 20

// Options configures Start.
type Options struct {
	// IMAPAddr and SMTPAddr are the listen addresses; empty means
	// DefaultIMAPAddr and DefaultSMTPAddr. A zero port picks a free one.
	IMAPAddr, SMTPAddr string
	// AuthservID is the authserv-id (RFC 8601 section 2.5) of every
	// Authentication-Results header field this server writes, and the host
	// name it greets with. Empty means DefaultAuthservID.
	AuthservID string
	// Logf, if not nil, receives one line per delivery and server errors.
	Logf func(format string, args ...any)
}

// Server is a running pair of IMAP and SMTP servers sharing their mailboxes.
type Server struct {
	authservID string
	logf       func(format string, args ...any)

	imapLn, smtpLn *trackingListener
	serving        sync.WaitGroup // the two Serve loops
	closeOnce      sync.Once

	arrivals arrivals // wakes the IMAP sessions in IDLE

	mu      sync.Mutex
	users   map[string]*imapmemserver.User // by normalized address
	seq     uint64                         // numbers Received ids
	stopCtx func() bool                    // unregisters the context watcher
}

// Start listens on both addresses and serves in background goroutines until
// ctx is done or Close is called.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s := &Server{
		authservID: opts.AuthservID,
		logf:       opts.Logf,
		users:      make(map[string]*imapmemserver.User),
	}
	if s.authservID == "" {
		s.authservID = DefaultAuthservID
	}
	if strings.ContainsAny(s.authservID, " \t\r\n;()\"") {
		return nil, fmt.Errorf("localmail: authserv-id %q must be a plain token such as a host name", s.authservID)
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}

	imapAddr, smtpAddr := opts.IMAPAddr, opts.SMTPAddr
	if imapAddr == "" {
		imapAddr = DefaultIMAPAddr
	}
	if smtpAddr == "" {
		smtpAddr = DefaultSMTPAddr
	}
	var lc net.ListenConfig
	imapLn, err := lc.Listen(ctx, "tcp", imapAddr)
	if err != nil {
		return nil, fmt.Errorf("localmail: IMAP listen: %w", err)
	}
	smtpLn, err := lc.Listen(ctx, "tcp", smtpAddr)
	if err != nil {
		imapLn.Close()
		return nil, fmt.Errorf("localmail: SMTP listen: %w", err)
	}
	s.imapLn = newTrackingListener(imapLn)
	s.smtpLn = newTrackingListener(smtpLn)

	imapSrv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &imapSession{srv: s}, nil, nil
		},
		// IMAP4rev2 makes the server advertise MOVE, UIDPLUS, ESEARCH and
		// friends, which imapmemserver implements; IMAP4rev1 keeps older
		// clients working.
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		Logger:       logger(s.logf),
		InsecureAuth: true, // loopback only
	})
	smtpSrv := smtp.NewServer(&smtpBackend{srv: s})
	smtpSrv.Domain = s.authservID
	smtpSrv.MaxMessageBytes = MaxMessageBytes
	smtpSrv.MaxRecipients = 100
	smtpSrv.AllowInsecureAuth = true // loopback only
	smtpSrv.ErrorLog = logger(s.logf)

	s.serving.Add(2)
	go func() {
		defer s.serving.Done()
		if err := imapSrv.Serve(s.imapLn); err != nil && !errors.Is(err, net.ErrClosed) {
			s.logf("localmail: IMAP server stopped: %v", err)
		}
	}()
	go func() {
		defer s.serving.Done()
		if err := smtpSrv.Serve(s.smtpLn); err != nil && !errors.Is(err, net.ErrClosed) {
			s.logf("localmail: SMTP server stopped: %v", err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	s.mu.Lock()
	s.stopCtx = stop
	s.mu.Unlock()
	return s, nil
}

// AddUser creates a mailbox with an INBOX for address. The user logs in to
// IMAP and authenticates to SMTP with the full address (in any case) and
// password, and receives mail sent to the address.
func (s *Server) AddUser(address, password string) error {
	addr, err := mail.ParseAddress(address)
	if err != nil || addr.Address != strings.TrimSpace(address) || !strings.Contains(addr.Address, "@") {
		return fmt.Errorf("localmail: add user %q: want a bare address such as alice@example.org", address)
	}
	if password == "" {
		return fmt.Errorf("localmail: add user %q: empty password", address)
	}
	key := normalize(addr.Address)
	u := imapmemserver.NewUser(key, password)
	if err := u.Create("INBOX", nil); err != nil { // NewUser creates no mailbox
		return fmt.Errorf("localmail: add user %q: create INBOX: %w", address, err)
	}
	if err := u.Subscribe("INBOX"); err != nil {
		return fmt.Errorf("localmail: add user %q: subscribe INBOX: %w", address, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[key] != nil {
		return fmt.Errorf("localmail: add user %q: already exists", address)
	}
	s.users[key] = u
	return nil
}

// IMAPAddr returns the address the IMAP server listens on, with the actual
// port when a zero port was asked for.
func (s *Server) IMAPAddr() string { return s.imapLn.Addr().String() }

// SMTPAddr returns the address the SMTP server listens on, with the actual
// port when a zero port was asked for.
func (s *Server) SMTPAddr() string { return s.smtpLn.Addr().String() }

// Close stops both listeners, closes every connection and waits for the
// servers' accept loops and connection handlers to return. It is safe to call
// more than once; later calls return nil.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		if s.stopCtx != nil {
			s.stopCtx()
		}
		s.mu.Unlock()
		if cerr := errors.Join(s.imapLn.Close(), s.smtpLn.Close()); cerr != nil {
			err = fmt.Errorf("localmail: close: %w", cerr)
		}
		s.serving.Wait()
		s.imapLn.wait()
		s.smtpLn.wait()
	})
	return err
}

// user returns the user with this address, or nil.
func (s *Server) user(address string) *imapmemserver.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[normalize(address)]
}

// login checks a user's credentials, for both IMAP and SMTP, and returns the
// user's canonical address.
func (s *Server) login(address, password string) (*imapmemserver.User, string, error) {
	key := normalize(address)
	u := s.user(key)
	if u == nil {
		return nil, "", errors.New("unknown user")
	}
	if err := u.Login(key, password); err != nil { // constant-time comparison
		return nil, "", err
	}
	return u, key, nil
}

// normalize makes addresses compare equal regardless of case, as every
// common provider treats them.
func normalize(address string) string {
	return strings.ToLower(strings.TrimSpace(address))
}

// logger adapts a Logf function to the logger interfaces of go-imap and
// go-smtp.
type logger func(format string, args ...any)

func (l logger) Printf(format string, args ...any) { l(format, args...) }
func (l logger) Println(args ...any)               { l("%s", strings.TrimSuffix(fmt.Sprintln(args...), "\n")) }

// trackingListener remembers every accepted connection, so that Close can
// close them all and wait until each one's handler has closed it too.
// Neither imapserver nor go-smtp can do both: each registers a connection
// only once its handler goroutine runs, so one accepted just before Close
// would be missed, and neither waits for handlers to return.
type trackingListener struct {
	net.Listener

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
	active sync.WaitGroup // one per connection not yet closed by its handler
}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
}

// Accept wraps each connection so that its handler's Close is noticed.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, ln: l}
	l.conns[tc] = struct{}{}
	l.active.Add(1)
	return tc, nil
}

// Close stops accepting and closes the underlying connections, which makes
// their handlers return. It is idempotent, as the servers call it too.
func (l *trackingListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.Listener.Close()
	for c := range l.conns {
		c.Conn.Close()
	}
	return err
}

// wait returns once every handler has closed its connection.
func (l *trackingListener) wait() { l.active.Wait() }

// trackedConn is a connection whose first Close, made by the server's
// handler as it finishes, releases the listener's wait.
type trackedConn struct {
	net.Conn
	ln   *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.ln.mu.Lock()
		delete(c.ln.conns, c)
		c.ln.mu.Unlock()
		c.ln.active.Done()
	})
	return err
}
