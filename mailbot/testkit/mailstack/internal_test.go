package mailstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

// processesIn lists the live processes that belong to the stack in dir by
// their command line (Dovecot's master names its config) or environment
// (Postfix's processes carry MAIL_CONFIG), whatever the PID files say.
func processesIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !proc.IsLive(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(string(cmdline), dir+"/") || strings.Contains(string(environ), "MAIL_CONFIG="+dir+"/") {
			found = append(found, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return found
}

// stackPIDs returns the PIDs of every process of a stack's two servers.
func stackPIDs(t *testing.T, s *Stack) []int {
	t.Helper()
	s.mu.Lock()
	d, p := s.dovecotPID, s.postfixPID
	s.mu.Unlock()
	if d == 0 || p == 0 {
		t.Fatalf("dovecot PID %d, postfix PID %d: not both running", d, p)
	}
	return append(proc.GroupMembers(d), proc.GroupMembers(p)...)
}

// TestStopSideBySide starts two stacks at once, stops one (twice) and checks
// that every process of it is gone while the other one still delivers.
func TestStopSideBySide(t *testing.T) {
	t.Parallel()
	var stacks [2]*Stack
	var wg sync.WaitGroup
	for i := range stacks {
		wg.Go(func() {
			// StartForTest on another goroutine may only fail via Errorf;
			// Start is used directly for that reason.
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := Start(ctx, Options{Logf: t.Logf, Users: map[string]string{"mgr@coworking.test": "pw"}})
			if err != nil {
				t.Errorf("stack %d: %v", i, err)
				return
			}
			stacks[i] = s
		})
	}
	wg.Wait()
	for _, s := range stacks {
		if s == nil {
			t.FailNow()
		}
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Error(err)
			}
			if !t.Failed() {
				os.RemoveAll(s.Dir)
			}
		})
	}
	a, b := stacks[0], stacks[1]
	if a.Dir == b.Dir || a.IMAPAddr == b.IMAPAddr || a.SMTPAddr == b.SMTPAddr || a.LMTPAddr == b.LMTPAddr {
		t.Fatalf("stacks share a directory or port: %+v, %+v", a, b)
	}

	pids := stackPIDs(t, a)
	bPIDs := stackPIDs(t, b)
	t.Logf("stack a: %d processes", len(pids))
	if len(pids) < 4 {
		t.Fatalf("only %d processes found for stack a: %v", len(pids), pids)
	}
	start := time.Now()
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(start))
	if err := a.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for _, pid := range pids {
		if proc.IsLive(pid) {
			t.Errorf("process %d of the stopped stack still runs", pid)
		}
	}
	for _, addr := range []string{a.IMAPAddr, a.SMTPAddr, a.LMTPAddr} {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("%s still answers after Stop", addr)
		}
	}
	if len(serversIn(a.Dir)) != 0 {
		t.Error("PID files of the stopped stack still name running servers")
	}
	if left := processesIn(t, a.Dir); len(left) != 0 {
		t.Errorf("processes of the stopped stack still run: %q", left)
	}
	if left := processesIn(t, b.Dir); len(left) == 0 {
		t.Error("processesIn finds no process of the running stack")
	}

	for _, pid := range bPIDs {
		if !proc.IsLive(pid) {
			t.Errorf("process %d of the other stack died", pid)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Send(ctx, "alice@indyhall.test", []string{"mgr@coworking.test"}, []byte("Subject: still here\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitForMessages(ctx, "mgr@coworking.test", "pw", "INBOX", 1); err != nil {
		t.Fatal(err)
	}
	if logs := b.Logs(); !strings.Contains(logs, "dovecot log") || !strings.Contains(logs, "daemon started") {
		t.Errorf("Logs() lacks a server's log:\n%s", logs)
	}
}

// TestPortClash hands Start ports that another listener holds: it must move
// to other ports, for Dovecot and for Postfix.
func TestPortClash(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	var mu sync.Mutex
	clashed := map[int]bool{} // by number of ports asked for
	pick := func(n int) ([]int, error) {
		mu.Lock()
		defer mu.Unlock()
		ports, err := freePorts(n)
		if err == nil && !clashed[n] {
			clashed[n] = true
			ports[0] = takenPort
		}
		return ports, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Logf: t.Logf, pickPorts: pick})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if !t.Failed() {
			os.RemoveAll(s.Dir)
		}
	}()
	if !clashed[1] || !clashed[2] {
		t.Fatalf("the taken port was not handed out to both servers: %v", clashed)
	}
	takenAddr := loopback(takenPort)
	if s.IMAPAddr == takenAddr || s.SMTPAddr == takenAddr {
		t.Errorf("a server claims the taken port %s: IMAP %s, SMTP %s", takenAddr, s.IMAPAddr, s.SMTPAddr)
	}
	if err := greeting(ctx, s.SMTPAddr, "220 "); err != nil {
		t.Error(err)
	}
}

