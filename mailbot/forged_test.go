package mailbot

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/storage"
)

// TestForgedCorpus runs every message of testdata/forged through the
// pipeline. Each claims to come from a manager, mgr@indyhall.test, and
// asks to add mallory@evil.test; none may change anything or get a reply.
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
			if out.Action != inbox.SetAside || out.Mailbox != "Rejected" {
				t.Errorf("Handle = %+v, want set aside in Rejected", out)
			}
			if r := queued(t, db); len(r) != 0 {
				t.Errorf("forged mail got %d replies:\n%s", len(r), r[0])
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
