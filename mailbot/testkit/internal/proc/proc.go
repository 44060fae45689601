// Package proc holds what the test harnesses that start and stop real
// servers (mailstack, dnsstack, verifier) share: what Linux's /proc says of
// a process (whether a PID is still ours and alive, which processes share
// its group, whether a server listens on its port), PID and owner files,
// and a server's end with its test.
package proc

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Stat returns a process's state letter, process group and start time (in
// clock ticks after boot) from /proc/PID/stat (proc(5)).
func Stat(pid int) (state byte, pgrp int, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// Fields after the name start at field 3 (state); pgrp is field 5 and
	// starttime field 22.
	pgrp, err = strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, "", fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return f[0][0], pgrp, f[19], nil
}

// IsLive tells whether pid runs. A zombie counts as gone: on machines
// without an init that reaps promptly, exited daemons linger as zombies.
func IsLive(pid int) bool {
	if pid <= 0 {
		return false
	}
	state, _, _, err := Stat(pid)
	return err == nil && state != 'Z' && state != 'X'
}

// Identity names a process so that a recycled PID is not mistaken for it:
// "PID STARTTIME".
func Identity(pid int) (string, error) {
	_, _, start, err := Stat(pid)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(pid) + " " + start, nil
}

// GroupMembers lists the live processes of process group pgrp.
func GroupMembers(pgrp int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, g, _, err := Stat(pid); err == nil && g == pgrp && state != 'Z' && state != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// HasArg tells whether live process pid was started with arg among its
// arguments (from /proc/PID/cmdline).
func HasArg(pid int, arg string) bool {
	if !IsLive(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, a := range strings.Split(string(cmdline), "\x00") {
		if a == arg {
			return true
		}
	}
	return false
}

// ListensTCP tells whether live process pid holds a listening TCP socket on
// port (any IPv4 address): a positive sign that a server bound its port,
// which a successful dial is not, as a stranger may hold the port.
func ListensTCP(pid, port int) bool {
	if !IsLive(pid) {
		return false
	}
	// Its sockets, by inode.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && err == nil {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	// proc(5), /proc/net/tcp: "sl local_address rem_address st ... inode",
	// the local address as HEXIP:HEXPORT, state 0A for LISTEN.
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
			return true
		}
	}
	return false
}

// ReadPID reads a PID file (Postfix pads its PID with spaces).
func ReadPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: no PID in %q", path, b)
	}
	return pid, nil
}

// WriteOwner writes this process's identity to path: the owner file of a
// directory whose servers it starts, read by Owner to find the servers a
// dead test process left running.
func WriteOwner(path string) error {
	id, err := Identity(os.Getpid())
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(id+"\n"), 0o644)
}

// Owner reads an owner file and tells whether the process it names still
// runs: the same process, not another one with its recycled PID. owner is
// "" when there is no owner file.
func Owner(path string) (owner string, alive bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	owner = strings.TrimSpace(string(b))
	pid, err := strconv.Atoi(strings.Fields(owner + " x")[0])
	if err != nil {
		return owner, false
	}
	id, err := Identity(pid)
	return owner, err == nil && id == owner && IsLive(pid)
}

// Orphaned lists the directories matching pattern whose owner file (named
// ownerFile inside) names a process that is gone: a test binary killed by
// its timeout runs no cleanup, and the servers it started run on.
func Orphaned(pattern, ownerFile string) []string {
	dirs, _ := filepath.Glob(pattern)
	var out []string
	for _, dir := range dirs {
		if owner, alive := Owner(filepath.Join(dir, ownerFile)); owner != "" && !alive {
			out = append(out, dir)
		}
	}
	return out
}

// ChownToUser gives path to a system user, for a server that writes there
// after it dropped root.
func ChownToUser(path, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("%w (run .ci/install-deps as root)", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	return os.Chown(path, uid, -1)
}

// Servers are what a harness started, as a test ends them.
type Servers interface {
	Stop() error
	Logs() string
}

// CleanupForTest stops s when t ends and removes dirs, unless t failed:
// then s's logs are shown and dirs kept for a look.
func CleanupForTest(t testing.TB, name string, s Servers, dirs ...string) {
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("%v\n%s", err, s.Logs())
		}
		if t.Failed() {
			t.Logf("%s: test failed: directory %s kept\n%s", name, strings.Join(dirs, ", "), s.Logs())
			return
		}
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}
