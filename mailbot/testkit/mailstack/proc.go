package mailstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = errors.New("address already in use")

// startError wraps a failed start command with what the server said.
func startError(server string, err error, said string) error {
	said = strings.TrimSpace(said)
	if strings.Contains(said, "Address already in use") {
		return fmt.Errorf("mailstack: starting %s: %w: %v: %s", server, errAddrInUse, err, said)
	}
	return fmt.Errorf("mailstack: starting %s: %w: %s", server, err, said)
}

// stopGroup stops a server whose master leads its own process group: SIGTERM
// to the group, then SIGKILL if it is not gone after 5 seconds. isOurs guards
// against signalling a stranger that took over a recycled PID.
func stopGroup(ctx context.Context, pid int, isOurs func(int) bool) error {
	if !isOurs(pid) {
		// The master is gone already (killed, or crashed): its children
		// notice and exit by themselves. They cannot be told from
		// strangers that reuse the group's number, so they are not
		// signalled.
		deadline := time.Now().Add(5 * time.Second)
		for len(proc.GroupMembers(pid)) > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("master %d is gone but its process group still runs", pid)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("master %d is gone but its process group still runs: %w", pid, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	}
	// A master stopped while it starts may spawn children after the first
	// SIGTERM and then wait seconds for them: SIGTERM goes to the group
	// again every 100 ms.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		deadline := time.Now().Add(5 * time.Second)
		for len(proc.GroupMembers(pid)) > 0 {
			if time.Now().After(deadline) {
				break
			}
			if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("signalling process group %d: %w", pid, err)
			}
			for range 10 {
				select {
				case <-ctx.Done():
					return fmt.Errorf("process group %d still runs after %v: %w", pid, sig, ctx.Err())
				case <-time.After(10 * time.Millisecond):
				}
				if !(len(proc.GroupMembers(pid)) > 0) {
					return nil
				}
			}
		}
		if !(len(proc.GroupMembers(pid)) > 0) {
			return nil
		}
	}
	return fmt.Errorf("process group %d still runs after SIGKILL", pid)
}

// waitPIDFile waits until path names a process that isOurs accepts: a master
// that forks into the background writes its PID file a moment after the
// start command returns. It waits up to 15 seconds whatever the caller's
// context says: once the start command succeeded, a master runs, and the
// Stack must learn its PID to stop it.
func waitPIDFile(path string, isOurs func(int) bool) (int, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		pid, err := proc.ReadPID(path)
		if err == nil && isOurs(pid) {
			return pid, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no master of ours in %s (last read: pid %d, %v)", path, pid, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGreeting waits until the server at addr greets with a line starting
// with prefix, while alive says the server still runs.
func waitGreeting(ctx context.Context, addr, prefix string, alive func() bool) error {
	var last error
	for {
		last = greeting(ctx, addr, prefix)
		if last == nil {
			return nil
		}
		if !alive() {
			return fmt.Errorf("master exited before %s answered: %w", addr, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no greeting on %s: %v: %w", addr, last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func greeting(ctx context.Context, addr, prefix string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !strings.HasPrefix(line, prefix) {
		return fmt.Errorf("unexpected greeting %q", strings.TrimSpace(line))
	}
	return nil
}

// reapOrphans stops the servers of stacks under /tmp whose owning process is
// gone: a test binary killed by its timeout runs no cleanup. Their
// directories are kept for inspection.
func reapOrphans(ctx context.Context, logf func(string, ...any)) {
	for _, dir := range proc.Orphaned("/tmp/mailbot-it-*", ownerFile) {
		if n := stopServersIn(ctx, dir); n > 0 {
			logf("mailstack: stopped %d server(s) left running by a dead process in %s", n, dir)
		}
	}
}

// ownerOf reads the identity of the process that started the stack in dir,
// and whether it still runs.
func ownerOf(dir string) (owner string, alive bool) {
	return proc.Owner(filepath.Join(dir, ownerFile))
}

// server is a running master that a stack's PID file names.
type server struct {
	pid    int
	isOurs func(int) bool
}

// serversIn returns the servers of the stack in dir that run and are
// provably that stack's.
func serversIn(dir string) []server {
	conf := filepath.Join(dir, dovecotConf)
	confDir := filepath.Join(dir, postfixConf)
	candidates := []struct {
		pidFile string
		isOurs  func(int) bool
	}{
		{filepath.Join(dir, dovecotRun, "master.pid"), func(pid int) bool { return isDovecotOf(pid, conf) }},
		{filepath.Join(dir, postfixQueue, "pid", "master.pid"), func(pid int) bool { return isPostfixOf(pid, confDir) }},
	}
	var running []server
	for _, c := range candidates {
		if pid, err := proc.ReadPID(c.pidFile); err == nil && c.isOurs(pid) {
			running = append(running, server{pid, c.isOurs})
		}
	}
	return running
}

// stopServersIn stops the running servers of the stack in dir and reports
// how many it stopped.
func stopServersIn(ctx context.Context, dir string) int {
	n := 0
	for _, srv := range serversIn(dir) {
		if stopGroup(ctx, srv.pid, srv.isOurs) == nil {
			n++
		}
	}
	return n
}

// checkReusable refuses a given directory whose servers still run for a live
// process, and stops the servers that a dead one left there.
func checkReusable(dir string) error {
	if len(serversIn(dir)) == 0 {
		return nil
	}
	if owner, alive := ownerOf(dir); alive {
		return fmt.Errorf("mailstack: %s is in use by a running stack of process %s", dir, owner)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n := len(serversIn(dir)); stopServersIn(ctx, dir) < n {
		return fmt.Errorf("mailstack: could not stop the servers left running in %s", dir)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tailFrom returns what was appended to a file after offset, at most 4 KiB
// of its end.
func tailFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 4096
	if size := fileSize(path); size-offset > max {
		offset = size - max
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
