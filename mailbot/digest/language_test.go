package digest

import (
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/storage"
)

// Each space's managers get their digest in the space's language; a space
// that chose none, and the admins, in the network's.
func TestDigestInTheSpaceLanguage(t *testing.T) {
	f := newFixture(t)
	f.s.set.Language = "fr" // the network's (bot.language)
	f.update(t, func(tx *storage.Tx) error {
		sp, _, err := tx.Space("cantine")
		if err != nil {
			return err
		}
		sp.Language = "de"
		return tx.PutSpace(sp)
	})
	f.sendDue(t, nyDue)
	q := f.outbox(t)

	de := find(t, q, "boss@cantine.test")
	if got, want := subject(t, de), "Coworking Visa – Wochenübersicht: La Cantine, Woche vom 30. Nov. 2026"; got != want {
		t.Errorf("German subject = %q, want %q", got, want)
	}
	for _, want := range []string{
		"La Cantine (cantine): Wochenübersicht, Woche vom 30. Nov. 2026",
		"Mitgliederliste am Mo., 30. Nov. 2026: 1 Mitglied, 1 aktiv, 0 inaktiv, 0 enden in den nächsten 30 Tagen.",
		"Änderungen vom Mo., 23. Nov. 2026 08:00 CET bis Mo., 30. Nov. 2026 08:00 CET (Europe/Paris):",
		"Do., 26. Nov. 10:00  durch boss@cantine.test\n    Mitglied eve@x.test hinzugefügt: Eve, aktiv",
		"Eve <eve@x.test>  aktiv",
		"Diese Übersicht geht jede Woche an die Manager von La Cantine.",
	} {
		if !strings.Contains(de.text, want) {
			t.Errorf("German digest lacks %q:\n%s", want, de.text)
		}
	}
	// A German spreadsheet expects semicolons.
	if data := de.attachments["cantine-roster-2026-11-30.csv"]; !strings.HasPrefix(string(data), "\uFEFFemail;name;status;until;updated\n") {
		t.Errorf("German roster file: %q", data)
	}
	if !strings.Contains(de.html, `<html lang="de">`) || !strings.Contains(de.html, ">Änderungen</h2>") {
		t.Errorf("German HTML digest:\n%s", de.html)
	}

	fr := find(t, q, "m1@indyhall.test")
	if got, want := subject(t, fr), "Coworking Visa – récapitulatif hebdomadaire : Indy Hall, semaine du 30 nov. 2026"; got != want {
		t.Errorf("French subject = %q, want %q", got, want)
	}
	for _, want := range []string{
		"Liste des membres au lun. 30 nov. 2026 : 4 membres, 2 actifs, 1 inactif, 1 expiré (date de fin passée), 1 se termine dans les 30 prochains jours.",
		"membre cat@x.test mis à jour : nom Cat → Cat, the second ; statut actif → inactif",
		"dan@x.test  expiré  jusqu'au 2026-11-01",
		"Eve <eve@x.test>, membre de l'espace La Cantine : 1 visite, dernière le jeu. 26 nov. 13:00",
	} {
		if !strings.Contains(fr.text, want) {
			t.Errorf("French digest lacks %q:\n%s", want, fr.text)
		}
	}

	network := find(t, q, "admin@network.test")
	if got := subject(t, network); got != "Coworking Visa – récapitulatif hebdomadaire : le réseau, semaine du 30 nov. 2026" {
		t.Errorf("network subject = %q", got)
	}
	if !strings.Contains(network.text, "2 espaces, 5 membres (3 actifs).") {
		t.Errorf("French network digest:\n%s", network.text)
	}
}

func subject(t *testing.T, p parsed) string {
	t.Helper()
	s, err := p.header.Subject()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
