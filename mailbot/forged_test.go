package mailbot

import (
	"bytes"
	"context"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/message"
	"github.com/coworkingvisa/mailbot/storage"
)

// TestForgedCorpus runs every message of testdata/forged through the
// pipeline. Each claims to come from a manager, mgr@indyhall.test, and
// tries to add mallory@evil.test; none may change anything. Each states in
// an X-Corpus-Expect header what else must happen: without one, the mail
// is forged and gets no reply; "answered, nothing changed" is a genuine
// manager's mail that carries the command where the bot must not read it
// (forwarded, hidden in HTML), so it gets a reply that carries nothing out.
func TestForgedCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "forged", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("the forged corpus has %d messages, want at least 10", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b, db, _ := newTestBot(t, fixedClock())
			db.Update(func(tx *storage.Tx) error {
				return tx.AddManager(storage.Manager{Email: "mgr@indyhall.test", Space: "indyhall"})
			})
			out := b.Handle(context.Background(), raw)
			switch expect := corpusExpectation(t, raw); expect {
			case "":
				if out.Action != inbox.SetAside || out.Mailbox != "Rejected" {
					t.Errorf("Handle = %+v, want set aside in Rejected", out)
				}
				if r := queued(t, db); len(r) != 0 {
					t.Errorf("forged mail got %d replies:\n%s", len(r), r[0])
				}
			case "answered, nothing changed":
				if out.Action != inbox.Handled {
					t.Errorf("Handle = %+v, want done", out)
				}
				r := queued(t, db)
				if len(r) != 1 {
					t.Fatalf("got %d replies, want 1", len(r))
				}
				text := replyText(t, r[0])
				if strings.Contains(text, "(the whole message)") {
					t.Errorf("the message was refused as a whole, so the corpus file proves nothing:\n%s", text)
				}
				for _, l := range strings.Split(text, "\n") {
					if strings.HasPrefix(l, "OK:") || strings.Contains(l, "mallory") {
						t.Errorf("the reply read the command: %q", l)
					}
				}
			default:
				t.Fatalf("X-Corpus-Expect: %q is not an expectation this test knows", expect)
			}
			db.View(func(tx *storage.Tx) error {
				if of, _ := tx.MembershipsOf("mallory@evil.test"); len(of) != 0 {
					t.Errorf("forged mail changed the roster: %+v", of)
				}
				return tx.Changes(0, func(c storage.Change) bool {
					t.Errorf("forged mail left an audit record: %+v", c)
					return true
				})
			})
		})
	}
	// The corpus is not vacuous: the same pipeline acts on a genuine message.
	b, db, _ := newTestBot(t, fixedClock())
	b.Handle(context.Background(), mail("alex@indyhall.test", "real@indyhall.test", "roster", "add member real@indyhall.test"))
	if len(queued(t, db)) != 1 {
		t.Error("a genuine message got no reply")
	}
}

// corpusExpectation is the X-Corpus-Expect header of a corpus message.
func corpusExpectation(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("reading the corpus message: %v", err)
	}
	return strings.ToLower(strings.TrimSpace(m.Header.Get("X-Corpus-Expect")))
}

// replyText is the plain text of a reply the bot queued.
func replyText(t *testing.T, raw string) string {
	t.Helper()
	m, err := message.Parse([]byte(raw), message.Limits{})
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return m.Text
}
