// Package verifier runs what a mail provider's inbound server runs to judge
// the mail it receives: a real OpenDKIM (verifying) and a real OpenDMARC,
// Debian's packages, as milters on loopback for the test Postfix
// (mailbot/testkit/mailstack, Options.Milters), with a private dnsmasq
// (mailbot/testkit/dnsstack) that publishes the test domains' DKIM keys and
// DMARC policies (mailbot/testkit/signer). The bot's integration tests then
// read Authentication-Results written by a real verifier, not by hand.
//
//	SMTP client → Postfix ─milter→ OpenDKIM (dkim=…)   ─DNS→ dnsmasq 127.0.0.X:53
//	                      ─milter→ OpenDMARC (dmarc=…) ─DNS→ the same
//
// Both milters stamp one authserv-id, [AuthservID]; OpenDMARC's field ends
// up topmost, so the bot is configured with that id and `require: dmarc`,
// as the README tells users of Postfix with OpenDKIM and OpenDMARC.
//
// The milters are configured as Debian ships them, changed only where
// loopback tests need it; in particular as to sender-supplied
// Authentication-Results:
//
//   - OpenDKIM removes those of our authserv-id that carry a DKIM result
//     (its default, RemoveARAll off), and nothing else.
//   - OpenDMARC removes none (it has no such setting).
//   - A forged "dmarc=pass" of our id therefore reaches the mailbox, below
//     the real fields. RFC 8601 §5 asks the MX to remove it, and OpenDKIM's
//     RemoveARAll would; the tests keep the stock setup on purpose, as it
//     is the common one and the harder one for the bot, which must trust
//     the topmost field of its id alone.
//   - RejectFailures stays off (the default): mail failing DMARC is
//     delivered with dmarc=fail, so the tests see what the bot does with it
//     (a provider that rejects would only spare the bot such mail).
//   - RequiredHeaders stays off (the default): a second Subject prepended
//     above a signed one passes DKIM and DMARC (RFC 6376 §5.4.2), and the
//     bot must not rely on its provider refusing it.
//
// Changed for loopback: OpenDMARC's IgnoreHosts names a documentation
// address (its default ignores 127.0.0.1, the tests' client, and writes no
// field), SPF is ignored (SPFIgnoreResults, no SPFSelfValidate: libspf2
// passes every loopback client) so DMARC rests on DKIM alone, and DNS goes
// to the private dnsmasq. OpenDKIM takes a name server (Nameservers) but
// its libunbound answers the "test." zone itself unless told
// (ResolverConfiguration, local-zone nodefault). OpenDMARC takes none:
// glibc reads /etc/resolv.conf, so it runs in a private mount namespace
// (unshare -m) with a resolv.conf of its own bound over it, naming a
// dnsmasq on port 53 of a 127.0.0.X of its own, so that two test runs (two
// engineers on one machine) run side by side. OpenDKIM reads its
// ResolverConfiguration anew for every message, with a parser that is not
// thread-safe: Postfix reaches it through a relay that serializes
// (relay.go), as it reaches OpenDMARC through one that only speeds it up.
//
// The milters run as children of the test process, each leading its own
// process group, from configs under [Verifier.Dir]. They are found through
// their PID files and stopped by PID (checked against /proc), never by
// name. They take 5–6 s to exit on SIGTERM, so Stop kills them after a short
// grace: they keep no state worth a clean exit. A test binary killed by its
// timeout runs no cleanup: the next Start stops what it left running.
//
// It needs root (the milters switch users, unshare and mount need
// privileges) and Debian's opendkim, opendmarc and dnsmasq-base packages,
// which .ci/install-deps installs.
package verifier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/dnsstack"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

// AuthservID is the authserv-id both milters stamp (RFC 8601 §2.5): the
// name of the tests' receiving MX, which the bot is configured to trust.
const AuthservID = "mx.visa.test"

// Options configures Start.
type Options struct {
	// Records are the DNS records to publish: DKIM keys and DMARC
	// policies (signer.Records).
	Records []dnsstack.TXT
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)

	// pickPort returns a free loopback TCP port; tests replace it to
	// provoke a clash.
	pickPort func() (int, error)
}

// Verifier is a running OpenDKIM, OpenDMARC and their DNS server. Its
// methods are safe for concurrent use.
type Verifier struct {
	// Dir holds the milters' configs, PID files and output.
	Dir string
	// DNS publishes the records; its Addr is "127.0.0.X:53".
	DNS *dnsstack.Server
	// Milters are the milters' sockets in Postfix's notation
	// ("inet:127.0.0.1:PORT"), OpenDKIM first: for smtpd_milters. They
	// are relays in front of the milters (relay.go).
	Milters []string

	logf    func(format string, args ...any)
	mu      sync.Mutex
	running []*milter
	relays  []*relay // in front of the milters (relay.go)
}

