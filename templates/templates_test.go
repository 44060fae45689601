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
	if err != nil || !strings.Contains(help, "mail to visa@x.test") {
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
