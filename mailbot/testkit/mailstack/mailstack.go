// Package mailstack runs a real Dovecot and a real Postfix on loopback, private
// to one test run, for integration tests, chaos tests and benchmarks.
//
// Mail flows as it does on a small real mail host:
//
//	SMTP client → Postfix (SMTPAddr) → LMTP (LMTPAddr) → Dovecot → maildirs → IMAP (IMAPAddr)
//
// Every domain is local and nothing can leave the machine. An address added
// with [Stack.AddUser] is a mailbox, and its full address is its IMAP login
// name. Mail to any other address is refused by Dovecot at LMTP RCPT time, so
// Postfix returns a real bounce (From MAILER-DAEMON, null envelope sender) to
// the sender. Postfix accepts any envelope sender, the null sender included,
// from loopback without AUTH or TLS. As a receiving MX, it adds only its
// Received header: it rewrites no address and makes up no Message-ID, Date or
// From for a message that lacks one; with [Options.Milters] (the real
// OpenDKIM and OpenDMARC of mailbot/testkit/verifier) they add their
// Authentication-Results. Dovecot adds Return-Path, Delivered-To and
// Received.
//
// Each server runs from a private config under [Stack.Dir] with its own ports,
// sockets, queue, logs and maildirs: nothing in /etc is read or changed, and
// several stacks can run side by side. Servers are found and stopped through
// their PID files, never by name.
//
// It needs root (both servers switch users) and Debian's dovecot-imapd,
// dovecot-lmtpd and postfix packages, which .ci/install-deps installs.
package mailstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

// Hostname is the name both servers give themselves: in greetings, Received
// headers and bounces (MAILER-DAEMON@mailstack.test).
const Hostname = "mailstack.test"

// mailUID and mailGID are Debian's "mail" account, which owns the maildirs:
// Dovecot refuses root as a mail user.
const (
	mailUID = 8
	mailGID = 8
)

// maxDirLen keeps unix socket paths under base_dir within the 107 bytes Linux
// allows.
const maxDirLen = 64

// Options configures Start.
type Options struct {
	// Dir is the stack's directory. Empty means a new /tmp/mailbot-it-XXXX
	// directory. Every parent must be searchable by the mail user (uid 8),
	// and the path at most 64 bytes long.
	Dir string
	// Logf, if set, receives progress lines (start and stop times, orphaned
	// stacks stopped).
	Logf func(format string, args ...any)
	// Users are mailboxes (address → password) written before the servers
	// start: unlike AddUser, they cost no wait.
	Users map[string]string
	// RetryDelay is how soon Postfix retries deferred mail: its queue run
	// delay and minimal backoff (the maximal backoff is 6 times as long).
	// Zero means 10 s, whole seconds only.
	RetryDelay time.Duration
	// Milters are Postfix's smtpd_milters, in its notation
	// ("inet:127.0.0.1:PORT"), called in this order for each message
	// received over SMTP: mailbot/testkit/verifier's OpenDKIM and
	// OpenDMARC, as on a provider's inbound server. While a milter does
	// not answer, mail is refused with a temporary error
	// (milter_default_action = tempfail), never let through unjudged.
	// None (the benchmark's stack) means no milters.
	Milters []string
	// OAuth2IntrospectionURL, if set, makes Dovecot take OAuth2 logins too
	// (SASL XOAUTH2 and OAUTHBEARER, beside PLAIN and LOGIN with
	// passwords), on IMAP and on the submission port: its oauth2 passdb
	// asks this token introspection endpoint (RFC 7662, POST, as
	// mailbot/testkit/idp serves it) about each access token, and takes
	// the user from its "email".
	OAuth2IntrospectionURL string
	// Submission adds a Postfix submission listener, Stack.SubmissionAddr,
	// that requires SMTP AUTH (RFC 4954), checked by Dovecot's auth
	// service (smtpd_sasl_type = dovecot): passwords of the passwd-file,
	// and OAuth2 tokens with OAuth2IntrospectionURL. No milters run there.
	Submission bool
	// Transports route single addresses elsewhere than Dovecot: address
	// → Postfix next hop, such as "lmtp:inet:127.0.0.1:2424" or
	// "lmtp:unix:/path/lmtp.sock" (a program that takes its mail over
	// LMTP, as the mailbot's lmtp.listen does). Postfix keeps mail for a
	// next hop that does not answer queued and retries it (RetryDelay).
	Transports map[string]string

	// pickPorts returns n free loopback TCP ports; tests replace it to
	// provoke port clashes.
	pickPorts func(n int) ([]int, error)
}

