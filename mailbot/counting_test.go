package mailbot

import (
	"bytes"
	"context"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/promtext"
)

// TestMetricsCountOutcomes: each message is counted once, under what
// became of it, and each command under its name and status word.
func TestMetricsCountOutcomes(t *testing.T) {
	b, _, _ := newTestBot(t, fixedClock()) // the hourly limit is 3 there
	m := metrics.New()
	b.set.Metrics = m
	ctx := context.Background()
	alex := "alex@indyhall.test"

	roster := mail(alex, "m1@indyhall.test", "roster", "add member adam@indyhall.test\nverify adam@indyhall.test\nverify nobody@x.test")
	b.Handle(ctx, roster)
	b.Handle(ctx, roster) // delivered twice
	b.Handle(ctx, mail(alex, "m2@indyhall.test", "question", "help"))
	b.Handle(ctx, mail(alex, "m3@indyhall.test", "again", "verify adam@indyhall.test"))
	b.Handle(ctx, mail(alex, "m4@indyhall.test", "over", "verify adam@indyhall.test")) // the 4th answer this hour
	b.Handle(ctx, mail(alex, "m5@indyhall.test", "forged", "verify x@y.test", "Authentication-Results: "+testAuth+"; dmarc=fail header.from=indyhall.test"))
	b.Handle(ctx, mail(alex, "m6@indyhall.test", "away", "I am away", "Auto-Submitted: auto-replied"))
	b.Handle(ctx, mail("eve@elsewhere.test", "e1@elsewhere.test", "hi", "verify adam@indyhall.test"))
	b.Handle(ctx, mail("eve@elsewhere.test", "e2@elsewhere.test", "hi again", "verify adam@indyhall.test")) // one answer a day

	var page bytes.Buffer
	m.WritePrometheus(&page)
	e, err := promtext.Parse(page.String())
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`mailbot_messages_total{outcome="handled",reason="replied"}`:           4, // m1, m2, m3, e1
		`mailbot_messages_total{outcome="handled",reason="duplicate"}`:         1,
		`mailbot_messages_total{outcome="handled",reason="rate_limited"}`:      1,
		`mailbot_messages_total{outcome="set_aside",reason="unauthenticated"}`: 1,
		`mailbot_messages_total{outcome="set_aside",reason="automatic"}`:       1,
		`mailbot_messages_total{outcome="set_aside",reason="stranger_budget"}`: 1,
		`mailbot_commands_total{command="add_member",status="ok"}`:             1,
		`mailbot_commands_total{command="verify",status="verified"}`:           2, // m1, m3
		`mailbot_commands_total{command="verify",status="denied"}`:             1, // the stranger's
		`mailbot_commands_total{command="verify",status="not_verified"}`:       1,
		`mailbot_commands_total{command="help",status="ok"}`:                   1,
		`mailbot_message_handling_seconds_count`:                               9,
	} {
		if got, ok := e.Value(series); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if got := e.Sum("mailbot_messages_total"); got != 9 {
		t.Errorf("%v messages counted, want 9 (each once)", got)
	}
}