// TestOrphanAndReuse leaves a stack running with a dead owner, as a test
// binary killed by its timeout does: the next Start stops its servers, and a
// stack started in its directory keeps its users and mail. A directory whose
// owner still runs is refused.
func TestOrphanAndReuse(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Logf: t.Logf, Users: map[string]string{"mgr@coworking.test": "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := Start(ctx, Options{Dir: s.Dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start in a running stack's directory = %v, want an in-use error", err)
	}
	if err := s.Send(ctx, "alice@indyhall.test", []string{"mgr@coworking.test"}, []byte("Subject: one\r\n\r\nbefore\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitForMessages(ctx, "mgr@coworking.test", "pw", "INBOX", 1); err != nil {
		t.Fatal(err)
	}
	oldPIDs := stackPIDs(t, s)

	// The owner "dies": no process has this identity.
	if err := os.WriteFile(s.path(ownerFile), []byte(fmt.Sprintf("%d 1\n", os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	reapOrphans(ctx, t.Logf)
	for _, pid := range oldPIDs {
		if proc.IsLive(pid) {
			t.Errorf("process %d of the orphaned stack still runs", pid)
		}
	}

	s2, err := Start(ctx, Options{Dir: s.Dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s2.Stop(); err != nil {
			t.Error(err)
		}
		if !t.Failed() {
			os.RemoveAll(s2.Dir)
		}
	}()
	if err := s2.AddUser("MGR@coworking.test", "other"); err == nil {
		t.Error("AddUser of a user of the first stack succeeded")
	}
	if err := s2.Send(ctx, "alice@indyhall.test", []string{"mgr@coworking.test"}, []byte("Subject: two\r\n\r\nafter\r\n")); err != nil {
		t.Fatal(err)
	}
	msgs, err := s2.WaitForMessages(ctx, "mgr@coworking.test", "pw", "INBOX", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(msgs[0]), "before\r\n") || !strings.HasSuffix(string(msgs[1]), "after\r\n") {
		t.Errorf("INBOX holds %q", msgs)
	}
}

// TestStartGivesUp hands Start nothing but a taken port: it fails with the
// servers' own words, and leaves nothing running.
func TestStartGivesUp(t *testing.T) {
	t.Parallel()
	var ports []int
	for range 2 {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		ports = append(ports, taken.Addr().(*net.TCPAddr).Port)
	}
	calls := 0
	pick := func(n int) ([]int, error) {
		calls++
		return ports[:n], nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{pickPorts: pick})
	if err == nil {
		s.Stop()
		t.Fatal("Start succeeded on a taken port")
	}
	if calls != 5 {
		t.Errorf("Start tried %d times, want 5", calls)
	}
	msg := err.Error()
	for _, want := range []string{"Address already in use", "dovecot stdout/stderr", "kept"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	dir := msg[strings.Index(msg, "(directory ")+len("(directory "):]
	dir = dir[:strings.Index(dir, " ")]
	if left := processesIn(t, dir); len(left) != 0 {
		t.Errorf("processes still run in %s: %q", dir, left)
	}
	if !t.Failed() {
		os.RemoveAll(dir)
	}
}

// TestStartCancelled ends Start's context while the servers start: Start
// fails and leaves no server running.
func TestStartCancelled(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t0 := time.Now()
		s, err := Start(ctx, Options{Logf: t.Logf})
		cancel()
		t.Logf("%v: Start returned after %v: %v", d, time.Since(t0), strings.SplitN(fmt.Sprint(err), "\n", 2)[0])
		if err == nil {
			t.Logf("Start finished within %v", d)
			if err := s.Stop(); err != nil {
				t.Error(err)
			}
			os.RemoveAll(s.Dir)
			continue
		}
		msg := err.Error()
		i := strings.Index(msg, "(directory ")
		if i < 0 {
			t.Fatalf("error names no directory: %v", err)
		}
		dir := strings.Fields(msg[i+len("(directory "):])[0]
		if left := processesIn(t, dir); len(left) != 0 {
			t.Errorf("after %v: processes still run in %s: %q", d, dir, left)
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	}
}
