package commands

import (
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// runIn executes the lines as actor with the reader's language lang.
func runIn(t *testing.T, db *storage.DB, actor Actor, lang string, lines ...string) Report {
	t.Helper()
	var rep Report
	env := Env{Now: testNow, MessageID: "m1@test", Printer: templates.Embedded().In(lang).Printer()}
	err := db.Update(func(tx *storage.Tx) error {
		var err error
		rep, err = Execute(tx, actor, env, Parse("", lines, 100))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A manager whose replies are in French reads French sentences after the
// status words, which stay as they are for scripts.
func TestResultsInTheReadersLanguage(t *testing.T) {
	db := network(t)
	rep := runIn(t, db, alex, "fr",
		`add member ann@example.org name="Ann Lee"`,
		"verify jonas@betahaus.test",
		"verify nobody@example.org",
		"remove member nobody@example.org",
		"add member bad",
		"update member ann@example.org status=inactive",
		"list spaces",
		"add member x@example.org colour=blue",
		"list members",
	)
	expect(t, rep,
		"OK: membre ajouté à indyhall : Ann Lee <ann@example.org> (actif).",
		"VERIFIED: jonas@betahaus.test est Jonas Müller, membre de l'espace betahaus (Berlin).",
		"NOT VERIFIED: nobody@example.org n'est pas membre actif d'un espace participant.",
		"ERROR: nobody@example.org n'est pas membre de l'espace indyhall.",
		"ERROR: \"bad\" n'est pas une adresse e-mail valide : il faut exactement un @.",
		"OK: ann@example.org mis à jour (statut) : Ann Lee <ann@example.org> (inactif).",
		"DENIED: list spaces est réservé aux administrateurs du réseau ; pour le faire faire, adressez-vous aux administrateurs du réseau.",
		"ERROR: option colour= inconnue pour add member (connues : name= status= until= space=).",
		"OK: indyhall a 1 membre : 0 actif, 1 inactif ; 0 se termine dans les 30 prochains jours. La liste des membres figure ci-dessous",
	)
	if d := rep.Results[8].Detail; len(d) != 1 || d[0] != "Ann Lee <ann@example.org> (inactif)" {
		t.Errorf("French listing = %q", d)
	}

	de := runIn(t, db, mad, "de", "list members", "history off@betahaus.test", "verify ann@example.org")
	expect(t, de,
		"OK: betahaus hat 3 Mitglieder: 1 aktiv, 1 inaktiv, 1 abgelaufen (Enddatum überschritten); 0 enden in den nächsten 30 Tagen.",
		"ERROR: off@betahaus.test hat keinen Verlauf in betahaus.",
		"NOT VERIFIED: ann@example.org ist kein aktives Mitglied eines teilnehmenden Spaces.",
	)
	es := runIn(t, db, alex, "es", "remove member ann@example.org", "confirm NOPE")
	expect(t, es,
		"OK: miembro ann@example.org eliminado de indyhall.",
		"ERROR: nada espera confirmación con NOPE",
	)
	// No printer: English.
	expect(t, run(t, db, alex, "verify nobody@example.org"),
		"NOT VERIFIED: nobody@example.org is not an active member of a participating space.")
}

// Counts read right in every language: "1 membre", "2 membres".
func TestPluralsInResults(t *testing.T) {
	for lang, want := range map[string][2]string{
		"en": {"OK: 1 change to a@example.org in indyhall.", "OK: 2 changes to a@example.org in indyhall."},
		"fr": {"OK: 1 modification de a@example.org dans indyhall.", "OK: 2 modifications de a@example.org dans indyhall."},
		"de": {"OK: 1 Änderung an a@example.org in indyhall.", "OK: 2 Änderungen an a@example.org in indyhall."},
		"es": {"OK: 1 cambio de a@example.org en indyhall.", "OK: 2 cambios de a@example.org en indyhall."},
	} {
		t.Run(lang, func(t *testing.T) {
			db := network(t)
			runIn(t, db, alex, lang, "add member a@example.org")
			expect(t, runIn(t, db, alex, lang, "history a@example.org"), want[0])
			runIn(t, db, alex, lang, "update member a@example.org name=A")
			expect(t, runIn(t, db, alex, lang, "history a@example.org"), want[1])
		})
	}
}

// A space's language= is one the bot has a catalog for; list spaces shows it.
func TestSpaceLanguage(t *testing.T) {
	db := network(t)
	expect(t, run(t, db, admin,
		`add space cantine name="La Cantine" language=FR`,
		"update space cantine language=it",
		"update space cantine language=de-AT",
		"update space cantine language=!!",
		"update space indyhall language=es",
		"list spaces",
	),
		"OK: added space cantine",
		`ERROR: the bot does not speak "it": write language= with one of de, en, es, fr.`,
		`ERROR: the bot does not speak "de-at": write language= with one of de, en, es, fr.`,
		`ERROR: "!!" is not a language code`,
		"OK: updated space indyhall",
		"OK: 3 participating spaces.",
	)
	rep := run(t, db, admin, "list spaces")
	if d := rep.Results[0].Detail; len(d) != 3 || !strings.Contains(d[1], "cantine: La Cantine, 0 members, language fr") ||
		!strings.Contains(d[2], "indyhall: Indy Hall (Philadelphia, US), 0 members, language es, managers ") {
		t.Errorf("list spaces = %q", d)
	}
	expect(t, run(t, db, admin, "update space cantine language=default"), "OK: updated space cantine")
	db.View(func(tx *storage.Tx) error {
		if sp, _, _ := tx.Space("cantine"); sp.Language != "" {
			t.Errorf("language=default left %q", sp.Language)
		}
		if sp, _, _ := tx.Space("indyhall"); sp.Language != "es" {
			t.Errorf("indyhall's language = %q", sp.Language)
		}
		return nil
	})
	// Only the languages the set has.
	var rep2 Report
	db.Update(func(tx *storage.Tx) error {
		var err error
		rep2, err = Execute(tx, admin, Env{Now: testNow, Languages: []string{"en", "it"}}, Parse("", []string{"update space cantine language=it"}, 10))
		return err
	})
	expect(t, rep2, "OK: updated space cantine")
}
