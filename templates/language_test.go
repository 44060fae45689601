package templates

import (
	"strings"
	"testing"
	"time"
)

// An operator's partial de.po replaces the embedded one: its entries read
// in German, every other sentence in English, never as a raw key.
func TestPartialCatalogFallsBackToEnglish(t *testing.T) {
	dir := t.TempDir()
	writeCatalog(t, dir, "de.po", `# only a few sentences
msgid "%s (%s): weekly digest, %s"
msgstr "%s (%s): Wochenübersicht, %s"

msgid "%d members"
msgstr[one] "%d Mitglied"
msgstr[other] "%d Mitglieder"

msgid "Changes from %s to %s (%s):"
msgstr "Änderungen vom %s bis %s (%s):"

msgid "none"
msgstr "keine"
`)
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	text, html, err := s.In("de").Digest(DigestData{SpaceID: "betahaus", SpaceName: "betahaus", Title: "KW 49",
		From: "a", To: "b", TimeZone: "Europe/Berlin", Today: "2026-11-30", EndingDays: 30,
		Counts: DigestCounts{Total: 1, Active: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"betahaus (betahaus): Wochenübersicht, KW 49", // German
		"Roster on 2026-11-30: 1 Mitglied, 1 active",  // German plural, English around it
		"Änderungen vom a bis b (Europe/Berlin):\n  keine",
		"Visitors you hosted (0 verified, 0 not):", // English: not in the partial de.po
		"Roster (1 member; also attached as ):",    // an English plural form
	} {
		if !strings.Contains(text, want) {
			t.Errorf("German digest lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(html, "Wochenübersicht") || !strings.Contains(html, ">Visits</h2>") {
		t.Errorf("German HTML digest:\n%s", html)
	}
	// The embedded German catalog is untouched by another set's override.
	if got := Embedded().In("de").Sprintf("Visits"); got != "Besuche" {
		t.Errorf("embedded German = %q", got)
	}
}

// The status words and the summary's counts stay English in every
// language; the sentences around them are translated.
func TestStatusWordsStay(t *testing.T) {
	s := Embedded()
	for lang, ignored := range map[string]string{
		"en": "Not commands (ignored):", "fr": "Lignes qui ne sont pas des commandes (ignorées) :",
		"de": "Keine Befehle (ignoriert):", "es": "Líneas que no son comandos (ignoradas):",
	} {
		l := s.In(lang)
		sum, err := l.Phrase("summary", Summary{Total: 3, Counts: []Count{{1, "OK"}, {1, "NOT VERIFIED"}, {1, "DENIED"}}})
		if err != nil {
			t.Fatal(err)
		}
		text, html, err := l.Reply(Reply{Entries: []Entry{
			{Command: "verify a@x.test", Status: "VERIFIED", Text: "…"}, {Command: "add space x", Status: "DENIED", Text: "…"},
		}, Ignored: []string{"Hi"}, Cut: true, MaxCmds: 2, Summary: sum})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nVERIFIED: …", "\nDENIED: …", "\nERROR: ", ignored, "1 OK, 1 NOT VERIFIED, 1 DENIED"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s reply lacks %q:\n%s", lang, want, text)
			}
		}
		if !strings.Contains(html, "✓ VERIFIED:</span>") || !strings.Contains(html, "! ERROR:</span>") {
			t.Errorf("%s HTML reply:\n%s", lang, html)
		}
		help, err := l.Help("visa@x.test")
		if err != nil || !strings.Contains(help, "OK:, VERIFIED:, NOT VERIFIED:, ERROR:") || !strings.Contains(help, "  verify EMAIL ") {
			t.Errorf("%s help keeps the status and command words: %q %v", lang, help, err)
		}
	}
}

func TestDatesInEveryLanguage(t *testing.T) {
	at := time.Date(2026, 3, 2, 8, 5, 0, 0, time.UTC)
	for lang, want := range map[string]string{
		"en": "Mon 2 Mar 2026 08:05 UTC",
		"fr": "lun. 2 mars 2026 08:05 UTC",
		"de": "Mo., 2. März 2026 08:05 UTC",
		"es": "lun. 2 mar. 2026 08:05 UTC",
	} {
		if got := Embedded().In(lang).FormatTime(at, "Mon 2 Jan 2006 15:04 MST"); got != want {
			t.Errorf("%s: %q, want %q", lang, got, want)
		}
	}
}

// Every line of the help text fits its columns in every language.
func TestHelpKeepsItsLayout(t *testing.T) {
	for _, lang := range Embedded().Languages() {
		help, err := Embedded().In(lang).Help("visa@coworkingvisa.example")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(help, "\n") {
			if n := len([]rune(line)); n > 110 && strings.HasPrefix(line, "  ") {
				t.Errorf("%s: a help line of %d columns: %q", lang, n, line)
			}
		}
	}
}

// A Set is shared by the pipeline's and the digests' goroutines.
func TestConcurrentRendering(t *testing.T) {
	s := Embedded()
	done := make(chan string)
	for i := 0; i < 8; i++ {
		lang := s.Languages()[i%len(s.Languages())]
		go func() {
			l := s.In(lang)
			out := ""
			for j := 0; j < 50; j++ {
				text, _, err := l.Digest(DigestData{SpaceName: "S", Counts: DigestCounts{Total: j}})
				if err != nil {
					out = err.Error()
					break
				}
				out = text + l.Sprintf("%d members", j)
			}
			done <- out
		}()
	}
	for i := 0; i < 8; i++ {
		if out := <-done; !strings.Contains(out, "49") {
			t.Errorf("a concurrent render: %q", out)
		}
	}
}
