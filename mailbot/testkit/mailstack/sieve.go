package mailstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sievePlugin is the LMTP plugin that Debian's dovecot-sieve installs.
const sievePlugin = "/usr/lib/dovecot/modules/lib90_sieve_plugin.so"

// SetSieve makes script the active Sieve script of user's mailbox, run by
// Dovecot's LMTP at each delivery to it: a real "vacation" auto-responder,
// for example, whose notices go out through this stack's Postfix with a
// null envelope sender. The "editheader" extension is available too.
//
// The first call switches Sieve on: it rewrites Dovecot's config and reloads
// it, which takes about a second. The script is compiled first, so a script
// with a syntax error is an error here rather than a silently failed
// delivery. It needs Debian's dovecot-sieve package (.ci/install-deps).
func (s *Stack) SetSieve(user, script string) error {
	if _, err := os.Stat(sievePlugin); err != nil {
		return fmt.Errorf("mailstack: Sieve needs Debian's dovecot-sieve (run .ci/install-deps as root): %w", err)
	}
	name := strings.ToLower(user)
	s.usersMu.Lock()
	known := s.users[name]
	s.usersMu.Unlock()
	if !known {
		return fmt.Errorf("mailstack: SetSieve: no user %s", user)
	}
	if err := s.enableSieve(); err != nil {
		return err
	}
	home := s.path(filepath.Join(mailDir, name))
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	if err := os.Chown(home, mailUID, mailGID); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	// Written under a temporary name and renamed, so a delivery never
	// reads half a script; Pigeonhole compiles it again when it changes.
	tmp := filepath.Join(home, ".dovecot.sieve.tmp")
	final := filepath.Join(home, ".dovecot.sieve")
	if err := os.WriteFile(tmp, []byte(script), 0o600); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	if err := s.compileSieve(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chown(tmp, mailUID, mailGID); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	// A compiled binary of an earlier script would be used while its
	// timestamp is newer than the script's.
	os.Remove(filepath.Join(home, ".dovecot.svbin"))
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	return nil
}

// compileSieve checks a script with sievec against this stack's config
// (which names the extensions), writing no binary.
func (s *Stack) compileSieve(path string) error {
	sievec, err := exec.LookPath("sievec")
	if err != nil {
		return fmt.Errorf("mailstack: sievec not found (Debian's dovecot-sieve): %w", err)
	}
	var out bytes.Buffer
	cmd := exec.Command(sievec, "-c", s.path(dovecotConf), "-d", path, os.DevNull)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mailstack: Sieve script does not compile: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// enableSieve writes Dovecot's config with Sieve on and reloads a running
// Dovecot, once.
func (s *Stack) enableSieve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sieve {
		return nil
	}
	if s.SMTPAddr == "" {
		return errors.New("mailstack: SetSieve before Postfix runs")
	}
	imapPort, err := portOf(s.IMAPAddr)
	if err != nil {
		return err
	}
	lmtpPort, err := portOf(s.LMTPAddr)
	if err != nil {
		return err
	}
	s.sieve = true
	if err := s.writeDovecotConfig(imapPort, lmtpPort); err != nil {
		s.sieve = false
		return err
	}
	if s.dovecotPID == 0 {
		return nil // StartDovecot reads the new config
	}
	return s.reloadDovecotLocked()
}

// reloadDovecotLocked makes a running Dovecot read its config again
// (SIGHUP, as "doveadm reload" does) and waits until it says so in its log
// and answers again. The caller holds s.mu.
func (s *Stack) reloadDovecotLocked() error {
	pid := s.dovecotPID
	if !s.isOurDovecot(pid) {
		return fmt.Errorf("mailstack: dovecot master %d is gone", pid)
	}
	offset := fileSize(s.path(dovecotLog))
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("mailstack: reloading dovecot: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(tailFrom(s.path(dovecotLog), offset), "reloading configuration") {
		if time.Now().After(deadline) {
			return fmt.Errorf("mailstack: dovecot did not reload its config within 15 s:\n%s", tailFrom(s.path(dovecotLog), offset))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(tailFrom(s.path(dovecotLog), offset), "Fatal") {
		return fmt.Errorf("mailstack: dovecot refused its new config:\n%s", tailFrom(s.path(dovecotLog), offset))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, l := range []struct{ addr, greeting string }{{s.IMAPAddr, "* OK"}, {s.LMTPAddr, "220 "}} {
		if err := waitGreeting(ctx, l.addr, l.greeting, func() bool { return s.isOurDovecot(pid) }); err != nil {
			return fmt.Errorf("mailstack: dovecot after reload: %w", err)
		}
	}
	return nil
}

func portOf(addr string) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0, fmt.Errorf("mailstack: bad address %q", addr)
	}
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		return 0, fmt.Errorf("mailstack: bad address %q: %w", addr, err)
	}
	return p, nil
}
