package metrics

import (
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/promtext"
)

func scrape(t *testing.T, m *Metrics) *promtext.Exposition {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	e, err := promtext.Parse(rec.Body.String())
	if err != nil {
		t.Fatalf("the page is not the Prometheus text format: %v\n%s", err, rec.Body.String())
	}
	return e
}

func value(t *testing.T, e *promtext.Exposition, series string) float64 {
	t.Helper()
	v, ok := e.Value(series)
	if !ok {
		t.Fatalf("no series %s", series)
	}
	return v
}

func TestCountsAndFormat(t *testing.T) {
	m := New()
	m.OutboxKinds("reply", "digest")
	m.Message(Handled, Replied)
	m.Message(Handled, Replied)
	m.Message(SetAside, StrangerBudget)
	m.Command("add member", "OK")
	m.Command("verify", "NOT VERIFIED")
	m.Command("verify", "NOT VERIFIED")
	m.HandlingTime(30 * time.Millisecond)
	m.HandlingTime(3 * time.Second)
	m.BreakerTripped()
	m.Sent("reply")
	m.SendFailed("reply")
	m.Dropped("digest", Expired)
	m.Held("reply")
	m.DigestsQueued(SpaceDigest, 3)
	m.TokenRefreshed(nil)
	m.TokenRefreshed(errors.New("invalid_grant"))
	depth := 4.0
	m.Gauge("mailbot_outbox_depth", func() float64 { return depth }, "kind", "reply")

	e := scrape(t, m)
	for series, want := range map[string]float64{
		`mailbot_messages_total{outcome="handled",reason="replied"}`:           2,
		`mailbot_messages_total{outcome="set_aside",reason="stranger_budget"}`: 1,
		`mailbot_messages_total{outcome="deferred",reason="breaker"}`:          0, // there from the start
		`mailbot_commands_total{command="add_member",status="ok"}`:             1,
		`mailbot_commands_total{command="verify",status="not_verified"}`:       2,
		`mailbot_message_handling_seconds_bucket{le="0.05"}`:                   1,
		`mailbot_message_handling_seconds_bucket{le="5"}`:                      2,
		`mailbot_message_handling_seconds_count`:                               2,
		`mailbot_breaker_trips_total`:                                          1,
		`mailbot_outbox_sent_total{kind="reply"}`:                              1,
		`mailbot_outbox_sent_total{kind="digest"}`:                             0,
		`mailbot_outbox_failed_total{kind="reply"}`:                            1,
		`mailbot_outbox_dropped_total{kind="digest",reason="expired"}`:         1,
		`mailbot_outbox_dropped_total{kind="reply",reason="rejected"}`:         0,
		`mailbot_outbox_held_total{kind="reply"}`:                              1,
		`mailbot_digests_queued_total{audience="space"}`:                       3,
		`mailbot_digests_queued_total{audience="network"}`:                     0,
		`mailbot_oauth2_token_refreshes_total{result="ok"}`:                    1,
		`mailbot_oauth2_token_refreshes_total{result="error"}`:                 1,
		`mailbot_outbox_depth{kind="reply"}`:                                   4,
	} {
		if got := value(t, e, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// A gauge is read at each scrape.
	depth = 0
	if got := value(t, scrape(t, m), `mailbot_outbox_depth{kind="reply"}`); got != 0 {
		t.Errorf("depth after it fell = %v, want 0", got)
	}
	// Our families carry their HELP and TYPE; the process's own are there.
	for _, f := range []string{"mailbot_messages_total", "mailbot_message_handling_seconds", "mailbot_outbox_depth"} {
		if e.Types[f] == "" || e.Help[f] == "" {
			t.Errorf("%s: TYPE %q, HELP %q", f, e.Types[f], e.Help[f])
		}
	}
	if e.Types["mailbot_message_handling_seconds"] != "histogram" {
		t.Errorf("handling time is a %q", e.Types["mailbot_message_handling_seconds"])
	}
	if _, ok := e.Value("process_resident_memory_bytes"); !ok {
		t.Error("no process_resident_memory_bytes")
	}
}

// TestNilCountsNothing: a part built without metrics calls the same
// methods.
func TestNilCountsNothing(t *testing.T) {
	var m *Metrics
	m.Message(Handled, Replied)
	m.Command("verify", "OK")
	m.HandlingTime(time.Second)
	m.BreakerTripped()
	m.OutboxKinds("reply")
	m.Sent("reply")
	m.SendFailed("reply")
	m.Dropped("reply", Rejected)
	m.Held("reply")
	m.DigestsQueued(NetworkDigest, 1)
	m.TokenRefreshed(nil)
	m.Gauge("mailbot_outbox_depth", func() float64 { return 1 })
	if e := scrape(t, m); e.Sum("mailbot_messages_total") != 0 {
		t.Error("a nil Metrics shows messages")
	}
}

// TestLabelsStayFixed: a label value never carries free text into a
// series name.
func TestLabelsStayFixed(t *testing.T) {
	m := New()
	m.Command("add member\"} 1\nevil_total{x=\"", "OK")
	e := scrape(t, m) // parses: nothing was injected
	if e.Sum("evil_total") != 0 || e.Sum("mailbot_commands_total") != 1 {
		t.Errorf("samples: %v", e.Samples)
	}
	if got := label(strings.Repeat("x", 100)); len(got) != 40 {
		t.Errorf("a long label is %d bytes", len(got))
	}
}

func TestGaugeMustBeDocumented(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("an undocumented gauge was accepted")
		}
	}()
	New().Gauge("mailbot_something_else", func() float64 { return 1 })
}

// TestREADMEDocumentsEveryMetric keeps the README's table in step.
func TestREADMEDocumentsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families() {
		if !strings.Contains(string(readme), "`"+f.name+"`") && !strings.Contains(string(readme), "`"+f.name+"{") {
			t.Errorf("README.md does not document %s", f.name)
		}
	}
}
