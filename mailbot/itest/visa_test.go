package itest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The visa exchange end to end, through the real Postfix, its milters and
// Dovecot, with the real binary: a member of a French space finds the
// spaces and a host's terms, announces two visits; the host's manager gets
// the notices and declines one, and the member hears of it in French; the
// host's verify counts the day; the French space's manager gets French
// replies and a French digest; the member's data is listed, then erased,
// and once the store is compacted a byte search of its file finds the
// address nowhere.

func init() { worlds = append(worlds, "visa") }

var declineToken = regexp.MustCompile(`decline visit ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2})`)
var confirmToken = regexp.MustCompile(`confirm ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2})`)

// waitSubjectWith waits until user's INBOX holds a message whose Subject
// (decoded) contains each of parts, and returns it.
func waitSubjectWith(t *testing.T, user string, parts ...string) reply {
	t.Helper()
	ctx := ctxT(t)
	for {
		raws, err := stack.WaitForMessages(ctx, user, password, "INBOX", 0)
		if err != nil {
			t.Fatalf("reading %s: %v", user, err)
		}
		for _, raw := range raws {
			r := parseReply(t, raw)
			subject, _ := r.Header.Subject() // decoded: subjects in French
			all := true
			for _, p := range parts {
				all = all && strings.Contains(subject, p)
			}
			if all {
				return r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no message with %q in its subject reached %s", parts, user)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ask sends lines from one of the world's people and returns the bot's
// answer, found by its subject.
func ask(t *testing.T, w world, from, subject, body string) reply {
	t.Helper()
	send(t, from, w.bot, thunderbird(envelope{From: from, To: w.bot, Subject: subject}, body))
	// A single verify's answer follows the subject ("Re: check: NOT
	// VERIFIED …"); the subjects of this test are all different.
	return waitSubjectWith(t, from, "Re: "+subject)
}

func TestVisaEndToEnd(t *testing.T) {
	w := newWorld("visa")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)

	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(newYork)
	day := func(d int) string { return today.AddDate(0, 0, d).Format(time.DateOnly) }
	first, second := day(2), day(4)

	r := ask(t, w, w.admin, "terms",
		"update space indyhall free_days=3 notice_days=1 hours=\"Mon-Fri 9-18\" directions=\"ring the bell on 2nd St\"\n"+
			"update space betahaus language=fr")
	mustContain(t, r, "2 commands: 2 OK.")

	// The French space's manager is answered in French.
	r = ask(t, w, w.mad, "membres", "add member "+w.eve+" name=\"Eve Adams\"")
	mustContain(t, r, "OK: membre ajouté à betahaus : Eve Adams <"+w.eve+"> (actif).", "1 commande : 1 OK.")

	// A member of betahaus, answered in betahaus' language.
	r = ask(t, w, w.eve, "visa", "spaces\nterms indyhall\nvisit indyhall "+first+" note=\"arriving at 10\"")
	mustContain(t, r,
		"OK: 2 espaces participants.",
		"indyhall : Indy Hall (Philadelphia, US) ; 3 jours gratuits par mois ; préavis de 1 jour",
		"OK: les conditions de l'espace Indy Hall (Philadelphia, US) pour les visiteurs :",
		"horaires d'ouverture : Mon-Fri 9-18",
		"comment venir : ring the bell on 2nd St",
		"OK: votre visite à Indy Hall (Philadelphia, US) le "+first+" (1 jour) est annoncée ; ses responsables ont été prévenus.",
		"3 commandes : 3 OK.")
	mustNotContain(t, r, w.alex, w.mad) // the directory names no manager

	// The host's manager gets the visit notice, with the member's
	// verification, the dates, the days used and a token.
	notice := waitSubject(t, w.alex, "[Coworking Visa] Visit announced: "+w.eve+" at indyhall on "+first)
	mustContain(t, notice,
		w.eve+" announces a visit to Indy Hall (Philadelphia, US) on "+first+" (1 day).",
		"VERIFIED: "+w.eve+" is Eve Adams, a member of betahaus (Berlin, DE).",
		"Home space: betahaus.",
		"Their note: arriving at 10",
		"To decline the visit, reply with the line: decline visit ")
	if got := notice.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("notice Auto-Submitted = %q", got)
	}

	// A second visit, which the host declines; the member is told in
	// French.
	r = ask(t, w, w.eve, "encore", "visit indyhall "+second)
	mustContain(t, r, "OK: votre visite à Indy Hall (Philadelphia, US) le "+second+" (1 jour) est annoncée")
	notice2 := waitSubject(t, w.alex, "[Coworking Visa] Visit announced: "+w.eve+" at indyhall on "+second)
	m := declineToken.FindStringSubmatch(notice2.Text)
	if m == nil {
		t.Fatalf("no token in the notice:\n%s", notice2.Text)
	}
	r = ask(t, w, w.alex, "decline", "decline visit "+m[1]+" reason=\"we are closed that day\"\ndecline visit "+m[1]+"\ndecline visit ZZZZ-ZZZZ-ZZ")
	mustContain(t, r,
		"OK: declined the visit of "+w.eve+" to indyhall on "+second+"; they were told.",
		"ERROR: the visit under "+m[1]+" was declined already",
		"ERROR: no visit is waiting for an answer under ZZZZ-ZZZZ-ZZ")
	declined := waitSubjectWith(t, w.eve, "[Coworking Visa] Votre visite à indyhall le "+second+" a été refusée")
	mustContain(t, declined, "Leur motif : we are closed that day", "Ses jours ne sont plus décomptés")
	// A member may not decline, nor use the managers' commands.
	r = ask(t, w, w.eve, "essai", "decline visit "+m[1]+"\nlist members")
	mustContain(t, r, "DENIED: decline visit est réservé aux responsables de l'espace visité.", "DENIED: "+w.eve)

	// The host's verify counts today, once however often it asks; the
	// first visit's day counts if it falls in this month, the declined one
	// no more.
	used := 1
	if first[:7] == today.Format("2006-01") {
		used = 2
	}
	dayWords := "day " + string(rune('0'+used)) + " of 3 free days this month at indyhall."
	r = ask(t, w, w.alex, "front desk", "verify "+w.eve+"\nverify "+w.eve)
	mustContain(t, r, "VERIFIED: "+w.eve+" is Eve Adams, a member of betahaus (Berlin, DE); "+dayWords)
	if strings.Count(r.Text, dayWords) != 2 {
		t.Errorf("two checks the same day counted two days:\n%s", r.Text)
	}

	// The French space's manager gets a French digest, with its members'
	// visits in the reciprocity.
	if out, err := exec.Command(binary, "digest", "--config", b.config, "--now", "--space", "betahaus").CombinedOutput(); err != nil {
		t.Fatalf("mailbot digest --now: %v\n%s", err, out)
	}
	digest := waitSubjectWith(t, w.mad, "récapitulatif", "betahaus")
	mustContain(t, digest,
		"Jours de visite (visiteurs d'autres espaces chez vous : accueillis",
		"ce mois-ci ("+today.Format("2006-01")+") : accueillis 0, envoyés",
		"Eve Adams <"+w.eve+">",
		"Ce récapitulatif est envoyé chaque semaine aux responsables de l'espace betahaus.")

	// my data lists what the test put in.
	r = ask(t, w, w.eve, "mydata", "my data")
	mustContain(t, r,
		"OK: ce que le réseau détient sur "+w.eve+" :",
		"Adhésions :", "betahaus (Berlin, DE) : Eve Adams <"+w.eve+"> (actif), ajouté le",
		"Vérifications vous concernant à l'accueil des espaces :", "contrôlé à indyhall (VERIFIED)",
		"Visites que vous avez annoncées :", "visite à indyhall le "+first+" (1 jour)", "visite à indyhall le "+second+" (1 jour)",
		"refusée le",
		"Jours utilisés dans d'autres espaces :",
		"Modifications de votre fiche (quand, où, quoi, par qui) :", "par "+w.mad)

	// The store holds the address now: the search below can find it.
	data, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(asciiLower(data), []byte(w.eve)) {
		t.Fatal("the store file does not hold the member's address before the erasure: the byte search proves nothing")
	}

	// forget me changes nothing until confirmed.
	r = ask(t, w, w.eve, "oubli", "forget me")
	mustContain(t, r, "OK: rien n'est encore effacé")
	tok := confirmToken.FindStringSubmatch(r.Text)
	if tok == nil {
		t.Fatalf("no token:\n%s", r.Text)
	}
	r = ask(t, w, w.alex, "check", "verify "+w.eve)
	mustContain(t, r, "VERIFIED: "+w.eve)
	r = ask(t, w, w.eve, "confirmation", "confirm "+tok[1])
	mustContain(t, r,
		"OK: tout ce que le réseau détenait sur "+w.eve+" est effacé.",
		"retiré des listes des membres de betahaus",
		"2 visites supprimées.")
	// The space's manager is told, in French.
	told := waitSubjectWith(t, w.mad, w.eve, "effacement")
	mustContain(t, told, w.eve+" a demandé au réseau d'effacer ses données.", "Son adhésion à betahaus (Eve Adams <"+w.eve+"> (actif))")

	// Once the replies and notices of the erasure are sent, the daemon
	// compacts the store: then no byte of the address is in the file,
	// free pages included.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(b.log.String(), "store compacted after an erasure") {
		if time.Now().After(deadline) {
			t.Fatalf("the store was not compacted within a minute of the erasure:\n%s", lastLines(b.log.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, err = os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(asciiLower(data), []byte(w.eve)); i >= 0 {
		t.Errorf("the compacted store still holds %s at offset %d: %q", w.eve, i, data[max(i-64, 0):min(i+64, len(data))])
	}
	// The daemon goes on with the compacted store, and it opens again
	// after a restart (its stamp follows the compaction). (A host's check
	// of the address now is a new record: it comes after the search.)
	r = ask(t, w, w.alex, "after", "verify "+w.eve+"\nlist members")
	mustContain(t, r, "NOT VERIFIED: "+w.eve, "OK: indyhall has 0 members")
	b.stop()
	b = startBot(t, w, store, stack.SMTPAddr)
	r = ask(t, w, w.mad, "apres", "list members")
	mustContain(t, r, "OK: betahaus a 0 membre")
	b.stop()
}

// asciiLower lowercases the ASCII letters of binary data in place of
// bytes.ToLower, which would turn invalid UTF-8 into longer runes and move
// every offset after it.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
