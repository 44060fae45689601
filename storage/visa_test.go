package storage

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Days count once however they were used (a verification, one or more
// visits), per host, visitor and calendar month; a declined visit takes
// back the days it alone used.
func TestVisaDays(t *testing.T) {
	db, _ := openTemp(t)
	now := time.Date(2026, 3, 30, 10, 0, 0, 0, time.UTC)
	v := Visit{Token: "T1", Space: "indyhall", Member: "a@x.test", From: "2026-03-31", Days: 2, At: now}
	err := db.Update(func(tx *Tx) error {
		if got := v.Dates(); strings.Join(got, ",") != "2026-03-31,2026-04-01" {
			t.Errorf("Dates = %q", got)
		}
		for _, d := range v.Dates() {
			if _, err := tx.UseDay("indyhall", "a@x.test", d, false, v.Token, []string{"betahaus"}, now); err != nil {
				return err
			}
		}
		// A verification on a visit's day uses no new day.
		if isNew, err := tx.UseDay("indyhall", "a@x.test", "2026-03-31", true, "", nil, now); err != nil || isNew {
			t.Errorf("verify on a visit's day: new=%v err=%v", isNew, err)
		}
		if isNew, err := tx.UseDay("indyhall", "a@x.test", "2026-03-30", true, "", nil, now); err != nil || !isNew {
			t.Errorf("verify on a new day: new=%v err=%v", isNew, err)
		}
		// The same verification again the same day: still one day.
		if isNew, _ := tx.UseDay("indyhall", "a@x.test", "2026-03-30", true, "", nil, now); isNew {
			t.Error("a second verification the same day counted again")
		}
		// Another visitor, and another host (a prefix of this one's id).
		tx.UseDay("indy", "a@x.test", "2026-03-29", true, "", nil, now)
		tx.UseDay("indyhall", "b@x.test", "2026-03-29", true, "", nil, now)
		return tx.PutVisit(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := func(when string) (int, int) {
		var march, april int
		db.View(func(tx *Tx) error {
			march, april = tx.DaysUsed("indyhall", "a@x.test", "2026-03"), tx.DaysUsed("indyhall", "a@x.test", "2026-04")
			return nil
		})
		return march, april
	}
	if m, a := counts("before"); m != 2 || a != 1 {
		t.Errorf("days used = %d in March, %d in April; want 2, 1", m, a)
	}
	err = db.Update(func(tx *Tx) error { return tx.ReleaseVisitDays(v) })
	if err != nil {
		t.Fatal(err)
	}
	// 03-31 stays (it was also verified), 04-01 goes.
	if m, a := counts("after"); m != 2 || a != 0 {
		t.Errorf("after the decline: %d in March, %d in April; want 2, 0", m, a)
	}
	var all []string
	db.View(func(tx *Tx) error {
		return tx.VisaDays(func(d Day) bool {
			all = append(all, d.Host+"/"+d.Visitor+"/"+d.Date)
			return true
		})
	})
	if got := strings.Join(all, " "); got != "indy/a@x.test/2026-03-29 indyhall/a@x.test/2026-03-30 indyhall/a@x.test/2026-03-31 indyhall/b@x.test/2026-03-29" {
		t.Errorf("VisaDays = %s", got)
	}
}

// A change to a member is a change to the roster; a confirmation is
// recorded apart; the freshest of both (or the creation) counts.
func TestRosterState(t *testing.T) {
	db, _ := openTemp(t)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	changed := created.AddDate(0, 1, 0)
	confirmed := created.AddDate(0, 2, 0)
	err := db.Update(func(tx *Tx) error {
		if _, err := tx.Record(memberChange("indyhall", "a@x.test", "add", &Member{Email: "a@x.test"})); err != nil {
			return err
		}
		r, _ := tx.RosterState("indyhall")
		if got := r.Fresh(created); !got.After(created) {
			t.Errorf("after a member change, fresh = %v", got)
		}
		if _, err := tx.Record(Change{At: changed, Space: "indyhall", Kind: "space", Key: "indyhall", Action: "update"}); err != nil {
			return err
		}
		return tx.ConfirmRoster("betahaus", "m@x.test", confirmed)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		r, _ := tx.RosterState("betahaus")
		if !r.Fresh(created).Equal(confirmed) || r.ConfirmedBy != "m@x.test" {
			t.Errorf("betahaus = %+v", r)
		}
		r, _ = tx.RosterState("cantine")
		if !r.Fresh(created).Equal(created) {
			t.Errorf("a space never confirmed nor changed is fresh as of its creation, got %v", r.Fresh(created))
		}
		return nil
	})
}

// A store written before roster states existed gets each space's last
// member change from its audit trail when opened.
func TestRosterStateBackfill(t *testing.T) {
	db, path := openTemp(t)
	at := time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC)
	c := memberChange("indyhall", "a@x.test", "add", &Member{Email: "a@x.test"})
	c.At = at
	db.Update(func(tx *Tx) error { _, err := tx.Record(c); return err })
	db.bolt.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketRosterState) })
	db.Close()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *Tx) error {
		r, _ := tx.RosterState("indyhall")
		if !r.Changed.Equal(at) {
			t.Errorf("backfilled change = %v, want %v", r.Changed, at)
		}
		return nil
	})
}

