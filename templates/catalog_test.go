package templates

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePO(t *testing.T) {
	entries, err := parsePO("x.po", []byte("\uFEFF# comment\n"+
		"msgid \"added %s to %s.\"\n"+
		"msgstr \"%s ajouté \"\n"+
		"  \"à %s.\"\n"+
		"\n"+
		"msgid \"%d members\"\n"+
		"msgstr[one] \"%d membre\"\n"+
		"msgstr[other] \"%d \"\n"+
		"\"membres\"\n"+
		"msgid \"say \\\"hi\\\"\\n\"\n"+
		"msgstr \"dis \\\"salut\\\"\\n\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{id: "added %s to %s.", str: "%s ajouté à %s.", line: 2},
		{id: "%d members", plural: map[string]string{"one": "%d membre", "other": "%d membres"}, line: 6},
		{id: "say \"hi\"\n", str: "dis \"salut\"\n", line: 10},
	}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("entries = %#v\nwant %#v", entries, want)
	}
	for _, bad := range []struct{ po, why string }{
		{"msgid \"a\"\n", "no msgstr"},
		{"msgid \"a\"\nmsgstr \"\"\n", "no msgstr"},
		{"msgid \"a\"\nmsgstr \"b\"\nmsgid \"a\"\nmsgstr \"c\"\n", "already on line 1"},
		{"msgid \"%d a\"\nmsgstr[one] \"b\"\n", "no msgstr[other]"},
		{"msgid \"%d a\"\nmsgstr[several] \"b\"\n", "unknown plural form"},
		{"msgstr \"b\"\n", "before msgid"},
		{"\"b\"\n", "continues nothing"},
		{"msgid a\nmsgstr \"b\"\n", "not a quoted"},
		{"msgid \"a\"\nmsgctxt \"a\"\n", "unknown keyword"},
	} {
		if _, err := parsePO("x.po", []byte(bad.po)); err == nil || !strings.Contains(err.Error(), bad.why) {
			t.Errorf("parsePO(%q) = %v, want …%s…", bad.po, err, bad.why)
		}
	}
}

func TestVerbs(t *testing.T) {
	for _, c := range []struct {
		format string
		want   []verb
	}{
		{"no verbs, 100%% sure", nil},
		{"%s and %d", []verb{{1, 's'}, {2, 'd'}}},
		{"%[2]s before %[1]s", []verb{{2, 's'}, {1, 's'}}},
		{"%-10s|%5.2f|%q|%U", []verb{{1, 's'}, {2, 'f'}, {3, 'q'}, {4, 'U'}}},
		{"%[3]d then %s", []verb{{3, 'd'}, {4, 's'}}},
	} {
		if got := verbs(c.format); !reflect.DeepEqual(got, c.want) {
			t.Errorf("verbs(%q) = %v, want %v", c.format, got, c.want)
		}
	}
	if n := countArg("removed space %s and its %d managers."); n != 2 {
		t.Errorf("countArg = %d, want 2", n)
	}
}

// writeCatalog writes an operator's catalog into dir/i18n.
func writeCatalog(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "i18n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "i18n", name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPluralsInEveryLanguage(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lang string
		n    int
		want string
	}{
		{"en", 1, "1 member"}, {"en", 2, "2 members"}, {"en", 0, "0 members"},
		{"fr", 1, "1 membre"}, {"fr", 2, "2 membres"}, {"fr", 0, "0 membre"},
		{"de", 1, "1 Mitglied"}, {"de", 2, "2 Mitglieder"},
		{"es", 1, "1 miembro"}, {"es", 2, "2 miembros"},
	} {
		if got := s.In(c.lang).Sprintf("%d members", c.n); got != c.want {
			t.Errorf("%s %d: %q, want %q", c.lang, c.n, got, c.want)
		}
	}
}

func TestLanguagesAndMatching(t *testing.T) {
	dir := t.TempDir()
	writeCatalog(t, dir, "it.po", "msgid \"%d members\"\nmsgstr[one] \"%d membro\"\nmsgstr[other] \"%d membri\"\n")
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Languages(); !reflect.DeepEqual(got, []string{"de", "en", "es", "fr", "it"}) {
		t.Errorf("Languages = %v", got)
	}
	for code, want := range map[string]string{
		"fr": "fr", "fr-CA": "fr", "de-AT": "de", "it": "it", "": "en", "xx": "en", "ja": "en", "not a tag!": "en",
	} {
		if got := s.In(code).Code(); got != want {
			t.Errorf("In(%q) = %s, want %s", code, got, want)
		}
	}
	if got := s.In("it").Sprintf("%d members", 3); got != "3 membri" {
		t.Errorf("an added language: %q", got)
	}
	if !s.Supports("it") || s.Supports("fr-CA") {
		t.Error("Supports names exact codes")
	}
}