// Stack is one running pair of servers. Its methods are safe for concurrent
// use.
type Stack struct {
	// Dir holds every config, socket, PID file, queue, log and maildir.
	Dir string
	// IMAPAddr is Dovecot's IMAP listener, "127.0.0.1:port": plaintext
	// LOGIN, IDLE, MOVE, UIDPLUS and keywords.
	IMAPAddr string
	// SMTPAddr is Postfix's SMTP listener, "127.0.0.1:port": no AUTH, no TLS.
	SMTPAddr string
	// LMTPAddr is Dovecot's LMTP listener, "127.0.0.1:port", which Postfix
	// delivers to; tests may deliver to it directly.
	LMTPAddr string
	// SubmissionAddr is Postfix's submission listener, "127.0.0.1:port",
	// with Options.Submission: plaintext, SMTP AUTH required; "" without.
	SubmissionAddr string

	logf       func(format string, args ...any)
	dovecotBin string
	postfixBin string
	retryDelay time.Duration
	milters    []string
	oauth2URL  string // Options.OAuth2IntrospectionURL
	submission bool   // Options.Submission
	transports map[string]string

	mu           sync.Mutex // serializes starting and stopping
	dovecotPID   int        // master's PID, 0 while stopped
	postfixPID   int        // master's PID, 0 while stopped
	postfixReady bool       // Postfix has created its queue directories
	sieve        bool       // Dovecot runs Sieve scripts at delivery (SetSieve)

	usersMu sync.Mutex      // guards users and appends to the passwd-file
	users   map[string]bool // lower-case login names in the passwd-file
}

// Start writes the configs, starts Dovecot and then Postfix, and returns once
// both accept connections. On a port clash it retries with other ports. On
// failure it stops what it started and keeps the directory; the error carries
// the tail of the servers' logs.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	start := time.Now()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("mailstack: must run as root: Dovecot and Postfix switch users")
	}
	dovecotBin, err := findBinary("dovecot")
	if err != nil {
		return nil, err
	}
	postfixBin, err := findBinary("postfix")
	if err != nil {
		return nil, err
	}
	reapOrphans(ctx, logf)

	dir, err := makeDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Stack{
		Dir:        dir,
		logf:       logf,
		dovecotBin: dovecotBin,
		postfixBin: postfixBin,
		retryDelay: opts.RetryDelay.Truncate(time.Second),
		milters:    opts.Milters,
		oauth2URL:  opts.OAuth2IntrospectionURL,
		submission: opts.Submission,
		transports: opts.Transports,
		users:      make(map[string]bool),
	}
	if s.retryDelay <= 0 {
		s.retryDelay = 10 * time.Second
	}
	if err := s.layout(opts.Users); err != nil {
		return nil, err
	}
	pick := opts.pickPorts
	if pick == nil {
		pick = freePorts
	}
	if err := s.startAll(ctx, pick); err != nil {
		if stopErr := s.Stop(); stopErr != nil {
			err = fmt.Errorf("%w; then %w", err, stopErr)
		}
		// A master can be up without Start knowing it yet, as when ctx
		// ended while it started: its PID file names it.
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		stopServersIn(stopCtx, s.Dir)
		cancel()
		return nil, fmt.Errorf("%w\n(directory %s kept)\n%s", err, s.Dir, s.Logs())
	}
	logf("mailstack: started in %v: IMAP %s, SMTP %s, LMTP %s, dir %s",
		time.Since(start).Round(time.Millisecond), s.IMAPAddr, s.SMTPAddr, s.LMTPAddr, s.Dir)
	return s, nil
}

