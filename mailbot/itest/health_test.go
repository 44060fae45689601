package itest

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/promtext"
)

// TestHealthAndMetrics runs a bot with http.listen on a free loopback
// port: /metrics counts the commands it answered, and /healthz turns 503
// naming the inbox while Dovecot is stopped, and 200 again once it is back.
func TestHealthAndMetrics(t *testing.T) {
	w := newWorld("health")
	addUsers(t, w.bot, w.admin, w.alex, w.mad, w.eve)
	store := filepath.Join(t.TempDir(), "visa.db")
	listen := deadAddr(t) // free now; the bot listens there
	b := startBotWith(t, w, store, stack.SMTPAddr, func(c *config.Config) {
		// The listener is what this test is about (off by default).
		c.HTTP.Listen = listen
		// The default of 5 minutes would make the test wait that long
		// after Dovecot stops; 3 s still lies above the watcher's first
		// reconnect (1 s) and is never reached while Dovecot runs, since
		// a connected, idling watcher counts as reaching the inbox.
		c.Health.InboxStaleAfter = 3 * time.Second
	})
	base := "http://" + listen
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(body)
	}
	// waitFor polls until cond holds for a response of path.
	waitFor := func(what, path string, within time.Duration, cond func(code int, body string) bool) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := get(path)
			if cond(code, body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v; last %s: %d\n%s", what, within, path, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	scrape := func() *promtext.Exposition {
		t.Helper()
		code, body := get("/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d\n%s", code, body)
		}
		e, err := promtext.Parse(body)
		if err != nil {
			t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, body)
		}
		return e
	}

	waitFor("healthy at start", "/healthz", 30*time.Second, func(code int, body string) bool {
		return code == http.StatusOK && body == "ok\nstore: ok\ninbox: ok\noutbox: ok\nstore writes: ok\n"
	})

	setup(t, w) // the admin's two add space and two add manager lines, among others
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "front desk"}, "verify nobody@betahaus.test"))
	mustContain(t, waitMail(t, w.alex, "INBOX", 1)[0], "NOT VERIFIED: nobody@betahaus.test")

	// The send is counted just after the server took the reply: wait for it.
	waitFor("the replies counted as sent", "/metrics", 30*time.Second, func(_ int, body string) bool {
		return strings.Contains(body, `mailbot_outbox_sent_total{kind="reply"} 2`+"\n")
	})
	e := scrape()
	for series, want := range map[string]float64{
		`mailbot_messages_total{outcome="handled",reason="replied"}`:            2,
		`mailbot_commands_total{command="add_space",status="ok"}`:               2,
		`mailbot_commands_total{command="add_manager",status="ok"}`:             2,
		`mailbot_commands_total{command="verify",status="not_verified"}`:        1,
		`mailbot_message_handling_seconds_count`:                                2,
		`mailbot_outbox_depth{kind="reply"}`:                                    0,
		`mailbot_imap_connected`:                                                1,
		`mailbot_messages_total{outcome="set_aside",reason="automatic"}`:        0,
		`mailbot_outbox_dropped_total{kind="reply",reason="rejected"}`:          0,
		`mailbot_messages_total{outcome="quarantined",reason="internal_error"}`: 0,
	} {
		if got, ok := e.Value(series); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if sweep, _ := e.Value("mailbot_imap_last_sweep_timestamp_seconds"); time.Since(time.Unix(int64(sweep), 0)) > time.Minute {
		t.Errorf("last sweep at %v", time.Unix(int64(sweep), 0))
	}
	if _, ok := e.Value("process_resident_memory_bytes"); !ok {
		t.Error("no process metrics")
	}

	ctx := ctxT(t)
	if err := stack.StopDovecot(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted { // the other tests share Dovecot
			if err := stack.StartDovecot(ctxT(t)); err != nil {
				t.Error(err)
			}
		}
	}()
	body := waitFor("unhealthy without Dovecot", "/healthz", 60*time.Second, func(code int, body string) bool {
		return code == http.StatusServiceUnavailable
	})
	t.Logf("/healthz without Dovecot:\n%s", body)
	for _, want := range []string{"unhealthy\n", "store: ok\n", "outbox: ok\n",
		"inbox: failing: not reached for ", "(limit 3s, health.inbox_stale_after); not connected; last error: "} {
		if !strings.Contains(body, want) {
			t.Errorf("/healthz without Dovecot lacks %q:\n%s", want, body)
		}
	}
	if v, _ := scrape().Value("mailbot_imap_connected"); v != 0 {
		t.Errorf("mailbot_imap_connected = %v without Dovecot", v)
	}

	if err := stack.StartDovecot(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// The watcher retries with growing waits (at most a minute apart).
	waitFor("healthy again with Dovecot back", "/healthz", 90*time.Second, func(code int, body string) bool {
		return code == http.StatusOK && strings.Contains(body, "inbox: ok\n")
	})
	b.stop()
	if !strings.Contains(b.log.String(), "http listening") {
		t.Errorf("the listener was not logged:\n%s", lastLines(b.log.String(), 20))
	}
}
