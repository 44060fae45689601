package digest

import (
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/storage"
)

// A space's digest leads with what its managers act on. A check at another
// space that found no membership shows there when the address was a member
// of this space (removed, or past its end date), never for a stranger. Names
// sort as the space's language sorts them: Élodie with the E's.
func TestDigestLeadsWithWhatToActOn(t *testing.T) {
	f := newFixture(t)
	f.update(t, func(tx *storage.Tx) error {
		for _, m := range []storage.Member{
			{Space: "indyhall", Email: "zoe@x.test", Name: "Zoë Brandt", Status: "active"},
			{Space: "indyhall", Email: "elodie@x.test", Name: "Élodie Durand", Status: "active"},
			{Space: "indyhall", Email: "eric@x.test", Name: "eric Faure", Status: "active"},
			{Space: "indyhall", Email: "fay@x.test", Name: "Fay", Status: "active"},
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		for _, v := range []storage.Verification{
			// old@x.test was removed from Indy Hall on 20 Nov (the fixture's audit).
			{At: utc("2026-11-26T12:00:00Z"), Host: "boss@cantine.test", HostSpace: "cantine", Visitor: "old@x.test"},
			{At: utc("2026-11-26T12:30:00Z"), Host: "boss@cantine.test", HostSpace: "cantine", Visitor: "dan@x.test"},
			{At: utc("2026-11-26T13:00:00Z"), Host: "boss@cantine.test", HostSpace: "cantine", Visitor: "stranger@x.test"},
		} {
			if err := tx.RecordVerification(v); err != nil {
				return err
			}
		}
		return nil
	})
	f.sendDue(t, nyDue)
	indy := find(t, f.outbox(t), "m1@indyhall.test")
	text := indy.text

	want := "Former members turned away at other spaces (2):\n" +
		"  Thu 26 Nov 07:00  old@x.test\n    NOT VERIFIED at La Cantine; no longer on your roster\n" +
		"  Thu 26 Nov 07:30  dan@x.test\n    NOT VERIFIED at La Cantine; on your roster: expired\n"
	if !strings.Contains(text, want) {
		t.Errorf("digest lacks\n%s\nin:\n%s", want, text)
	}
	if strings.Contains(text, "stranger@x.test") || strings.Contains(indy.html, "stranger@x.test") {
		t.Error("a stranger turned away elsewhere shows in the digest")
	}
	if !strings.Contains(indy.html, "old@x.test · Thu 26 Nov 07:00 · <span") || !strings.Contains(indy.html, "✗ NOT VERIFIED</span>") {
		t.Errorf("HTML lacks the turned-away line:\n%s", indy.html)
	}
	// The order of the sections: act on, visits, changes, roster.
	order := []string{"=== To act on ===", "Memberships ending", "Former members turned away", "=== Visits ===", "=== Changes ===", "Roster ("}
	assertOrder(t, text, order)
	// Collation, not bytes: "Élodie" and "eric" among the E's, "Zoë" last.
	roster := text[strings.Index(text, "Roster ("):]
	assertOrder(t, roster, []string{"Amy Adams", "Cat, the second", "Élodie Durand", "eric Faure", "Fay", "Zoë Brandt", "dan@x.test"})
	// The attachment keeps the digest's order.
	csv := string(indy.attachments["indyhall-roster-2026-11-30.csv"])
	assertOrder(t, csv, []string{"amy@x.test", "elodie@x.test", "eric@x.test", "fay@x.test", "zoe@x.test"})
}

func assertOrder(t *testing.T, s string, parts []string) {
	t.Helper()
	at := -1
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			t.Errorf("%q missing", p)
			continue
		}
		if i < at {
			t.Errorf("%q comes before what precedes it in %q:\n%s", p, parts, s)
		}
		at = i
	}
}
