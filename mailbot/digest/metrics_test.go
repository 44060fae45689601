package digest

import (
	"bytes"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/promtext"
)

// TestMetricsCountDigests: each digest message queued is counted once, by
// audience; a pass that finds nothing due counts nothing.
func TestMetricsCountDigests(t *testing.T) {
	f := newFixture(t)
	m := metrics.New()
	f.s.set.Metrics = m
	f.sendDue(t, nyDue) // 2 Indy Hall managers, 1 La Cantine, 1 admin
	f.sendDue(t, nyDue)
	var page bytes.Buffer
	m.WritePrometheus(&page)
	e, err := promtext.Parse(page.String())
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`mailbot_digests_queued_total{audience="space"}`:   3,
		`mailbot_digests_queued_total{audience="network"}`: 1,
	} {
		if got, _ := e.Value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
