package dnsstack

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// resolver asks the server at addr, over TCP if tcp is set.
func resolver(addr string, tcp bool) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if tcp {
			network = "tcp"
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func lookup(t *testing.T, addr, name string, tcp bool) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return resolver(addr, tcp).LookupTXT(ctx, name+".")
}

func TestServesTXT(t *testing.T) {
	long := strings.Repeat("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 14) // 616 bytes: three strings
	s := StartForTest(t,
		TXT{"sel._domainkey.indyhall.test", "v=DKIM1; k=rsa; p=" + long},
		TXT{"two.test", "first"},
		TXT{"two.test", "second"},
		TXT{"empty.test", ""},
	)
	for _, tcp := range []bool{false, true} {
		got, err := lookup(t, s.Addr, "sel._domainkey.indyhall.test", tcp)
		if err != nil || len(got) != 1 || got[0] != "v=DKIM1; k=rsa; p="+long {
			t.Errorf("tcp=%v: long record: %q, %v", tcp, got, err)
		}
		got, err = lookup(t, s.Addr, "two.test", tcp)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, []string{"first", "second"}) {
			t.Errorf("tcp=%v: two records: %q, %v", tcp, got, err)
		}
		for _, name := range []string{"nothere.indyhall.test", "example.com", "indyhall.test"} {
			_, err = lookup(t, s.Addr, name, tcp)
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				t.Errorf("tcp=%v: %s: %v, want NXDOMAIN", tcp, name, err)
			}
		}
	}
	if got, err := lookup(t, s.Addr, "empty.test", false); err != nil || len(got) != 1 || got[0] != "" {
		t.Errorf("empty record: %q, %v", got, err)
	}
	if !strings.Contains(s.Logs(), "query[TXT] sel._domainkey.indyhall.test") {
		t.Errorf("the log shows no query:\n%s", s.Logs())
	}
}

func TestStopIsFinalAndIdempotent(t *testing.T) {
	s := StartForTest(t, TXT{"a.test", "x"})
	pid := s.pid
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if isOurs(pid, s.Dir) || s.Running() {
		t.Fatalf("dnsmasq %d still runs after Stop", pid)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := resolver(s.Addr, true).LookupTXT(ctx, "a.test."); err == nil {
		t.Fatal("a stopped server answered")
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
	var logs []string
	s, err := Start(context.Background(), Options{
		Records: []TXT{{"a.test", "x"}},
		Logf:    func(f string, a ...any) { logs = append(logs, f) },
		pickAddr: func() (string, error) {
			calls++
			if calls == 1 {
				return busy.Addr().String(), nil
			}
			return freePort()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Stop(); os.RemoveAll(s.Dir) }()
	if calls != 2 || strings.HasSuffix(s.Addr, ":"+strconv.Itoa(busyPort)) {
		t.Errorf("%d ports picked, serving on %s (busy %d)", calls, s.Addr, busyPort)
	}
	if got, err := lookup(t, s.Addr, "a.test", false); err != nil || len(got) != 1 {
		t.Errorf("after a clash: %q, %v", got, err)
	}
}

func TestStartFailsLoudly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	_, err = Start(context.Background(), Options{Dir: dir, pickAddr: func() (string, error) { return busy.Addr().String(), nil }})
	if err == nil || !strings.Contains(err.Error(), "Address already in use") || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("Start on a busy port: %v", err)
	}
	if testing.Verbose() {
		t.Logf("the error: %v", err)
	}
	if _, err := Start(context.Background(), Options{Records: []TXT{{"bad name.test", "x"}}}); err == nil {
		t.Error("a name with a space was accepted")
	}
	if _, err := Start(context.Background(), Options{Records: []TXT{{"a.test", `say "hi"`}}}); err == nil {
		t.Error("a text with quotes was accepted")
	}
}

func TestOrphanIsStopped(t *testing.T) {
	s, err := Start(context.Background(), Options{Records: []TXT{{"a.test", "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(s.Dir)
	defer s.Stop()
	pid := s.pid
	// Pretend the process that started it died.
	if err := os.WriteFile(filepath.Join(s.Dir, ownerFile), []byte("999999999 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reapOrphans(t.Logf)
	if isOurs(pid, s.Dir) {
		t.Fatalf("orphaned dnsmasq %d still runs", pid)
	}
	// A live owner's server is left alone.
	s2 := StartForTest(t, TXT{"b.test", "y"})
	reapOrphans(t.Logf)
	if !s2.Running() {
		t.Fatal("a live test's dnsmasq was stopped")
	}
}

// Two servers on port 53, each on an address of its own, as glibc's
// resolver needs, run side by side and answer each from its own records.
func TestPort53SideBySide(t *testing.T) {
	ctx := context.Background()
	var servers []*Server
	for _, text := range []string{"first", "second"} {
		s, err := Start(ctx, Options{Port53: true, Records: []TXT{{"which.test", text}}, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop(); os.RemoveAll(s.Dir) })
		servers = append(servers, s)
	}
	for i, s := range servers {
		host, port, _ := net.SplitHostPort(s.Addr)
		if port != "53" || !strings.HasPrefix(host, "127.0.0.") || host == "127.0.0.1" {
			t.Errorf("server %d listens on %s, want port 53 of an address of its own", i, s.Addr)
		}
		got, err := lookup(t, s.Addr, "which.test", false)
		if want := []string{"first", "second"}[i]; err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("server %d on %s: %q, %v; want %q", i, s.Addr, got, err, want)
		}
	}
	if servers[0].Addr == servers[1].Addr {
		t.Errorf("both servers on %s", servers[0].Addr)
	}
}
