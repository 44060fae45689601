package templates

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplyTextAndHTML(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	text, html, err := s.Reply(Reply{
		BotName: "Visa", BotAddress: "visa@x.test",
		Entries: []Entry{
			{Command: `add member a@x.test name="<script>alert(1)</script>"`, Status: "OK", Text: "added <script>alert(1)</script> <a@x.test>."},
			{Command: "list members", Status: "OK", Text: "2 members.", Detail: []string{"a@x.test", "b@x.test"}},
		},
		Ignored: []string{"Hi bot,"},
		Summary: "2 commands: 2 OK; 1 lines ignored.",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"> add member a@x.test", "OK: added <script>", "    a@x.test", "Not commands (ignored):\n  Hi bot,", "2 commands: 2 OK"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.HasPrefix(text, "\n") {
		t.Error("text starts with a blank line")
	}
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("HTML does not escape what senders wrote:\n%s", html)
	}
	if strings.Contains(text, "How to use") {
		t.Error("help text without Help")
	}
}

func TestHelpInReplyAndAlone(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	text, html, err := s.Reply(Reply{BotAddress: "visa@x.test", Help: true, Summary: "0 commands."})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "How to use the Coworking Visa bot") || !strings.Contains(html, "How to use the Coworking Visa bot") {
		t.Errorf("help missing:\n%s\n%s", text, html)
	}
	help, err := s.Help("visa@x.test")
	if err != nil || !strings.Contains(help, "per line to visa@x.test") || !strings.Contains(help, "add space ID") {
		t.Errorf("Help = %q, %v", help, err)
	}
}

func TestOverrideDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notice.txt"), []byte("Custom: {{.Text}}"), 0o644)
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := s.Notice(Notice{Text: "hello"})
	if err != nil || text != "Custom: hello" {
		t.Errorf("Notice = %q, %v", text, err)
	}
	os.WriteFile(filepath.Join(dir, "reply.txt"), []byte("{{.Broken"), 0o644)
	if _, err := New(dir); err == nil {
		t.Error("a broken override was accepted")
	}
}

// The HTML help shows each command above what it does, whatever columns
// the text help has: a description going on over lines is one, a syntax
// line adds its own note.
func TestHelpLines(t *testing.T) {
	got := helpLines(`How to use it
Write one command per line.

Admins:
  verify EMAIL                 is this visitor an active
                               member?
  add member Full Name <EMAIL>
  update space ID [name=...]
                [digest_day=...]   the space's own slot
                [free_days=N]
                               its terms for visitors
Every result line starts with OK:.`)
	want := []HelpLine{
		{Kind: "title", Text: "How to use it"},
		{Kind: "text", Text: "Write one command per line."},
		{Kind: "heading", Text: "Admins:"},
		{Kind: "command", Syntax: []string{"verify EMAIL"}, Text: "is this visitor an active member?"},
		{Kind: "command", Syntax: []string{"add member Full Name <EMAIL>"}},
		{Kind: "command", Syntax: []string{"update space ID [name=...]", "[digest_day=...]", "[free_days=N]"},
			Notes: []string{"the space's own slot", "its terms for visitors"}},
		{Kind: "text", Text: "Every result line starts with OK:."},
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("helpLines =\n%q\nwant\n%q", got, want)
	}
}

// The help shows each reader only what they may do, starts with an
// example, and names whom to ask.
func TestHelpForEachReader(t *testing.T) {
	s := Embedded().English()
	const (
		example  = "for example:\n\n"
		member   = "visit SPACE YYYY-MM-DD"
		host     = "verify EMAIL "
		manager  = "add member EMAIL"
		admin    = "add space ID"
		everyone = "forget me"
		stranger = "is on no roster"
	)
	for _, c := range []struct {
		who          string
		as           Audience
		first        string // the example's first line
		show, hidden []string
	}{
		{"a stranger", Audience{}, "my data", []string{stranger, everyone}, []string{member, host, manager, admin, "OK:, VERIFIED:"}},
		{"a member", Audience{Member: true}, "spaces", []string{member, everyone}, []string{stranger, host, manager, admin}},
		{"a manager", Audience{Manager: true}, "verify visitor@example.org", []string{host, manager, "spaces, terms SPACE", everyone},
			[]string{stranger, member, admin}},
		{"an admin", Audience{Admin: true}, "add space indyhall", []string{host, manager, admin, everyone, "admins with space=ID"},
			[]string{stranger, member}},
	} {
		var b strings.Builder
		err := s.text.ExecuteTemplate(&b, "help.txt", Reply{BotAddress: "visa@x.test", For: c.as, Sender: "eve@x.test",
			Contact: "the Visa team, +49 30 1234567", ExampleDate: "2026-12-12"})
		if err != nil {
			t.Fatal(err)
		}
		help := b.String()
		_, after, ok := strings.Cut(help, example)
		if !ok || !strings.HasPrefix(after, "  "+c.first) {
			t.Errorf("the help of %s does not start with its example %q:\n%s", c.who, c.first, help)
		}
		for _, w := range c.show {
			if !strings.Contains(help, w) {
				t.Errorf("the help of %s lacks %q:\n%s", c.who, w, help)
			}
		}
		for _, w := range c.hidden {
			if strings.Contains(help, w) {
				t.Errorf("the help of %s shows %q:\n%s", c.who, w, help)
			}
		}
		if !strings.HasSuffix(help, ".\nQuestions? Ask the Visa team, +49 30 1234567.") &&
			!strings.HasSuffix(help, "this text\n\nQuestions? Ask the Visa team, +49 30 1234567.") {
			t.Errorf("the help of %s does not end with whom to ask:\n%s", c.who, help)
		}
	}
}

// The lead comes first; a message without a command gets the help first
// and its own lines after it, never its greeting on top.
func TestReplyLeadAndFirstContact(t *testing.T) {
	s := Embedded().English()
	text, _, err := s.Reply(Reply{BotName: "Visa", BotAddress: "visa@x.test", Lead: "VERIFIED: jonas@x.test is Jonas.",
		Entries: []Entry{{Command: "verify jonas@x.test", Status: "VERIFIED", Text: "jonas@x.test is Jonas."}},
		Summary: "1 command: 1 VERIFIED."})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "VERIFIED: jonas@x.test is Jonas.\n\n> verify jonas@x.test\n") {
		t.Errorf("the lead is not first:\n%s", text)
	}
	text, _, err = s.Reply(Reply{BotName: "Visa", BotAddress: "visa@x.test", Lead: "No command.", Help: true,
		Ignored: []string{"Hi bot,", "verfy bob@x.test"}, Summary: "0 commands; 2 lines ignored.", For: Audience{Manager: true}})
	if err != nil {
		t.Fatal(err)
	}
	help, ignored := strings.Index(text, "How to use"), strings.Index(text, "Not commands (ignored):\n  Hi bot,\n  verfy bob@x.test")
	if !strings.HasPrefix(text, "No command.\n\nHow to use") || help < 0 || ignored < help {
		t.Errorf("first contact does not open with the help, its lines after it:\n%s", text)
	}
}
