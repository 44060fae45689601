package digest

import (
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
)

// visaDays gives the fixture's network some used days: eve (cantine)
// visiting Indy Hall three days this month and one in October, amy and bob
// (indyhall) one day each at La Cantine, and a day of an Indy Hall member
// at Indy Hall itself, which is no visit.
func visaDays(t *testing.T, f *fixture) {
	t.Helper()
	f.update(t, func(tx *storage.Tx) error {
		at := utc("2026-11-20T10:00:00Z")
		for _, d := range []struct{ host, visitor, date, home string }{
			{"indyhall", "eve@x.test", "2026-11-02", "cantine"},
			{"indyhall", "eve@x.test", "2026-11-03", "cantine"},
			{"indyhall", "eve@x.test", "2026-11-27", "cantine"},
			{"indyhall", "eve@x.test", "2026-10-15", "cantine"},
			{"cantine", "amy@x.test", "2026-11-25", "indyhall"},
			{"cantine", "bob@x.test", "2025-12-01", "indyhall"}, // last year
			{"indyhall", "bob@x.test", "2026-11-27", "indyhall"},
		} {
			if _, err := tx.UseDay(d.host, d.visitor, d.date, true, "", []string{d.home}, at); err != nil {
				return err
			}
		}
		return nil
	})
}

// Each space's digest shows visitor days hosted against its members' days
// at other spaces, this month and this year; the admins' digest the year's
// balance per space.
func TestDigestReciprocity(t *testing.T) {
	f := newFixture(t)
	visaDays(t, f)
	f.sendDue(t, nyDue)
	q := f.outbox(t)
	indy := find(t, q, "m1@indyhall.test")
	for _, want := range []string{
		"Visitor days (visitors from other spaces here: hosted; your members at other spaces: sent):",
		"this month (2026-11): hosted 3, sent 1",
		"this year (2026): hosted 4, sent 1",
		// The chart's weeks end the day before the slot (Monday 30 Nov).
		"Visitor days per week (hosted, sent):\n  week of 5 Oct: 0, 0\n  week of 12 Oct: 1, 0\n  week of 19 Oct: 0, 0\n" +
			"  week of 26 Oct: 0, 0\n  week of 2 Nov: 2, 0\n  week of 9 Nov: 0, 0\n  week of 16 Nov: 0, 0\n  week of 23 Nov: 1, 1\n",
	} {
		if !strings.Contains(indy.text, want) {
			t.Errorf("Indy Hall's digest lacks %q:\n%s", want, indy.text)
		}
	}
	// The HTML chart: bars as wide as their share of the largest week (2).
	if !strings.Contains(indy.html, "this year (2026): hosted 4, sent 1") || !strings.Contains(indy.html, `<td width="100%" style="background:#2e6f9e`) ||
		strings.Count(indy.html, `<td width="50%" style="background:#2e6f9e`) != 2 || strings.Count(indy.html, `<td width="50%" style="background:#b3541e`) != 1 {
		t.Errorf("HTML digest lacks the reciprocity:\n%s", indy.html)
	}
	cantine := find(t, q, "boss@cantine.test")
	if !strings.Contains(cantine.text, "this month (2026-11): hosted 1, sent 3") || !strings.Contains(cantine.text, "this year (2026): hosted 1, sent 4") {
		t.Errorf("La Cantine's digest:\n%s", cantine.text)
	}
	admin := find(t, q, "admin@network.test")
	for _, want := range []string{"Reciprocity in 2026, in visitor days (hosted, sent, balance):",
		"indyhall  4, 1, +3", "cantine  1, 4, -3"} {
		if !strings.Contains(admin.text, want) {
			t.Errorf("the network digest lacks %q:\n%s", want, admin.text)
		}
	}
	if !strings.Contains(admin.html, "Balance in 2026, in visitor days: 4 − 1 = &#43;3") {
		t.Errorf("network HTML digest lacks the balance:\n%s", admin.html)
	}
}

