package outbox

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/promtext"
	"github.com/coworkingvisa/mailbot/storage"
)

func counts(t *testing.T, m *metrics.Metrics) *promtext.Exposition {
	t.Helper()
	var b bytes.Buffer
	m.WritePrometheus(&b)
	e, err := promtext.Parse(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestMetricsAndStats: each outcome of a send is counted once, by kind,
// and Stats sees what waits and what is held.
func TestMetricsAndStats(t *testing.T) {
	db := newDB(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	m := metrics.New()
	m.OutboxKinds(KindReply, KindNotice, KindDigest)

	w, err := Stats(db)
	if err != nil || len(w.Depth) != 0 || w.Held != 0 {
		t.Fatalf("Stats of an empty outbox = %+v, %v", w, err)
	}

	fresh := add(t, db, "retried, then sent", now.Add(-time.Minute))
	add(t, db, "refused", now)
	old := add(t, db, "too old", now.Add(-5*24*time.Hour))
	db.Update(func(tx *storage.Tx) error { // tried for days already
		it, _, _ := tx.OutboxItem(old)
		it.Attempts = 20
		return tx.PutOutboxItem(it)
	})
	s := &fakeSender{fail: []error{errors.New("451 later"), errPermanent, errors.New("451 later")}}
	q := New(db, []Sender{s}, Config{
		Backoff:  Backoff{Initial: time.Minute, Max: time.Hour, GiveUpAfter: 4 * 24 * time.Hour},
		Classify: classify, Metrics: m, Now: func() time.Time { return now },
	})
	q.Flush(context.Background()) // the first fails, the second is refused, the third expired

	w, err = Stats(db)
	if err != nil || w.Depth[KindReply] != 1 || !w.Oldest[KindReply].Equal(now.Add(-time.Minute)) || w.OldestError[KindReply] != "451 later" {
		t.Errorf("Stats with one reply waiting = %+v, %v", w, err)
	}
	now = now.Add(time.Minute)
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := item(t, db, fresh); ok {
		t.Fatal("the retried reply is still queued")
	}

	// One held after dying in its send three times.
	held := add(t, db, "kills the process", now)
	for range DefaultMaxCrashes {
		db.Update(func(tx *storage.Tx) error {
			it, _, _ := tx.OutboxItem(held)
			it.Sending = now
			return tx.PutOutboxItem(it)
		})
		if err := q.Recover(); err != nil {
			t.Fatal(err)
		}
	}
	if w, _ := Stats(db); w.Held != 1 || w.Depth[KindReply] != 0 {
		t.Errorf("Stats with one held = %+v", w)
	}

	e := counts(t, m)
	for series, want := range map[string]float64{
		`mailbot_outbox_sent_total{kind="reply"}`:                      1,
		`mailbot_outbox_failed_total{kind="reply"}`:                    1,
		`mailbot_outbox_dropped_total{kind="reply",reason="rejected"}`: 1,
		`mailbot_outbox_dropped_total{kind="reply",reason="expired"}`:  1,
		`mailbot_outbox_held_total{kind="reply"}`:                      1,
		`mailbot_outbox_sent_total{kind="digest"}`:                     0,
	} {
		if got, ok := e.Value(series); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
}
