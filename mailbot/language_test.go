package mailbot

import (
	"context"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
)

// An admin sets a space's language by mail; its manager is then answered
// in it, the admin (who manages no space) in the network's language.
func TestRepliesInTheSpaceLanguage(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	ctx := context.Background()
	handle := func(raw []byte) {
		t.Helper()
		if d := b.Handle(ctx, raw); d.Action != inbox.Handled {
			t.Fatalf("Handle = %+v", d)
		}
	}
	handle(mail("admin@visa.test", "a1@visa.test", "language", "update space indyhall language=fr\nupdate space indyhall language=it"))
	handle(mail("alex@indyhall.test", "m1@indyhall.test", "roster",
		"Bonjour,\nadd member ann@example.org name=\"Ann\"\nverify nobody@example.org\nadd member bad\nlist spaces"))
	handle(mail("alex@indyhall.test", "m2@indyhall.test", "aide", "Bonjour, que savez-vous faire ?"))
	b.set.Language = "de" // the network's language, for a sender who manages no space
	handle(mail("admin@visa.test", "a2@visa.test", "language", "update space indyhall city=Philadelphia"))

	replies := queued(t, db)
	if len(replies) != 4 {
		t.Fatalf("%d replies, want 4", len(replies))
	}
	admin, manager, help, admin2 := replyText(t, replies[0]), replyText(t, replies[1]), replyText(t, replies[2]), replyText(t, replies[3])
	for _, want := range []string{
		"OK: updated space indyhall: Indy Hall.",
		`ERROR: the bot does not speak "it": write language= with one of de, en, es, fr.`,
		"2 commands: 1 OK, 1 ERROR.",
	} {
		if !strings.Contains(admin, want) {
			t.Errorf("the admin's reply lacks %q:\n%s", want, admin)
		}
	}
	for _, want := range []string{
		"OK: membre ajouté à indyhall : Ann <ann@example.org> (actif).",
		"NOT VERIFIED: nobody@example.org n'est pas membre actif d'un espace participant.",
		`ERROR: "bad" n'est pas une adresse e-mail valide : il faut exactement un @.`,
		"DENIED: list spaces est réservé aux administrateurs du réseau ; pour le faire faire, adressez-vous aux administrateurs du réseau (admin@visa.test).",
		"Lignes qui ne sont pas des commandes (ignorées) :\n  Bonjour,",
		"4 commandes : 1 OK, 1 NOT VERIFIED, 1 ERROR, 1 DENIED ; 1 ligne ignorée.",
	} {
		if !strings.Contains(manager, want) {
			t.Errorf("the French manager's reply lacks %q:\n%s", want, manager)
		}
	}
	for _, english := range []string{"added", "is not", "Not commands", "commands:"} {
		if strings.Contains(manager, english) {
			t.Errorf("the French reply holds English %q:\n%s", english, manager)
		}
	}
	if !strings.Contains(help, "Mode d'emploi du robot Coworking Visa") || !strings.Contains(help, "verify EMAIL") {
		t.Errorf("the French help:\n%s", help)
	}
	if !strings.Contains(admin2, "OK: Space indyhall aktualisiert: Indy Hall (Philadelphia).") {
		t.Errorf("the admin's reply in the network's language:\n%s", admin2)
	}
}