// startAll starts Dovecot, then Postfix (whose config names Dovecot's LMTP
// port), each on new ports while the previous ones clash with another
// listener: a port found free can be taken before the server binds it.
func (s *Stack) startAll(ctx context.Context, pick func(int) ([]int, error)) error {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	const attempts = 5
	for i := 1; ; i++ {
		ports, err := pick(2)
		if err != nil {
			return err
		}
		s.IMAPAddr = loopback(ports[0])
		s.LMTPAddr = loopback(ports[1])
		if err := s.writeDovecotConfig(ports[0], ports[1]); err != nil {
			return err
		}
		err = s.startDovecotLocked(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || i == attempts {
			return err
		}
		s.logf("%v; retrying with other ports", err)
	}
	s.logf("mailstack: dovecot up in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for i := 1; ; i++ {
		n := 1
		if s.submission {
			n = 2
		}
		ports, err := pick(n)
		if err != nil {
			return err
		}
		s.SMTPAddr = loopback(ports[0])
		if s.submission {
			s.SubmissionAddr = loopback(ports[1])
		}
		if err := s.writePostfixConfig(ports[0], s.LMTPAddr); err != nil {
			return err
		}
		err = s.startPostfixLocked(ctx)
		if err == nil {
			s.logf("mailstack: postfix up in %v", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if !errors.Is(err, errAddrInUse) || i == attempts {
			return err
		}
		s.logf("%v; retrying with another port", err)
	}
}

// Stop stops Postfix, then Dovecot, and waits until no process of either is
// left. It is idempotent and removes nothing.
func (s *Stack) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	s.mu.Lock()
	running := s.dovecotPID != 0 || s.postfixPID != 0
	s.mu.Unlock()
	errP := s.StopPostfix(ctx)
	errD := s.StopDovecot(ctx)
	if err := errors.Join(errP, errD); err != nil {
		return err
	}
	if running {
		s.logf("mailstack: stopped in %v", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// StopDovecot stops Dovecot alone, for outage tests: Postfix keeps mail for
// it queued and retries.
func (s *Stack) StopDovecot(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dovecotPID == 0 {
		return nil
	}
	if err := stopGroup(ctx, s.dovecotPID, s.isOurDovecot); err != nil {
		return fmt.Errorf("mailstack: stopping dovecot: %w", err)
	}
	s.dovecotPID = 0
	return nil
}

// StartDovecot starts Dovecot again on the same ports after StopDovecot. It
// does nothing while Dovecot runs.
func (s *Stack) StartDovecot(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startDovecotLocked(ctx)
}

// StopPostfix stops Postfix alone, for outage tests: mail already queued
// stays in its queue and goes out after StartPostfix.
func (s *Stack) StopPostfix(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.postfixPID == 0 {
		return nil
	}
	if err := stopGroup(ctx, s.postfixPID, s.isOurPostfix); err != nil {
		return fmt.Errorf("mailstack: stopping postfix: %w", err)
	}
	s.postfixPID = 0
	return nil
}

// StartPostfix starts Postfix again on the same port after StopPostfix. It
// does nothing while Postfix runs.
func (s *Stack) StartPostfix(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startPostfixLocked(ctx)
}

// Logs returns the tail of both servers' logs (and of anything they printed),
// for test failure messages.
func (s *Stack) Logs() string {
	const lines = 40
	var b strings.Builder
	for _, f := range []struct{ name, path string }{
		{"dovecot log", s.path(dovecotLog)},
		{"dovecot stdout/stderr", s.path(dovecotStdout)},
		{"postfix log", s.path(postfixLog)},
		{"postfix stdout/stderr", s.path(postfixStdout)},
	} {
		tail, err := tailFile(f.path, lines)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			tail = err.Error() + "\n"
		}
		if tail == "" {
			continue
		}
		fmt.Fprintf(&b, "--- %s (%s), last %d lines ---\n%s", f.name, f.path, lines, tail)
	}
	return b.String()
}

// StartForTest starts a stack for one test, like httptest.NewServer. A stack
// that cannot start fails the test with the servers' logs: it is never
// skipped. When the test ends the stack is stopped and its directory removed,
// unless the test failed: then its logs and the directory's path are logged
// and the directory is kept.
func StartForTest(t testing.TB) *Stack {
	t.Helper()
	return StartForTestWith(t, Options{})
}

// StartForTestWith is StartForTest with options (Logf is the test's).
func StartForTestWith(t testing.TB, opts Options) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts.Logf = t.Logf
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("MAILSTACK: Dovecot and Postfix could not start (run .ci/install-deps as root): %v", err)
	}
	proc.CleanupForTest(t, "mailstack", s, s.Dir)
	return s
}

// Files and directories of a stack, relative to Stack.Dir.
const (
	ownerFile     = "owner"
	dovecotConf   = "dovecot/dovecot.conf"
	dovecotPasswd = "dovecot/passwd"
	dovecotOAuth2 = "dovecot/oauth2.conf"      // the oauth2 passdb's settings
	dovecotAuthPF = "dovecot/run/auth-postfix" // the auth socket Postfix asks
	dovecotLog    = "dovecot/dovecot.log"
	dovecotStdout = "dovecot/stdout.log"
	dovecotRun    = "dovecot/run" // base_dir: sockets and master.pid
	dovecotState  = "dovecot/state"
	mailDir       = "mail" // homes of the mail users
	postfixConf   = "postfix/conf"
	postfixQueue  = "postfix/queue"
	postfixData   = "postfix/data"
	postfixLog    = "postfix/postfix.log"
	postfixStdout = "postfix/stdout.log"
)

func (s *Stack) path(rel string) string { return filepath.Join(s.Dir, rel) }

// makeDir creates the stack's directory, mode 0755 with searchable parents,
// as Dovecot reaches the maildirs as uid 8 (os.MkdirTemp alone makes 0700).
func makeDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("/tmp", "mailbot-it-")
		if err != nil {
			return "", fmt.Errorf("mailstack: %w", err)
		}
		dir = d
	} else {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("mailstack: %w", err)
		}
		dir = abs
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("mailstack: %w", err)
		}
		if err := checkReusable(dir); err != nil {
			return "", err
		}
	}
	if len(dir) > maxDirLen {
		return "", fmt.Errorf("mailstack: directory %s is longer than %d bytes: unix socket paths under it would be too long", dir, maxDirLen)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("mailstack: %w", err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("mailstack: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return "", fmt.Errorf("mailstack: %s is not searchable by others (mode %v): the mail user (uid %d) could not reach the maildirs", p, fi.Mode().Perm(), mailUID)
		}
		if p == "/" {
			break
		}
	}
	return dir, nil
}

