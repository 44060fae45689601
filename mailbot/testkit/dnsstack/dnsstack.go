// Package dnsstack runs a real DNS server, Debian's dnsmasq, on a loopback
// port, private to one test run, serving the TXT records a test gives it:
// DKIM keys (sel._domainkey.example.org) for the bot's own DKIM check.
//
// The server runs from a private config under [Server.Dir]: it reads no
// /etc/hosts, no /etc/resolv.conf and no /etc/dnsmasq.conf, forwards nothing,
// and answers every name it does not hold with NXDOMAIN. It listens on UDP
// and TCP at [Server.Addr]: a free port of 127.0.0.1, or with
// [Options.Port53] port 53 of a free address of its own. It is found and stopped through its PID file,
// never by name. A test binary killed by its timeout runs no cleanup: the
// next Start stops the servers that dead processes left running.
//
// It needs Debian's dnsmasq-base package (/usr/sbin/dnsmasq), which
// .ci/install-deps installs, and root (dnsmasq drops to nobody after start).
package dnsstack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

// TXT is one TXT record. A text longer than 255 bytes is split into several
// character-strings of one record (RFC 1035 §3.3.14), as DKIM keys of 2048
// bits need; a resolver joins them again.
type TXT struct {
	Name string // without a trailing dot, e.g. "sel._domainkey.indyhall.test"
	Text string
}

// Options configures Start.
type Options struct {
	// Dir is the server's directory. Empty means a new /tmp/mailbot-dns-XXXX.
	Dir string
	// Records are served for the server's lifetime. Several records of one
	// name make a set of several TXT records.
	Records []TXT
	// Port53 makes the server listen on port 53 of a loopback address
	// of its own, a free 127.0.0.X (X in 2..254), instead of on a free port
	// of 127.0.0.1: for resolvers that take an address but no port, such
	// as glibc's through resolv.conf. Several such servers can run side by
	// side, each on its own address.
	Port53 bool
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)

	// pickAddr returns a loopback address ("ip:port") free for UDP and
	// TCP; tests replace it to provoke a clash.
	pickAddr func() (string, error)
}

// Server is one running dnsmasq. Its methods are safe for concurrent use.
type Server struct {
	// Dir holds the config, PID file and logs.
	Dir string
	// Addr is "127.0.0.1:port" (or "127.0.0.X:53" with Options.Port53),
	// for UDP and TCP queries.
	Addr string

	logf func(format string, args ...any)
	mu   sync.Mutex
	pid  int // 0 once stopped
}

// Files of a server, relative to Server.Dir.
const (
	confFile   = "dnsmasq.conf"
	pidFile    = "dnsmasq.pid"
	logFile    = "dnsmasq.log"
	stdoutFile = "stdout.log" // what the start command printed: config errors
	ownerFile  = "owner"
)

// readyName is a record every server holds: Start waits until it is served.
const readyName = "ready.dnsstack.test"

// dirPattern names the directories Start makes, and where orphans are looked
// for.
const dirPattern = "/tmp/mailbot-dns-*"

// Start writes the config, starts dnsmasq and returns once it answers. On a
// port clash it retries with another port. On failure it stops what it
// started and keeps the directory; the error carries dnsmasq's output.
func Start(ctx context.Context, opts Options) (*Server, error) {
	start := time.Now()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bin, err := findDnsmasq()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("dnsstack: must run as root: dnsmasq switches to the nobody user")
	}
	records := append([]TXT{{readyName, "ok"}}, opts.Records...)
	for _, r := range records {
		if err := checkRecord(r); err != nil {
			return nil, err
		}
	}
	reapOrphans(logf)

	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("/tmp", "mailbot-dns-"); err != nil {
			return nil, fmt.Errorf("dnsstack: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dnsstack: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("dnsstack: %w", err)
	}
	if pid, err := proc.ReadPID(filepath.Join(dir, pidFile)); err == nil && isOurs(pid, dir) {
		return nil, fmt.Errorf("dnsstack: a dnsmasq of %s runs already (pid %d)", dir, pid)
	}
	// The log file is opened as root, before dnsmasq drops privileges.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dnsstack: %w", err)
	}
	if err := proc.WriteOwner(filepath.Join(dir, ownerFile)); err != nil {
		return nil, fmt.Errorf("dnsstack: %w", err)
	}

	s := &Server{Dir: dir, logf: logf}
	pick := opts.pickAddr
	switch {
	case pick != nil:
	case opts.Port53:
		pick = freeAddr53
	default:
		pick = freePort
	}
	const attempts = 5
	for i := 1; ; i++ {
		addr, err := pick()
		if err != nil {
			return nil, err
		}
		err = s.start(ctx, bin, addr, records)
		if err == nil {
			break
		}
		if stopErr := s.Stop(); stopErr != nil {
			err = fmt.Errorf("%w; then %w", err, stopErr)
		}
		if !errors.Is(err, errAddrInUse) || i == attempts {
			return nil, fmt.Errorf("%w\n(directory %s kept)\n%s", err, dir, s.Logs())
		}
		logf("dnsstack: %v; retrying with another address", err)
	}
	logf("dnsstack: dnsmasq up in %v on %s (%d records), dir %s",
		time.Since(start).Round(time.Millisecond), s.Addr, len(opts.Records), dir)
	return s, nil
}

