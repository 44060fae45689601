package mailbot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/message"
	"github.com/coworkingvisa/mailbot/storage"
)

// A member counts as someone the bot serves: more than one answer a day
// (a stranger gets one), in their home space's language; a visit puts a
// notice to the host's managers in the outbox beside the reply, in the
// host's language.
func TestMembersThroughThePipeline(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	db.Update(func(tx *storage.Tx) error {
		tx.PutSpace(storage.Space{ID: "cantine", Name: "La Cantine", Language: "fr"})
		tx.PutMember(storage.Member{Space: "cantine", Email: "zoe@cantine.test", Status: "active"})
		sp, _, _ := tx.Space("indyhall")
		sp.FreeDays = new(3)
		return tx.PutSpace(sp)
	})
	ctx := context.Background()
	for i, raw := range [][]byte{
		mail("zoe@cantine.test", "z1@cantine.test", "espaces", "spaces"),
		mail("zoe@cantine.test", "z2@cantine.test", "visite", "visit indyhall 2026-12-03 days=2"),
		mail("zoe@cantine.test", "z3@cantine.test", "encore", "terms indyhall"),
	} {
		if d := b.Handle(ctx, raw); d.Action != inbox.Handled {
			t.Fatalf("message %d of a member: %+v, want handled", i+1, d)
		}
	}
	out := queued(t, db)
	if len(out) != 4 {
		t.Fatalf("%d messages queued, want 3 replies and 1 visit notice", len(out))
	}
	if r := replyText(t, out[0]); !strings.Contains(r, "OK: 2 espaces participants.") {
		t.Errorf("the member's reply is not in French:\n%s", r)
	}
	// The reply first (someone waits for it), then the notice.
	if r := replyText(t, out[1]); !strings.Contains(r, "votre visite à Indy Hall le 2026-12-03 (2 jours) est annoncée") {
		t.Errorf("visit reply:\n%s", r)
	}
	notice := out[2] + replyText(t, out[2])
	if m, err := message.Parse([]byte(out[2]), message.Limits{}); err != nil || m.Subject != "[Visa] Visit announced: zoe@cantine.test at indyhall on 2026-12-03" {
		t.Errorf("notice subject = %q, %v", m.Subject, err)
	}
	for _, want := range []string{"To: <alex@indyhall.test>",
		"VERIFIED: zoe@cantine.test is a member of La Cantine.", "decline visit ", "Auto-Submitted: auto-generated"} {
		if !strings.Contains(notice, want) {
			t.Errorf("visit notice lacks %q:\n%s", want, notice)
		}
	}
	if r := replyText(t, out[3]); !strings.Contains(r, "jours gratuits : 3 jours gratuits par mois") {
		t.Errorf("terms reply:\n%s", r)
	}
}

// A stranger (on no roster) may ask to be forgotten and confirm it the
// same day, although strangers get one answer a day; nothing of the
// exactly-once records names them.
func TestStrangerConfirmsErasure(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	ctx := context.Background()
	db.Update(func(tx *storage.Tx) error {
		// Someone removed from a roster whose history still names them.
		_, err := tx.Record(storage.Change{At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Actor: "alex@indyhall.test",
			Space: "indyhall", Kind: "member", Key: "gone@else.test", Action: "remove"})
		return err
	})
	if d := b.Handle(ctx, mail("gone@else.test", "g1@else.test", "privacy", "forget me")); d.Action != inbox.Handled {
		t.Fatalf("forget me: %+v", d)
	}
	out := queued(t, db)
	tok := tokenIn(t, out[0])
	if d := b.Handle(ctx, mail("gone@else.test", "g2@else.test", "Re: privacy", "confirm "+tok)); d.Action != inbox.Handled {
		t.Fatalf("confirm from a stranger the same day: %+v, want handled", d)
	}
	out = queued(t, db)
	if len(out) != 2 || !strings.Contains(out[1], "OK: everything the network held about gone@else.test is erased.") {
		t.Fatalf("replies:\n%s", strings.Join(out, "\n----\n"))
	}
	// A third message the same day is a stranger's again: over the budget.
	if d := b.Handle(ctx, mail("gone@else.test", "g3@else.test", "x", "my data")); d.Action != inbox.SetAside {
		t.Errorf("a third message of the day: %+v, want set aside", d)
	}
	db.View(func(tx *storage.Tx) error {
		for _, k := range []string{"gone@else.test g1@else.test", "gone@else.test g2@else.test"} {
			if _, found, _ := tx.Handled(k); found {
				t.Errorf("an exactly-once record under the address: %q", k)
			}
		}
		if _, found, _ := tx.Handled(tx.Pseudonym("gone@else.test") + " g2@else.test"); !found {
			t.Error("no exactly-once record under the pseudonym")
		}
		tx.Changes(0, func(c storage.Change) bool {
			if c.Key == "gone@else.test" {
				t.Errorf("the audit still names the address: %+v", c)
			}
			return true
		})
		if asked, _, _ := tx.CompactionDue(); !asked {
			t.Error("no compaction asked for")
		}
		for _, k := range []string{"gone@else.test", "stranger:gone@else.test"} {
			if w, _ := tx.RateWindow(k); w.Count != 0 {
				t.Errorf("a reply counter under the address: %q", k)
			}
		}
		return nil
	})
	// The same confirmation delivered again is recognised.
	if d := b.Handle(ctx, mail("gone@else.test", "g2@else.test", "Re: privacy", "confirm "+tok)); d.Action != inbox.Handled {
		t.Errorf("the confirmation again: %+v", d)
	}
	if n := len(queued(t, db)); n != 2 {
		t.Errorf("%d replies after a duplicate, want 2", n)
	}
}