const forgotten = "alice@x.test"

// forgetStore holds forgotten in every record that can name an address.
func forgetStore(t *testing.T) (*DB, string) {
	t.Helper()
	db, path := openTemp(t)
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	err := db.Update(func(tx *Tx) error {
		for _, m := range []Member{
			{Space: "indyhall", Email: forgotten, Name: "Alice", Status: StatusActive, Added: now},
			{Space: "betahaus", Email: forgotten, Name: "Alice", Status: StatusInactive, Added: now},
			{Space: "indyhall", Email: "bob@x.test", Name: "Bob", Status: StatusActive, Added: now},
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		tx.AddManager(Manager{Email: forgotten, Space: "cantine", Added: now})
		tx.AddManager(Manager{Email: "m@x.test", Space: "indyhall", Added: now})
		a, _ := json.Marshal(Member{Space: "indyhall", Email: forgotten, Name: "Alice", Status: StatusActive})
		tx.Record(Change{At: now, Actor: "m@x.test", Space: "indyhall", Kind: "member", Key: forgotten, Action: "add", After: a})
		// A rename onto the address: indexed under both addresses.
		b, _ := json.Marshal(Member{Space: "betahaus", Email: "old@x.test"})
		b2, _ := json.Marshal(Member{Space: "betahaus", Email: forgotten})
		tx.Record(Change{At: now, Actor: "m@x.test", Space: "betahaus", Kind: "member", Key: "old@x.test", Action: "update", Before: b, After: b2})
		// Changes the address made as a manager.
		bob, _ := json.Marshal(Member{Space: "indyhall", Email: "bob@x.test"})
		tx.Record(Change{At: now, Actor: forgotten, Space: "indyhall", Kind: "member", Key: "bob@x.test", Action: "add", After: bob})
		mg, _ := json.Marshal(Manager{Email: forgotten, Space: "cantine"})
		tx.Record(Change{At: now, Actor: "admin@x.test", Space: "cantine", Kind: "manager", Key: forgotten, Action: "add", After: mg})
		tx.RecordVerification(Verification{At: now, Host: "m@x.test", HostSpace: "indyhall", Visitor: forgotten, Verified: true})
		tx.RecordVerification(Verification{At: now, Host: forgotten, HostSpace: "cantine", Visitor: "bob@x.test", Verified: true, HomeSpaces: []string{"indyhall"}})
		tx.PutVisit(Visit{Token: "V1", Space: "cantine", Member: forgotten, From: "2026-06-10", Days: 1, Note: "hello", At: now})
		tx.PutVisit(Visit{Token: "V2", Space: "cantine", Member: "bob@x.test", From: "2026-06-10", Days: 1, At: now, DeclinedBy: forgotten, Declined: now})
		tx.UseDay("cantine", forgotten, "2026-06-10", false, "V1", []string{"indyhall"}, now)
		tx.UseDay("cantine", "bob@x.test", "2026-06-10", true, "", []string{"indyhall"}, now)
		tx.PutRateWindow(forgotten, RateWindow{Start: now, Count: 1})
		tx.PutRateWindow("stranger:"+forgotten, RateWindow{Start: now, Count: 1})
		tx.PutRateWindow("stranger-domain:x.test", RateWindow{Start: now, Count: 1})
		tx.PutPending(Pending{Token: "P1", Actor: forgotten, Kind: "forget", Expires: now.Add(time.Hour)})
		tx.PutPending(Pending{Token: "P2", Actor: "m@x.test", Kind: "changes", Payload: json.RawMessage(`{"changes":[{"space":"indyhall","email":"` + forgotten + `"}]}`), Expires: now.Add(time.Hour)})
		tx.PutPendingWithFile(Pending{Token: "P3", Actor: "m@x.test", Kind: "replace", Payload: json.RawMessage(`{}`), Expires: now.Add(time.Hour)}, []byte("email\nALICE@x.test\n"))
		tx.PutPending(Pending{Token: "P4", Actor: "m@x.test", Kind: "changes", Payload: json.RawMessage(`{"changes":[{"space":"indyhall","email":"bob@x.test"}]}`), Expires: now.Add(time.Hour)})
		tx.MarkHandled(forgotten+" <old@mail.test>", HandledMessage{At: now, Sender: forgotten, Outcome: "replied"})
		tx.ConfirmRoster("cantine", forgotten, now)
		_, err := tx.Enqueue(OutboxItem{From: "visa@x.test", To: []string{forgotten}, Raw: []byte("To: " + forgotten + "\r\n\r\nbye"), Created: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, path
}

// Forget leaves no record that names the address: rosters, manager links,
// verifications and visits of it, days, counters, waiting changes are
// gone; the audit trail, verifications and visits it made as a host name
// its pseudonym, and the history index follows.
func TestForget(t *testing.T) {
	db, path := forgetStore(t)
	now := time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)
	var e Erasure
	err := db.Update(func(tx *Tx) (err error) {
		e, err = tx.Forget(forgotten, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Memberships) != 2 || strings.Join(e.Managed, ",") != "cantine" || e.Verifications != 1 || e.Visits != 1 ||
		e.Days != 1 || e.Audit != 4 || e.Pending != 3 || !IsPseudonym(e.Pseudonym) {
		t.Errorf("erasure = %+v", e)
	}
	// Every bucket, every key and value, but the outbox (its messages
	// leave once sent): no byte of the address.
	needle := []byte(forgotten)
	db.View(func(tx *Tx) error {
		return tx.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == string(bucketOutbox) || string(name) == string(bucketOutboxRaw) {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if bytes.Contains(bytes.ToLower(k), needle) || bytes.Contains(bytes.ToLower(v), needle) {
					t.Errorf("bucket %s still names the address: %q = %q", name, k, v)
				}
				return nil
			})
		})
	})
	db.View(func(tx *Tx) error {
		// What others did stays, under the pseudonym where it names them.
		var hosts, visitors []string
		tx.Verifications(0, func(v Verification) bool {
			hosts, visitors = append(hosts, v.Host), append(visitors, v.Visitor)
			return true
		})
		if strings.Join(hosts, ",") != e.Pseudonym || strings.Join(visitors, ",") != "bob@x.test" {
			t.Errorf("verifications: hosts %q, visitors %q", hosts, visitors)
		}
		if v, ok, _ := tx.Visit("V2"); !ok || v.DeclinedBy != e.Pseudonym {
			t.Errorf("bob's visit = %+v, %v", v, ok)
		}
		if _, ok, _ := tx.Pending("P4"); !ok {
			t.Error("a waiting change that does not name the address was dropped")
		}
		if _, ok, _ := tx.Handled(e.Pseudonym + " <old@mail.test>"); !ok {
			t.Error("the exactly-once record was not kept under the pseudonym")
		}
		if w, _ := tx.RateWindow("stranger-domain:x.test"); w.Count != 1 {
			t.Error("the domain's counter went too")
		}
		// History reads the same person under the pseudonym, across the
		// rename.
		h, err := tx.History("betahaus", e.Pseudonym)
		if err != nil || len(h) != 1 || h[0].Key != "old@x.test" {
			t.Errorf("history under the pseudonym = %+v, %v", h, err)
		}
		h, _ = tx.History("indyhall", "bob@x.test")
		if len(h) != 1 || h[0].Actor != e.Pseudonym {
			t.Errorf("bob's history = %+v", h)
		}
		asked, ready, _ := tx.CompactionDue()
		if !asked || ready {
			t.Errorf("compaction asked=%v ready=%v; want asked, not ready while the outbox holds a message of before", asked, ready)
		}
		return nil
	})
	db.Close()
	r, err := Verify(path)
	if err != nil || !r.Clean() {
		t.Fatalf("the store after Forget: %v %q", err, r.Problems)
	}
}

// Compact leaves no byte of a forgotten address in the file, free pages
// included, keeps the store's identity and records, and the generation
// goes on growing: the compacted file opens again past its stamp.
func TestCompactLeavesNoTrace(t *testing.T) {
	db, path := forgetStore(t)
	now := time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)
	// Grow the file a little, so that free pages hold copies.
	db.Update(func(tx *Tx) error {
		for i := range 200 {
			tx.RecordVerification(Verification{At: now, Host: "m@x.test", Visitor: forgotten, MessageID: strings.Repeat("x", i)})
		}
		return nil
	})
	var gen0 uint64
	var items []uint64
	err := db.Update(func(tx *Tx) error {
		if _, err := tx.Forget(forgotten, now); err != nil {
			return err
		}
		tx.Outbox(func(it OutboxItem) bool { items = append(items, it.ID); return true })
		for _, id := range items {
			tx.DeleteOutboxItem(id) // sent
		}
		gen0 = tx.Generation()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(forgotten)) {
		t.Fatal("before compaction the file holds no copy: the test proves nothing")
	}
	db.View(func(tx *Tx) error {
		if asked, ready, _ := tx.CompactionDue(); !asked || !ready {
			t.Errorf("compaction asked=%v ready=%v; want both once the outbox is empty", asked, ready)
		}
		return nil
	})
	id := db.Identity()
	res, err := db.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if res.After <= 0 || res.Before <= 0 {
		t.Errorf("result = %+v", res)
	}
	data, _ = os.ReadFile(path)
	if bytes.Contains(bytes.ToLower(data), []byte(forgotten)) {
		t.Error("the compacted file still holds the address")
	}
	// The store goes on working on the new file.
	err = db.Update(func(tx *Tx) error {
		if asked, _, _ := tx.CompactionDue(); asked {
			t.Error("the request survived the compaction")
		}
		if g := tx.Generation(); g <= gen0 {
			t.Errorf("generation after compaction = %d, want > %d", g, gen0)
		}
		m, ok, _ := tx.Member("indyhall", "bob@x.test")
		if !ok || m.Name != "Bob" {
			t.Errorf("bob after compaction = %+v, %v", m, ok)
		}
		return tx.PutMember(Member{Space: "indyhall", Email: "carol@x.test", Status: StatusActive})
	})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(compactTempPrefix(path) + "*"); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
	db.Close()
	db, err = Open(path)
	if err != nil {
		t.Fatalf("the compacted store does not open again: %v", err)
	}
	if db.Identity() != id {
		t.Errorf("identity %+v, want %+v", db.Identity(), id)
	}
	db.Close()
	if r, err := Verify(path); err != nil || !r.Clean() {
		t.Errorf("the compacted store: %v %q", err, r.Problems)
	}
}

// A compaction killed midway leaves its temporary file, which the next
// open removes.
func TestCompactLeftoversRemoved(t *testing.T) {
	db, path := openTemp(t)
	db.Close()
	left := compactTempPrefix(path) + "0011223344556677"
	os.WriteFile(left, []byte("half a copy"), 0o600)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("leftover still there: %v", err)
	}
}

// Retention: verifications, visits and days older than the limit go;
// addresses on no roster are pseudonymised in the older audit records,
// while those still on a roster, the kept ones (admins) and the newer
// records keep theirs.
func TestRetention(t *testing.T) {
	db, _ := openTemp(t)
	old := time.Date(2025, 1, 10, 10, 0, 0, 0, time.UTC)
	recent := time.Date(2026, 2, 10, 10, 0, 0, 0, time.UTC)
	cutoff := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := db.Update(func(tx *Tx) error {
		tx.PutMember(Member{Space: "indyhall", Email: "stays@x.test", Status: StatusActive})
		for _, at := range []time.Time{old, recent} {
			tx.RecordVerification(Verification{At: at, Host: "m@x.test", Visitor: "v@x.test"})
			for _, key := range []string{"gone@x.test", "stays@x.test"} {
				a, _ := json.Marshal(Member{Email: key})
				tx.Record(Change{At: at, Actor: "admin@x.test", Space: "indyhall", Kind: "member", Key: key, Action: "add", After: a})
			}
		}
		tx.PutVisit(Visit{Token: "OLD", Space: "indyhall", Member: "v@x.test", From: "2025-01-20", Days: 1, At: old})
		tx.PutVisit(Visit{Token: "NEW", Space: "indyhall", Member: "v@x.test", From: "2026-02-20", Days: 1, At: recent})
		// Announced long ago for a day after the limit: kept.
		tx.PutVisit(Visit{Token: "LATE", Space: "indyhall", Member: "v@x.test", From: "2026-01-05", Days: 1, At: old})
		tx.UseDay("indyhall", "v@x.test", "2025-01-20", true, "", nil, old)
		tx.UseDay("indyhall", "v@x.test", "2026-02-20", true, "", nil, recent)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pruned, pseudonymised int
	err = db.Update(func(tx *Tx) error {
		var err error
		if pruned, err = tx.PruneVisa(cutoff); err != nil {
			return err
		}
		names, err := tx.OffRoster(cutoff, func(a string) bool { return a == "admin@x.test" })
		if err != nil {
			return err
		}
		if _, ok := names["gone@x.test"]; len(names) != 1 || !ok {
			t.Errorf("off the rosters: %v", names)
		}
		pseudonymised, err = tx.PseudonymiseAudit(names, cutoff)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if pruned != 3 || pseudonymised != 1 {
		t.Errorf("pruned %d, pseudonymised %d; want 3, 1", pruned, pseudonymised)
	}
	db.View(func(tx *Tx) error {
		var keys []string
		tx.Changes(0, func(c Change) bool { keys = append(keys, c.Key); return true })
		p := tx.Pseudonym("gone@x.test")
		if strings.Join(keys, " ") != p+" stays@x.test gone@x.test stays@x.test" {
			t.Errorf("audit keys = %q", keys)
		}
		var n int
		tx.Verifications(0, func(Verification) bool { n++; return true })
		if n != 1 {
			t.Errorf("%d verifications left, want 1", n)
		}
		for tok, want := range map[string]bool{"OLD": false, "NEW": true, "LATE": true} {
			if _, ok, _ := tx.Visit(tok); ok != want {
				t.Errorf("visit %s kept = %v, want %v", tok, ok, want)
			}
		}
		if tx.DayUsed("indyhall", "v@x.test", "2025-01-20") || !tx.DayUsed("indyhall", "v@x.test", "2026-02-20") {
			t.Error("days not pruned by date")
		}
		return nil
	})
}

// The pseudonym is stable, keyed per store, and never an address.
func TestPseudonym(t *testing.T) {
	a, _ := openTemp(t)
	b, _ := openTemp(t)
	var pa1, pa2, pb string
	a.View(func(tx *Tx) error { pa1 = tx.Pseudonym("x@y.test"); return nil })
	pa2 = a.Pseudonym("x@y.test")
	b.View(func(tx *Tx) error { pb = tx.Pseudonym("x@y.test"); return nil })
	if pa1 != pa2 || pa1 == pb || !IsPseudonym(pa1) || strings.Contains(pa1, "@") {
		t.Errorf("pseudonyms %q %q %q", pa1, pa2, pb)
	}
}

// Transactions that run while Compact swaps the file wait for it and go on
// with the new file: none fails, none is lost.
func TestCompactWhileWriting(t *testing.T) {
	db, path := openTemp(t)
	const writers, each = 4, 50
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				err := db.Update(func(tx *Tx) error {
					return tx.PutMember(Member{Space: "s", Email: strings.Repeat("x", w+1) + "@" + strings.Repeat("y", i+1) + ".test", Status: StatusActive})
				})
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 3 {
		if _, err := db.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatalf("a write during compaction: %v", err)
		}
	}
	db.View(func(tx *Tx) error {
		if n := tx.CountMembers("s"); n != writers*each {
			t.Errorf("%d members after writing during compactions, want %d", n, writers*each)
		}
		return nil
	})
	db.Close()
	if r, err := Verify(path); err != nil || !r.Clean() {
		t.Errorf("the store: %v %q", err, r.Problems)
	}
}
