package mailbot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/storage"
)

// newGroupBot is newTestBot with the default hourly limit per sender
// (newTestBot lowers it to 3 for the tests of that limit; these send up
// to 40 messages from one manager).
func newGroupBot(t *testing.T) (*Bot, *storage.DB, *int) {
	b, db, wakes := newTestBot(t, fixedClock())
	b.set.Limits = SettingsFrom(testConfig()).Limits
	b.limiter = NewLimiter(b.set.Limits)
	return b, db, wakes
}

// generation is the store's count of committed transactions.
func generation(t *testing.T, db *storage.DB) uint64 {
	t.Helper()
	var g uint64
	db.View(func(tx *storage.Tx) error { g = tx.Generation(); return nil })
	return g
}

// rosterOf lists the members of indyhall.
func rosterOf(t *testing.T, db *storage.DB) []string {
	t.Helper()
	var out []string
	db.View(func(tx *storage.Tx) error {
		ms, err := tx.Members("indyhall")
		for _, m := range ms {
			out = append(out, m.Email)
		}
		return err
	})
	return out
}

// batch is n messages from alex, message i adding m<i>@indyhall.test.
func batch(n int, extra map[int]string) [][]byte {
	var raws [][]byte
	for i := 1; i <= n; i++ {
		raws = append(raws, mail("alex@indyhall.test", fmt.Sprintf("g%d@indyhall.test", i), "roster",
			fmt.Sprintf("add member m%d@indyhall.test\n%s", i, extra[i])))
	}
	return raws
}

// A batch commits in one transaction, each message answered once.
func TestHandleBatchCommitsOnce(t *testing.T) {
	b, db, wakes := newGroupBot(t)
	raws := batch(5, nil)
	before := generation(t, db)
	for i, d := range b.HandleBatch(context.Background(), raws) {
		if d.Action != inbox.Handled {
			t.Errorf("message %d: %+v, want handled", i+1, d)
		}
	}
	if got := generation(t, db) - before; got != 1 {
		t.Errorf("the batch took %d transactions, want 1", got)
	}
	if got := len(queued(t, db)); got != 5 || *wakes != 1 {
		t.Errorf("%d replies queued and %d kicks, want 5 and 1", got, *wakes)
	}
	if got := rosterOf(t, db); len(got) != 5 {
		t.Errorf("members %v, want 5", got)
	}
}

// TestGroupCommitFailureInTheMiddle: the third message of a batch fails
// inside the transaction (its reply cannot be rendered). The others are
// still committed, each once, with one reply each; the failing one
// changes nothing, is tried again at each delivery, and goes to
// quarantine on its third failure. Delivered again, the others are
// recognised and answered no second time.
func TestGroupCommitFailureInTheMiddle(t *testing.T) {
	b, db, _ := newGroupBot(t)
	// A reply template that fails for the third message only.
	tmpl := `{{range .Entries}}{{if eq .Command "verify boom@indyhall.test"}}{{template "no-such-template"}}{{end}}> {{.Command}}
{{.Status}}: {{.Text}}
{{end}}`
	withReplyTemplate(t, b, tmpl)
	raws := batch(5, map[int]string{3: "verify boom@indyhall.test"})
	want := []inbox.Action{inbox.Handled, inbox.Handled, inbox.Leave, inbox.Handled, inbox.Handled}
	for round, failing := range []inbox.Action{inbox.Leave, inbox.Leave, inbox.Quarantine} {
		want[2] = failing
		ds := b.HandleBatch(context.Background(), raws)
		for i, d := range ds {
			if d.Action != want[i] {
				t.Errorf("delivery %d, message %d: %+v, want %v", round+1, i+1, d, want[i])
			}
		}
	}
	got := rosterOf(t, db)
	if strings.Join(got, ",") != "m1@indyhall.test,m2@indyhall.test,m4@indyhall.test,m5@indyhall.test" {
		t.Errorf("members %v, want m1, m2, m4 and m5, each once", got)
	}
	replies, notices := 0, 0
	for _, r := range queued(t, db) {
		switch {
		case strings.Contains(r, "To: <admin@visa.test>"):
			notices++
		case strings.Contains(r, "In-Reply-To: <g3@"):
			t.Errorf("the failing message got a reply")
		default:
			replies++
		}
	}
	if replies != 4 || notices != 1 {
		t.Errorf("%d replies and %d notices, want 4 (one per message that worked) and 1 (the quarantine)", replies, notices)
	}
	// The failed group left no trace of the others but their own
	// transactions: each of them was handled once.
	// (Records name the sender by the store's pseudonym.)
	alex := db.Pseudonym("alex@indyhall.test")
	db.View(func(tx *storage.Tx) error {
		for _, i := range []int{1, 2, 4, 5} {
			if _, ok, _ := tx.Handled(fmt.Sprintf("%s <g%d@indyhall.test>", alex, i)); !ok {
				if _, ok, _ := tx.Handled(fmt.Sprintf("%s g%d@indyhall.test", alex, i)); !ok {
					t.Errorf("message g%d has no handled record", i)
				}
			}
		}
		return nil
	})
}

// The same message twice in one batch (delivered twice) is taken once.
func TestHandleBatchTakesADuplicateOnce(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	raws := batch(2, nil)
	raws = append(raws, raws[0])
	for i, d := range b.HandleBatch(context.Background(), raws) {
		if d.Action != inbox.Handled {
			t.Errorf("message %d: %+v", i+1, d)
		}
	}
	if got := len(queued(t, db)); got != 2 {
		t.Errorf("%d replies, want 2", got)
	}
}

// Deliveries from many goroutines at once are each handled once, and
// share transactions.
func TestGrouperSharesCommits(t *testing.T) {
	b, db, _ := newGroupBot(t)
	g := b.Grouper()
	raws := batch(40, nil)
	before := generation(t, db)
	var wg sync.WaitGroup
	for _, raw := range raws {
		wg.Go(func() {
			if d := g.Handle(context.Background(), raw); d.Action != inbox.Handled {
				t.Errorf("%+v", d)
			}
		})
	}
	wg.Wait()
	if got := len(queued(t, db)); got != 40 {
		t.Errorf("%d replies, want 40", got)
	}
	if got := len(rosterOf(t, db)); got != 40 {
		t.Errorf("%d members, want 40", got)
	}
	t.Logf("40 concurrent deliveries took %d transactions", generation(t, db)-before)
}