var errAddrInUse = errors.New("address already in use")

// start writes the config for addr, runs dnsmasq (which forks into the
// background once its sockets are bound), and waits for its PID file and its
// first answer.
func (s *Server) start(ctx context.Context, bin, addr string, records []TXT) error {
	s.Addr = addr
	conf := s.path(confFile)
	config, err := s.config(addr, records)
	if err != nil {
		return err
	}
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return fmt.Errorf("dnsstack: %w", err)
	}
	os.Remove(s.path(pidFile))
	out, err := os.Create(s.path(stdoutFile))
	if err != nil {
		return fmt.Errorf("dnsstack: %w", err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, bin, "--conf-file="+conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		said, _ := os.ReadFile(s.path(stdoutFile))
		if strings.Contains(string(said), "Address already in use") {
			return fmt.Errorf("dnsstack: starting dnsmasq on %s: %w: %v: %s", addr, errAddrInUse, err, strings.TrimSpace(string(said)))
		}
		return fmt.Errorf("dnsstack: starting dnsmasq: %w: %s", err, strings.TrimSpace(string(said)))
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		pid, err := proc.ReadPID(s.path(pidFile))
		if err == nil && isOurs(pid, s.Dir) {
			s.mu.Lock()
			s.pid = pid
			s.mu.Unlock()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dnsstack: dnsmasq started but no process of ours is named in %s (%v)", s.path(pidFile), err)
		}
		time.Sleep(5 * time.Millisecond)
	}

	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		txts, err := r.LookupTXT(qctx, readyName+".")
		cancel()
		if err == nil && len(txts) == 1 && txts[0] == "ok" {
			return nil
		}
		if !s.Running() {
			return fmt.Errorf("dnsstack: dnsmasq exited before it answered: %v", err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("dnsstack: dnsmasq on %s did not serve %s: %q, %v", s.Addr, readyName, txts, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// config is the private dnsmasq config: loopback only, no upstream, no
// system files, every other name NXDOMAIN, every query logged.
func (s *Server) config(addr string, records []TXT) (string, error) {
	ip, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("dnsstack: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# dnsstack: a private dnsmasq for tests (mailbot/testkit/dnsstack).
port=%s
listen-address=%s
bind-interfaces
no-resolv
no-poll
no-hosts
no-negcache
local=/#/
user=nobody
pid-file=%s
log-facility=%s
log-queries
`, port, ip, s.path(pidFile), s.path(logFile))
	for _, r := range records {
		b.WriteString("txt-record=" + r.Name)
		for _, chunk := range chunks(r.Text, 255) {
			b.WriteString(`,"` + chunk + `"`)
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// checkRecord refuses what the config file could not carry as it is.
func checkRecord(r TXT) error {
	if r.Name == "" || strings.ContainsAny(r.Name, ",\"\\ \t\r\n/#") || strings.HasSuffix(r.Name, ".") {
		return fmt.Errorf("dnsstack: record name %q: want a domain name without a trailing dot", r.Name)
	}
	for _, c := range []byte(r.Text) {
		if c < ' ' || c > '~' || c == '"' || c == '\\' {
			return fmt.Errorf("dnsstack: record %s: text may hold printable ASCII only, without \" and \\", r.Name)
		}
	}
	return nil
}

func chunks(s string, n int) []string {
	if s == "" {
		return []string{""}
	}
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

// Running reports whether the server's dnsmasq still runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid != 0 && isOurs(s.pid, s.Dir)
}

// Stop stops dnsmasq and waits until it is gone. It is idempotent and
// removes nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pid := s.pid
	if pid == 0 {
		// A start that failed half-way may have left one, named in the
		// PID file.
		if p, err := proc.ReadPID(s.path(pidFile)); err == nil {
			pid = p
		}
	}
	if pid != 0 && isOurs(pid, s.Dir) {
		if err := stopProcess(pid, s.Dir); err != nil {
			return fmt.Errorf("dnsstack: stopping dnsmasq %d: %w", pid, err)
		}
		s.logf("dnsstack: stopped dnsmasq %d", pid)
	}
	s.pid = 0
	return nil
}

// Logs returns the tail of dnsmasq's log and of what it printed, for test
// failure messages.
func (s *Server) Logs() string {
	var b strings.Builder
	for _, f := range []struct{ name, file string }{{"dnsmasq log", logFile}, {"dnsmasq output", stdoutFile}} {
		data, err := os.ReadFile(s.path(f.file))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.SplitAfter(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", f.name, s.path(f.file), strings.Join(lines, ""))
	}
	return b.String()
}

// StartForTest starts a server for one test, like httptest.NewServer. A
// server that cannot start fails the test with dnsmasq's output: it is never
// skipped. When the test ends the server is stopped and its directory
// removed, unless the test failed: then its log is shown and the directory
// kept.
func StartForTest(t testing.TB, records ...TXT) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Records: records, Logf: t.Logf})
	if err != nil {
		t.Fatalf("DNSSTACK: dnsmasq could not start (run .ci/install-deps as root): %v", err)
	}
	proc.CleanupForTest(t, "dnsstack", s, s.Dir)
	return s
}

func (s *Server) path(rel string) string { return filepath.Join(s.Dir, rel) }

// findDnsmasq finds the binary, also in /usr/sbin, which may be missing from
// PATH.
func findDnsmasq() (string, error) {
	if p, err := exec.LookPath("dnsmasq"); err == nil {
		return p, nil
	}
	const p = "/usr/sbin/dnsmasq"
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("dnsstack: dnsmasq is not installed (run .ci/install-deps as root; Debian package dnsmasq-base): %w", err)
	}
	return p, nil
}

// freePort returns a port of 127.0.0.1 that was free for both TCP and UDP
// a moment ago, as "127.0.0.1:port".
func freePort() (string, error) {
	for range 20 {
		if addr, ok := freeForBoth("127.0.0.1:0"); ok {
			return addr, nil
		}
	}
	return "", errors.New("dnsstack: no port of 127.0.0.1 free for both TCP and UDP")
}

// freeAddr53 returns "127.0.0.X:53" for a random X in 2..254 whose port 53
// was free for both TCP and UDP a moment ago. Linux routes all of 127/8 to
// the loopback interface, so every such address can be bound.
func freeAddr53() (string, error) {
	for range 50 {
		if addr, ok := freeForBoth(net.JoinHostPort("127.0.0."+strconv.Itoa(2+rand.IntN(253)), "53")); ok {
			return addr, nil
		}
	}
	return "", errors.New("dnsstack: no address 127.0.0.X with port 53 free for both TCP and UDP")
}

// freeForBoth binds addr for TCP (port 0: any), then its port for UDP, and
// returns the address if both were free.
func freeForBoth(addr string) (string, bool) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", false
	}
	addr = l.Addr().String()
	u, err := net.ListenPacket("udp", addr)
	l.Close()
	if err != nil {
		return "", false
	}
	u.Close()
	return addr, true
}

// isOurs tells whether pid is a live dnsmasq started from dir's config: a
// recycled PID names a stranger, who is never signalled.
func isOurs(pid int, dir string) bool {
	return proc.HasArg(pid, "--conf-file="+filepath.Join(dir, confFile))
}

// stopProcess stops dnsmasq and the children it forks for TCP queries,
// which share its process group: SIGTERM, then SIGKILL after 5 seconds.
func stopProcess(pid int, dir string) error {
	_, pgrp, _, err := proc.Stat(pid)
	if err != nil {
		return nil // gone already
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if !isOurs(pid, dir) {
			break
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for isOurs(pid, dir) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if isOurs(pid, dir) {
		return errors.New("still running after SIGKILL")
	}
	// TCP children of ours: same group, same command line.
	for _, child := range proc.GroupMembers(pgrp) {
		if isOurs(child, dir) {
			syscall.Kill(child, syscall.SIGKILL)
		}
	}
	return nil
}

// reapOrphans stops the servers left running by test processes that are
// gone (killed by a timeout, say). Their directories are kept.
func reapOrphans(logf func(string, ...any)) {
	for _, dir := range proc.Orphaned(dirPattern, ownerFile) {
		pid, err := proc.ReadPID(filepath.Join(dir, pidFile))
		if err != nil || !isOurs(pid, dir) {
			continue
		}
		if err := stopProcess(pid, dir); err == nil {
			logf("dnsstack: stopped dnsmasq %d left running by a dead process in %s", pid, dir)
		}
	}
}