// A message handled by a version that kept the address in its
// exactly-once key is still recognised.
func TestLegacyHandledKeys(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	db.Update(func(tx *storage.Tx) error {
		return tx.MarkHandled("alex@indyhall.test old@indyhall.test", storage.HandledMessage{At: fixedClock()(), Outcome: "replied"})
	})
	b.Handle(context.Background(), mail("alex@indyhall.test", "old@indyhall.test", "x", "add member late@indyhall.test"))
	if n := len(queued(t, db)); n != 0 {
		t.Errorf("a message handled before the upgrade was handled again: %d replies", n)
	}
}

func tokenIn(t *testing.T, reply string) string {
	t.Helper()
	i := strings.Index(reply, "confirm ")
	if i < 0 {
		t.Fatalf("no token in:\n%s", reply)
	}
	return strings.Fields(reply[i+len("confirm "):])[0]
}

// The daemon's hourly prune applies privacy.retention: old visa records go,
// and old audit entries of people on no roster name their pseudonym; the
// admins (the config names them anyway) and people on a roster keep theirs.
func TestPruneByRetention(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	now := fixedClock()()
	old := now.AddDate(-2, 0, 0)
	db.Update(func(tx *storage.Tx) error {
		tx.PutMember(storage.Member{Space: "indyhall", Email: "stays@indyhall.test", Status: "active"})
		tx.RecordVerification(storage.Verification{At: old, Host: "alex@indyhall.test", Visitor: "v@else.test"})
		tx.PutVisit(storage.Visit{Token: "OLD", Space: "indyhall", Member: "v@else.test", From: old.Format(time.DateOnly), Days: 1, At: old})
		for _, c := range []storage.Change{
			{At: old, Actor: "admin@visa.test", Space: "indyhall", Kind: "member", Key: "gone@else.test", Action: "remove"},
			{At: old, Actor: "gone@else.test", Space: "indyhall", Kind: "member", Key: "stays@indyhall.test", Action: "add"},
			{At: now, Actor: "alex@indyhall.test", Space: "indyhall", Kind: "member", Key: "recent@else.test", Action: "remove"},
		} {
			if _, err := tx.Record(c); err != nil {
				return err
			}
		}
		return nil
	})
	d := &Daemon{DB: db, Bot: b, log: quiet, retention: time.Duration(testConfig().Privacy.Retention)}
	d.pruneVisa(now)
	db.View(func(tx *storage.Tx) error {
		var n int
		tx.Verifications(0, func(storage.Verification) bool { n++; return true })
		if _, found, _ := tx.Visit("OLD"); n != 0 || found {
			t.Errorf("%d verifications and the visit (%v) outlived the retention", n, found)
		}
		var got []string
		tx.Changes(0, func(c storage.Change) bool { got = append(got, c.Actor+" "+c.Key); return true })
		p := tx.Pseudonym("gone@else.test")
		want := "admin@visa.test " + p + "|" + p + " stays@indyhall.test|alex@indyhall.test recent@else.test"
		if strings.Join(got, "|") != want {
			t.Errorf("audit after the prune:\n%s\nwant\n%s", strings.Join(got, "|"), want)
		}
		return nil
	})
}