// milter is one running milter process.
type milter struct {
	name string // "opendkim" or "opendmarc"
	conf string // its config file: its command line names it
	port int    // where it listens on 127.0.0.1
	pid  int
	done chan struct{} // closed once the child is reaped
}

// Files of a verifier, relative to Verifier.Dir.
const (
	ownerFile    = "owner"
	dkimConf     = "opendkim.conf"
	dkimUnbound  = "unbound.conf"
	dkimRun      = "opendkim" // owned by the opendkim user: its PID file
	dmarcConf    = "opendmarc.conf"
	dmarcRun     = "opendmarc"
	dmarcResolv  = "resolv.conf"
	dmarcIgnore  = "ignore-hosts"
	outputSuffix = ".out" // what a milter printed, beside its config
)

// dirPattern names the directories Start makes, and where orphans are looked
// for.
const dirPattern = "/tmp/mailbot-vf-*"

// stopGrace is how long a milter may take to exit on SIGTERM before it is
// killed: they take seconds, and hold nothing a test needs.
const stopGrace = 100 * time.Millisecond

// Start starts the DNS server, then OpenDKIM and OpenDMARC, and returns once
// both milters listen. On failure it stops what it started and keeps the
// directories; the error carries the servers' output.
func Start(ctx context.Context, opts Options) (*Verifier, error) {
	start := time.Now()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("verifier: must run as root: the milters switch users, and OpenDMARC runs in a mount namespace of its own")
	}
	bins := map[string]string{}
	for _, name := range []string{"opendkim", "opendmarc", "unshare"} {
		p, err := findBinary(name)
		if err != nil {
			return nil, err
		}
		bins[name] = p
	}
	reapOrphans(logf)

	dir, err := os.MkdirTemp("/tmp", "mailbot-vf-")
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	v := &Verifier{Dir: dir, logf: logf}
	if err := v.layout(); err != nil {
		return nil, err
	}
	v.DNS, err = dnsstack.Start(ctx, dnsstack.Options{Port53: true, Records: opts.Records, Logf: logf})
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	pick := opts.pickPort
	if pick == nil {
		pick = freePort
	}
	for _, m := range []struct {
		name  string
		write func(port int) error
		cmd   func() *exec.Cmd
	}{
		{"opendkim", v.writeDKIMConfig, func() *exec.Cmd {
			return exec.Command(bins["opendkim"], "-f", "-x", v.path(dkimConf))
		}},
		// glibc's resolver reads /etc/resolv.conf; in a mount namespace
		// of its own, OpenDMARC's is ours. unshare and sh exec in place,
		// so the PID is OpenDMARC's.
		{"opendmarc", v.writeDMARCConfig, func() *exec.Cmd {
			return exec.Command(bins["unshare"], "-m", "--propagation", "private", "sh", "-c",
				`mount --bind "$1" /etc/resolv.conf && exec "$2" -f -c "$3"`,
				"sh", v.path(dmarcResolv), bins["opendmarc"], v.path(dmarcConf))
		}},
	} {
		port, err := v.startMilter(ctx, m.name, pick, m.write, m.cmd)
		var r *relay
		if err == nil {
			r, err = startRelay(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), m.name == "opendkim")
		}
		if err == nil {
			v.mu.Lock()
			v.relays = append(v.relays, r)
			v.mu.Unlock()
		}
		if err != nil {
			if stopErr := v.Stop(); stopErr != nil {
				err = fmt.Errorf("%w; then %w", err, stopErr)
			}
			return nil, fmt.Errorf("%w\n(directory %s kept)\n%s", err, dir, v.Logs())
		}
		v.Milters = append(v.Milters, "inet:"+r.Addr())
	}
	logf("verifier: OpenDKIM and OpenDMARC up in %v: milters %s, DNS %s, dir %s",
		time.Since(start).Round(time.Millisecond), strings.Join(v.Milters, ", "), v.DNS.Addr, dir)
	return v, nil
}

// layout writes the owner file and the directories the milters write to
// after they dropped root.
func (v *Verifier) layout() error {
	if err := os.Chmod(v.Dir, 0o755); err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	if err := proc.WriteOwner(v.path(ownerFile)); err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	for _, d := range []string{dkimRun, dmarcRun} {
		if err := os.Mkdir(v.path(d), 0o755); err != nil {
			return fmt.Errorf("verifier: %w", err)
		}
		if err := proc.ChownToUser(v.path(d), d); err != nil {
			return fmt.Errorf("verifier: %w", err)
		}
	}
	return nil
}