// A roster neither confirmed nor changed for digest.roster_confirm_days is
// reminded of in its digest; past twice that, the digest says hosts are
// told, and the network digest lists the space.
func TestDigestRosterReminders(t *testing.T) {
	f := newFixture(t)
	f.s.set.RosterConfirmDays = config.Default().Digest.RosterConfirmDays
	// The fixture's rosters changed in November. Two more spaces: one
	// untouched for 138 days, one for 324.
	f.update(t, func(tx *storage.Tx) error {
		if err := tx.PutSpace(storage.Space{ID: "quiet", Name: "Quiet Space", TZ: "Europe/Paris", Created: utc("2026-07-15T10:00:00Z")}); err != nil {
			return err
		}
		if err := tx.AddManager(storage.Manager{Email: "q@quiet.test", Space: "quiet"}); err != nil {
			return err
		}
		return tx.PutSpace(storage.Space{ID: "sleepy", Name: "Sleepy", TZ: "Europe/Paris", Created: utc("2026-01-10T10:00:00Z")})
	})
	f.update(t, func(tx *storage.Tx) error {
		return tx.AddManager(storage.Manager{Email: "s@sleepy.test", Space: "sleepy"})
	})
	f.sendDue(t, nyDue)
	q := f.outbox(t)
	quiet := find(t, q, "q@quiet.test")
	if !strings.Contains(quiet.text, "The roster was last confirmed or changed on Wed 15 Jul 2026, more than 90 days ago.") ||
		strings.Contains(quiet.text, "Hosts who verify your members") {
		t.Errorf("a roster 138 days old:\n%s", quiet.text)
	}
	sleepy := find(t, q, "s@sleepy.test")
	if !strings.Contains(sleepy.text, "Hosts who verify your members now read that your roster is not confirmed since Sat 10 Jan 2026.") {
		t.Errorf("a roster 324 days old:\n%s", sleepy.text)
	}
	if !strings.Contains(sleepy.html, "confirm roster") {
		t.Errorf("HTML reminder:\n%s", sleepy.html)
	}
	if indy := find(t, q, "m1@indyhall.test"); strings.Contains(indy.text, "confirm roster") {
		t.Errorf("a fresh roster is reminded:\n%s", indy.text)
	}
	admin := find(t, q, "admin@network.test")
	if !strings.Contains(admin.text, "Rosters not confirmed for more than 180 days:\n  sleepy  Sleepy: since Sat 10 Jan 2026\n") ||
		strings.Contains(admin.text, "quiet  Quiet Space: since") {
		t.Errorf("the network digest's stale rosters:\n%s", admin.text)
	}
}

// A French space's digest has its reciprocity and reminder in French.
func TestDigestVisaInFrench(t *testing.T) {
	f := newFixture(t)
	f.s.set.RosterConfirmDays = 90
	visaDays(t, f)
	f.update(t, func(tx *storage.Tx) error {
		sp, _, _ := tx.Space("cantine")
		sp.Language = "fr"
		return tx.PutSpace(sp)
	})
	f.update(t, func(tx *storage.Tx) error {
		return tx.PutSpace(storage.Space{ID: "vieux", Name: "Vieux", Language: "fr", Created: utc("2026-01-10T10:00:00Z")})
	})
	f.update(t, func(tx *storage.Tx) error {
		return tx.AddManager(storage.Manager{Email: "v@vieux.test", Space: "vieux"})
	})
	f.sendDue(t, nyDue)
	q := f.outbox(t)
	fr := find(t, q, "boss@cantine.test")
	for _, want := range []string{"ce mois-ci (2026-11) : accueillis 1, envoyés 3", "cette année (2026) : accueillis 1, envoyés 4"} {
		if !strings.Contains(fr.text, want) {
			t.Errorf("French digest lacks %q:\n%s", want, fr.text)
		}
	}
	if v := find(t, q, "v@vieux.test"); !strings.Contains(v.text, "confirm roster") || !strings.Contains(v.text, "le sam. 10 janv. 2026") ||
		strings.Contains(v.text, "The roster was last") {
		t.Errorf("French reminder:\n%s", v.text)
	}
}