// layout creates the stack's subdirectories, owner file and passwd-file.
func (s *Stack) layout(users map[string]string) error {
	for _, d := range []string{dovecotRun, dovecotState, postfixConf, postfixQueue, postfixData} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return fmt.Errorf("mailstack: %w", err)
		}
	}
	if err := os.MkdirAll(s.path(mailDir), 0o700); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	if err := os.Chown(s.path(mailDir), mailUID, mailGID); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	if err := proc.ChownToUser(s.path(postfixData), "postfix"); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	if err := proc.WriteOwner(s.path(ownerFile)); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	// A reused directory keeps its users, as it keeps their maildirs.
	old, err := os.ReadFile(s.path(dovecotPasswd))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mailstack: %w", err)
	}
	var passwd strings.Builder
	passwd.Write(old)
	for _, line := range strings.Split(string(old), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok {
			s.users[name] = true
		}
	}
	for addr, pass := range users {
		line, err := passwdLine(addr, pass)
		if err != nil {
			return err
		}
		if s.users[strings.ToLower(addr)] {
			return fmt.Errorf("mailstack: user %s exists already in %s", addr, s.Dir)
		}
		passwd.WriteString(line)
		s.users[strings.ToLower(addr)] = true
	}
	if err := os.WriteFile(s.path(dovecotPasswd), []byte(passwd.String()), 0o644); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	return nil
}

// findBinary finds a server's command, also in /usr/sbin, which may be
// missing from PATH.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("mailstack: %s is not installed (run .ci/install-deps as root): %w", name, err)
	}
	return p, nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("mailstack: finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, "")
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out, nil
}
