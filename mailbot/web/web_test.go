package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/health"
	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/promtext"
)

// server is what the daemon sets up: /healthz and /metrics local, and a
// public route as the directory will add.
func server(public bool, checks *health.Checks, m *metrics.Metrics) *Server {
	s := New(Options{MetricsPublic: public})
	s.HandleLocal("GET /healthz", checks)
	s.HandleLocal("GET /metrics", m)
	s.Handle("GET /spaces.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "[]\n")
	}))
	return s
}

func do(s *Server, path, peer string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = peer
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	return rec
}

func TestLocalOnly(t *testing.T) {
	s := server(false, &health.Checks{}, metrics.New())
	for _, tc := range []struct {
		peer   string
		header []string
		want   int
	}{
		{"127.0.0.1:50000", nil, http.StatusOK},
		{"127.3.4.5:50000", nil, http.StatusOK},
		{"[::1]:50000", nil, http.StatusOK},
		{"[::ffff:127.0.0.1]:50000", nil, http.StatusOK},
		{"192.0.2.7:50000", nil, http.StatusForbidden},
		{"[2001:db8::1]:50000", nil, http.StatusForbidden},
		{"[::ffff:192.0.2.7]:50000", nil, http.StatusForbidden},
		{"10.0.0.1:50000", nil, http.StatusForbidden},
		{"not an address", nil, http.StatusForbidden},
		// A reverse proxy on this machine: its peer is loopback, but the
		// request came from elsewhere.
		{"127.0.0.1:50000", []string{"X-Forwarded-For", "192.0.2.7"}, http.StatusForbidden},
		{"127.0.0.1:50000", []string{"Forwarded", "for=192.0.2.7"}, http.StatusForbidden},
		{"127.0.0.1:50000", []string{"X-Real-IP", "192.0.2.7"}, http.StatusForbidden},
	} {
		for _, path := range []string{"/healthz", "/metrics"} {
			rec := do(s, path, tc.peer, tc.header...)
			if rec.Code != tc.want {
				t.Errorf("%s from %s %v: %d, want %d", path, tc.peer, tc.header, rec.Code, tc.want)
			}
			if rec.Code == http.StatusForbidden && strings.Contains(rec.Body.String(), "mailbot_") {
				t.Errorf("%s from %s: a refusal shows metrics", path, tc.peer)
			}
		}
		// The public routes answer everyone.
		if rec := do(s, "/spaces.json", tc.peer, tc.header...); rec.Code != http.StatusOK {
			t.Errorf("public route from %s: %d", tc.peer, rec.Code)
		}
	}
}

func TestMetricsPublic(t *testing.T) {
	s := server(true, &health.Checks{}, metrics.New())
	for _, path := range []string{"/healthz", "/metrics"} {
		if rec := do(s, path, "192.0.2.7:50000", "X-Forwarded-For", "198.51.100.1"); rec.Code != http.StatusOK {
			t.Errorf("%s with metrics_public: %d", path, rec.Code)
		}
	}
}

// TestServe runs the listener for real on a free loopback port: /healthz
// turns 503 naming the part that fails, /metrics reads as the Prometheus
// format, and Serve returns when its context ends.
func TestServe(t *testing.T) {
	var checks health.Checks
	var inboxDown atomic.Bool
	checks.Add("store", func() (bool, string) { return true, "" })
	checks.Add("inbox", func() (bool, string) { return !inboxDown.Load(), "not reached for 6m0s (limit 5m0s)" })
	m := metrics.New()
	m.Message(metrics.Handled, metrics.Replied)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server(false, &checks, m).Serve(ctx, l) }()
	base := "http://" + l.Addr().String()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\nstore: ok\ninbox: ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
	inboxDown.Store(true)
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "inbox: failing: not reached for 6m0s (limit 5m0s)\n") || !strings.Contains(body, "store: ok\n") {
		t.Errorf("unhealthy: %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	e, err := promtext.Parse(body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, body)
	}
	if v, _ := e.Value(`mailbot_messages_total{outcome="handled",reason="replied"}`); v != 1 {
		t.Errorf("handled messages = %v, want 1", v)
	}
	if code, _ := get("/nothing-here"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
