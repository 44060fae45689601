package mailbot

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/outbox"
	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/storage"
)

func TestInboxReached(t *testing.T) {
	limit := 5 * time.Minute
	now := time.Now()
	for _, tc := range []struct {
		name    string
		started time.Time
		st      inbox.Status
		ok      bool
		why     []string
	}{
		{"idling on a live connection, long after the last answer", now.Add(-time.Hour),
			inbox.Status{Connected: true, Waiting: true, LastAnswer: now.Add(-time.Hour)}, true, nil},
		{"busy with a message, the server answered a minute ago", now.Add(-time.Hour),
			inbox.Status{Connected: true, LastAnswer: now.Add(-time.Minute)}, true, nil},
		{"just started, not connected yet", now.Add(-time.Minute), inbox.Status{}, true, nil},
		{"never connected since the start", now.Add(-10 * time.Minute),
			inbox.Status{LastError: "dial: connection refused"}, false,
			[]string{"not reached for 10m0s (limit 5m0s, health.inbox_stale_after)", "not connected", "last error: dial: connection refused"}},
		{"gone for six minutes", now.Add(-time.Hour),
			inbox.Status{LastAnswer: now.Add(-6 * time.Minute), LastError: "connection closed by server while idling"}, false,
			[]string{"not reached for 6m0s", "connection closed by server while idling"}},
		{"connected but the server stopped answering", now.Add(-time.Hour),
			inbox.Status{Connected: true, LastAnswer: now.Add(-7 * time.Minute)}, false,
			[]string{"not reached for 7m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := inboxReached(func() inbox.Status { return tc.st }, tc.started, limit)()
			if ok != tc.ok {
				t.Fatalf("ok = %v (%q), want %v", ok, why, tc.ok)
			}
			for _, w := range tc.why {
				if !strings.Contains(why, w) {
					t.Errorf("why %q lacks %q", why, w)
				}
			}
			if tc.ok && why != "" {
				t.Errorf("a healthy inbox says %q", why)
			}
			if strings.Contains(why, "not connected") == tc.st.Connected && !tc.ok {
				t.Errorf("why %q for connected=%v", why, tc.st.Connected)
			}
		})
	}
}

func TestRepliesGoOut(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := func() (bool, string) { return repliesGoOut(&outboxView{db: db}, 15*time.Minute)() }
	queue := func(kind string, created time.Time, lastError string) {
		t.Helper()
		err := db.Update(func(tx *storage.Tx) error {
			a, err := outbox.Add(tx, reply.Message{From: testBot, To: "alex@indyhall.test", Subject: "Re: x", Text: "x", Date: created}, kind, 0)
			if err != nil || lastError == "" {
				return err
			}
			it, _, err := tx.OutboxItem(a.ID)
			if err != nil {
				return err
			}
			it.LastError, it.Attempts = lastError, 9
			return tx.PutOutboxItem(it)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if ok, why := check(); !ok {
		t.Errorf("an empty outbox: %q", why)
	}
	queue(outbox.KindReply, time.Now().Add(-time.Minute), "")
	queue(outbox.KindDigest, time.Now().Add(-time.Hour), "421 too many") // digests do not count
	if ok, why := check(); !ok {
		t.Errorf("a reply a minute old and an old digest: %q", why)
	}
	queue(outbox.KindReply, time.Now().Add(-20*time.Minute), "451 4.3.0 try later")
	ok, why := check()
	if ok || !strings.Contains(why, "the oldest reply has waited 20m0s (limit 15m0s, health.outbox_stale_after); 2 replies waiting") ||
		!strings.Contains(why, "last error: 451 4.3.0 try later") {
		t.Errorf("a reply 20 minutes old: %v %q", ok, why)
	}
}