// startMilter writes a milter's config for a free port, starts it and
// waits until it listens there; on a port taken meanwhile it tries another.
func (v *Verifier) startMilter(ctx context.Context, name string, pick func() (int, error),
	write func(port int) error, command func() *exec.Cmd) (int, error) {
	const attempts = 5
	for i := 1; ; i++ {
		port, err := pick()
		if err != nil {
			return 0, err
		}
		if err := write(port); err != nil {
			return 0, err
		}
		err = v.run(ctx, name, port, command())
		if err == nil {
			return port, nil
		}
		if !errors.Is(err, errAddrInUse) || i == attempts {
			return 0, err
		}
		v.logf("%v; retrying with another port", err)
	}
}

var errAddrInUse = errors.New("address already in use")

// run starts one milter and waits until it listens on port.
func (v *Verifier) run(ctx context.Context, name string, port int, cmd *exec.Cmd) error {
	out, err := os.OpenFile(v.path(name+outputSuffix), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a terminal's Ctrl-C to the tests does not
	// reach it half-way through a stop, and a kill reaches only it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("verifier: starting %s: %w", name, err)
	}
	m := &milter{name: name, conf: v.confOf(name), port: port, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); close(m.done) }()
	v.mu.Lock()
	v.running = append(v.running, m)
	v.mu.Unlock()

	deadline := time.Now().Add(15 * time.Second)
	for !proc.ListensTCP(m.pid, port) {
		exited := false
		select {
		case <-m.done:
			exited = true
		case <-ctx.Done():
			return fmt.Errorf("verifier: %s did not listen on port %d: %w", name, port, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if exited {
			v.mu.Lock()
			v.running = slices.DeleteFunc(v.running, func(r *milter) bool { return r == m })
			v.mu.Unlock()
			// It exits at once when its port is taken; it says so only
			// on its output, in a word ("smfi_opensocket() failed").
			if portTaken(port) {
				return fmt.Errorf("verifier: %s on port %d: %w", name, port, errAddrInUse)
			}
			return fmt.Errorf("verifier: %s exited before it listened on port %d (%v)", name, port, cmd.ProcessState)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("verifier: %s did not listen on port %d within 15 s", name, port)
		}
	}
	return nil
}

// Stop stops both milters and the DNS server. It is idempotent and removes
// nothing.
func (v *Verifier) Stop() error {
	start := time.Now()
	v.mu.Lock()
	running, relays := v.running, v.relays
	v.running, v.relays = nil, nil
	v.mu.Unlock()
	for _, r := range relays {
		r.Close()
	}
	// In parallel: each takes stopGrace at least.
	errs := make([]error, len(running))
	var wg sync.WaitGroup
	for i, m := range running {
		wg.Go(func() { errs[i] = stopMilter(m.pid, m.conf, m.done) })
	}
	wg.Wait()
	if v.DNS != nil {
		errs = append(errs, v.DNS.Stop())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(running) > 0 {
		v.logf("verifier: stopped in %v", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// Logs returns what the milters printed and the DNS server's log, for test
// failure messages. Without syslog the milters print little: mostly
// configuration errors.
func (v *Verifier) Logs() string {
	var b strings.Builder
	for _, name := range []string{"opendkim", "opendmarc"} {
		data, err := os.ReadFile(v.path(name + outputSuffix))
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- %s output (%s) ---\n%s\n", name, v.path(name+outputSuffix), lastLines(string(data), 40))
	}
	if v.DNS != nil {
		b.WriteString(v.DNS.Logs())
	}
	return b.String()
}

// StartForTest starts a verifier for one test, like httptest.NewServer. One
// that cannot start fails the test with the servers' output: it is never
// skipped. When the test ends it is stopped and its directories removed,
// unless the test failed: then its logs are shown and they are kept.
func StartForTest(t testing.TB, records ...dnsstack.TXT) *Verifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := Start(ctx, Options{Records: records, Logf: t.Logf})
	if err != nil {
		t.Fatalf("VERIFIER: OpenDKIM and OpenDMARC could not start (run .ci/install-deps as root): %v", err)
	}
	proc.CleanupForTest(t, "verifier", v, v.Dir, v.DNS.Dir)
	return v
}

// Remove removes the directories of a stopped verifier.
func (v *Verifier) Remove() error {
	err := os.RemoveAll(v.Dir)
	if v.DNS != nil {
		err = errors.Join(err, os.RemoveAll(v.DNS.Dir))
	}
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	return nil
}

func (v *Verifier) path(rel string) string { return filepath.Join(v.Dir, rel) }

func (v *Verifier) confOf(name string) string {
	if name == "opendkim" {
		return v.path(dkimConf)
	}
	return v.path(dmarcConf)
}

// writeDKIMConfig writes OpenDKIM's config (opendkim.conf(5)) for port.
func (v *Verifier) writeDKIMConfig(port int) error {
	host, _, _ := net.SplitHostPort(v.DNS.Addr)
	// libunbound serves the special-use "test." zone (RFC 6761) itself,
	// as NXDOMAIN, without asking any server, unless told not to.
	unbound := "server:\n\tlocal-zone: \"test.\" nodefault\n"
	conf := fmt.Sprintf(`# Written by mailbot/testkit/verifier: OpenDKIM verifying for the test Postfix.
Mode			v
Socket			inet:%d@127.0.0.1
PidFile			%s
UserID			opendkim
Syslog			no
AuthservID		%s
AlwaysAddARHeader	yes
Nameservers		%s
ResolverConfiguration	%s
`, port, v.path(dkimRun+"/opendkim.pid"), AuthservID, host, v.path(dkimUnbound))
	return writeFiles(map[string]string{v.path(dkimUnbound): unbound, v.path(dkimConf): conf})
}

// writeDMARCConfig writes OpenDMARC's config (opendmarc.conf(5)) for port,
// the resolv.conf it sees and its list of hosts to ignore.
func (v *Verifier) writeDMARCConfig(port int) error {
	host, _, _ := net.SplitHostPort(v.DNS.Addr)
	conf := fmt.Sprintf(`# Written by mailbot/testkit/verifier: OpenDMARC for the test Postfix.
Socket			inet:%d@127.0.0.1
PidFile			%s
UserID			opendmarc
Syslog			false
AuthservID		%s
TrustedAuthservIDs	%s
IgnoreHosts		%s
SPFIgnoreResults	true
SPFSelfValidate		false
PublicSuffixList	/usr/share/publicsuffix/public_suffix_list.dat
`, port, v.path(dmarcRun+"/opendmarc.pid"), AuthservID, AuthservID, v.path(dmarcIgnore))
	return writeFiles(map[string]string{
		v.path(dmarcConf):   conf,
		v.path(dmarcResolv): "nameserver " + host + "\noptions attempts:2 timeout:2\n",
		// A documentation address (RFC 5737): the default list,
		// 127.0.0.1, is the tests' own client.
		v.path(dmarcIgnore): "192.0.2.1\n",
	})
}

func writeFiles(files map[string]string) error {
	for p, data := range files {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return fmt.Errorf("verifier: %w", err)
		}
	}
	return nil
}

// isOurs tells whether pid is a live milter started from conf: a recycled
// PID names a stranger, who is never signalled.
func isOurs(pid int, conf string) bool {
	return proc.HasArg(pid, conf)
}

// stopMilter sends SIGTERM, then SIGKILL after stopGrace, and waits until
// the process is gone: reaped (done closed) if it is our child, no longer
// live otherwise.
func stopMilter(pid int, conf string, done <-chan struct{}) error {
	gone := func() bool {
		if done != nil {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}
		return !isOurs(pid, conf)
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGTERM, stopGrace}, {syscall.SIGKILL, 10 * time.Second}} {
		if gone() {
			return nil
		}
		if !isOurs(pid, conf) && done == nil {
			return nil
		}
		if err := syscall.Kill(pid, step.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("verifier: signalling %d: %w", pid, err)
		}
		deadline := time.Now().Add(step.wait)
		for !gone() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !gone() {
		return fmt.Errorf("verifier: milter %d still runs after SIGKILL", pid)
	}
	return nil
}

// reapOrphans stops the milters left running by test processes that are
// gone (killed by a timeout, say). Their directories are kept. Their DNS
// servers are dnsstack's to stop.
func reapOrphans(logf func(string, ...any)) {
	for _, dir := range proc.Orphaned(dirPattern, ownerFile) {
		for _, m := range []struct{ pidFile, conf string }{
			{filepath.Join(dir, dkimRun, "opendkim.pid"), filepath.Join(dir, dkimConf)},
			{filepath.Join(dir, dmarcRun, "opendmarc.pid"), filepath.Join(dir, dmarcConf)},
		} {
			pid, err := proc.ReadPID(m.pidFile)
			if err != nil || !isOurs(pid, m.conf) {
				continue
			}
			if err := stopMilter(pid, m.conf, nil); err == nil {
				logf("verifier: stopped milter %d left running by a dead process in %s", pid, dir)
			}
		}
	}
}

// findBinary finds a command, also in /usr/sbin, which may be missing from
// PATH.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/" + name, "/usr/bin/" + name} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("verifier: %s is not installed (run .ci/install-deps as root)", name)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("verifier: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portTaken tells whether a loopback TCP port cannot be bound now.
func portTaken(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return true
	}
	l.Close()
	return false
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
