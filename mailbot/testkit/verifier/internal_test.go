package verifier

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(addr, "inet:"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStopIsFinalAndIdempotent(t *testing.T) {
	v := StartForTest(t)
	v.mu.Lock()
	running := append([]*milter(nil), v.running...)
	v.mu.Unlock()
	if len(running) != 2 || len(v.Milters) != 2 {
		t.Fatalf("%d milters running, %d sockets; want 2", len(running), len(v.Milters))
	}
	// Each behind its relay; OpenDKIM's serializes.
	for i, r := range v.relays {
		if want := "inet:" + r.Addr(); v.Milters[i] != want || portOf(t, r.target) != running[i].port || r.serialize != (i == 0) {
			t.Errorf("Postfix's milter %d is %s; relay %s to %s (serializing %v); %s listens on %d",
				i, v.Milters[i], r.Addr(), r.target, r.serialize, running[i].name, running[i].port)
		}
	}
	for _, m := range running {
		if !proc.ListensTCP(m.pid, m.port) {
			t.Errorf("%s %d does not listen on port %d", m.name, m.pid, m.port)
		}
		// Each wrote its PID file, which orphan cleanup reads.
		dir := map[string]string{"opendkim": dkimRun, "opendmarc": dmarcRun}[m.name]
		if pid, err := proc.ReadPID(v.path(dir + "/" + m.name + ".pid")); err != nil || pid != m.pid {
			t.Errorf("%s PID file: %d, %v; want %d", m.name, pid, err, m.pid)
		}
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, m := range running {
		if isOurs(m.pid, m.conf) {
			t.Errorf("%s %d still runs after Stop", m.name, m.pid)
		}
	}
	if v.DNS.Running() {
		t.Error("the DNS server still runs after Stop")
	}
	if err := v.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestPortClashRetries(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	calls := 0
	v, err := Start(context.Background(), Options{Logf: t.Logf, pickPort: func() (int, error) {
		calls++
		if calls == 1 {
			return busyPort, nil
		}
		return freePort()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Remove()
	defer v.Stop()
	if calls != 3 || v.running[0].port == busyPort {
		t.Errorf("%d ports picked, milters on %v (busy %d)", calls, v.Milters, busyPort)
	}
}

func TestStartFailsLoudly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = Start(context.Background(), Options{pickPort: func() (int, error) { return busy.Addr().(*net.TCPAddr).Port, nil }})
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("Start on a busy port: %v", err)
	}
	if testing.Verbose() {
		t.Logf("the error: %v", err)
	}
	// The directories named in the error are kept for a look.
	for _, dir := range regexp.MustCompile(`/tmp/mailbot-(vf|dns)-\d+`).FindAllString(err.Error(), -1) {
		os.RemoveAll(dir)
	}
}

func TestOrphanIsStopped(t *testing.T) {
	v, err := Start(context.Background(), Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Remove()
	defer v.Stop()
	v.mu.Lock()
	running := append([]*milter(nil), v.running...)
	v.mu.Unlock()
	// Pretend the process that started it died.
	if err := os.WriteFile(filepath.Join(v.Dir, ownerFile), []byte("999999999 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reapOrphans(t.Logf)
	for _, m := range running {
		<-m.done
		if isOurs(m.pid, m.conf) {
			t.Errorf("orphaned %s %d still runs", m.name, m.pid)
		}
	}
	// A live owner's milters are left alone.
	v2 := StartForTest(t)
	reapOrphans(t.Logf)
	v2.mu.Lock()
	defer v2.mu.Unlock()
	for _, m := range v2.running {
		if !isOurs(m.pid, m.conf) {
			t.Errorf("a live test's %s was stopped", m.name)
		}
	}
}