// A message id missing from a language reads in English, plural forms
// included; one missing everywhere reads as itself, never as a key.
func TestFallbackToEnglish(t *testing.T) {
	dir := t.TempDir()
	writeCatalog(t, dir, "en.po", "msgid \"%d members\"\nmsgstr[one] \"%d member\"\nmsgstr[other] \"%d members\"\n\n"+
		"msgid \"hello %s\"\nmsgstr \"hello %s\"\n")
	writeCatalog(t, dir, "de.po", "msgid \"hello %s\"\nmsgstr \"Hallo %s\"\n")
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	de := s.In("de")
	if got := de.Sprintf("hello %s", "Welt"); got != "Hallo Welt" {
		t.Errorf("translated: %q", got)
	}
	if got := de.Sprintf("%d members", 1); got != "1 member" {
		t.Errorf("missing in de: %q, want the English plural", got)
	}
	if got := de.Sprintf("nowhere %s", "x"); got != "nowhere x" {
		t.Errorf("missing everywhere: %q", got)
	}
}

func TestBadCatalogs(t *testing.T) {
	for name, body := range map[string]string{
		"fr.po":  "msgid \"a\"\n",
		"xx!.po": "msgid \"a\"\nmsgstr \"b\"\n",
		"de.po":  "msgid \"no count\"\nmsgstr[one] \"a\"\nmsgstr[other] \"b\"\n",
		"es.po":  "garbage\n",
	} {
		dir := t.TempDir()
		writeCatalog(t, dir, name, body)
		if _, err := New(dir); err == nil {
			t.Errorf("%s %q was accepted", name, body)
		}
	}
}

func TestMessage(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	inner := Errorf("%d members", 2)
	m := Msg("the roster: %s (%s)", inner, errors.New("plain"))
	if got := m.Error(); got != "the roster: 2 members (plain)" {
		t.Errorf("Error = %q", got)
	}
	if got := m.In(s.In("fr").Printer()); got != "the roster: 2 membres (plain)" {
		t.Errorf("In(fr) = %q", got)
	}
	if !errors.Is(Errorf("reading: %s", io.ErrUnexpectedEOF), io.ErrUnexpectedEOF) {
		t.Error("a Message does not unwrap to its error argument")
	}
	if got := Localize(s.In("de").Printer(), fmt.Errorf("context: %w", inner)); got != "2 Mitglieder" {
		t.Errorf("Localize of a wrapped Message = %q", got)
	}
	if got := Localize(s.In("de").Printer(), inner); got != "2 Mitglieder" {
		t.Errorf("Localize = %q", got)
	}
	// Years, ports and ids are passed as strings: a %d would group them.
	if got := s.In("fr").Sprintf("%d members", 2026); got == "2026 membres" {
		t.Errorf("French does not group digits: %q", got)
	}
}

func TestFormatTime(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 8, 5, 0, 0, time.UTC)
	if got := s.In("en").FormatTime(at, "Mon 2 Jan 2006 15:04 MST"); got != "Mon 30 Nov 2026 08:05 UTC" {
		t.Errorf("en: %q", got)
	}
}

// Each language renders the same templates with its own printer.
func TestTemplatesPerLanguage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notice.txt"), []byte(`{{t "%d members" 2}}: {{.Text}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "notice.html"), []byte(`<p>{{t "%d members" 1}} &amp; {{.Text}}</p>`), 0o644)
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[string][2]string{
		"en": {"2 members: <x>", "<p>1 member &amp; &lt;x&gt;</p>"},
		"fr": {"2 membres: <x>", "<p>1 membre &amp; &lt;x&gt;</p>"},
		"de": {"2 Mitglieder: <x>", "<p>1 Mitglied &amp; &lt;x&gt;</p>"},
	} {
		text, html, err := s.In(lang).Notice(Notice{Text: "<x>"})
		if err != nil || text != want[0] || html != want[1] {
			t.Errorf("%s: %q %q %v, want %q", lang, text, html, err, want)
		}
	}
	if text, _, _ := s.Notice(Notice{Text: "x"}); text != "2 members: x" {
		t.Errorf("the Set speaks English: %q", text)
	}
}

func TestWrap(t *testing.T) {
	got := wrap(4, 20, "one two three four five six")
	want := "one two three\n    four five six"
	if got != want {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}
