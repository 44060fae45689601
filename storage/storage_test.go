package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "visa.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestMembersAndIndex(t *testing.T) {
	db, _ := openTemp(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	err := db.Update(func(tx *Tx) error {
		for _, m := range []Member{
			{Space: "indyhall", Email: "b@x.test", Name: "Zed", Status: StatusActive, Added: now},
			{Space: "indyhall", Email: "a@x.test", Name: "Amy", Status: StatusActive, Added: now},
			{Space: "betahaus", Email: "a@x.test", Name: "Amy B", Status: StatusInactive, Added: now},
			{Space: "indy", Email: "c@x.test", Status: StatusActive}, // a prefix of another space id
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		ms, err := tx.Members("indyhall")
		if err != nil {
			return err
		}
		if len(ms) != 2 || ms[0].Name != "Amy" || ms[1].Name != "Zed" {
			t.Errorf("Members(indyhall) = %+v, want Amy then Zed", ms)
		}
		if n := tx.CountMembers("indy"); n != 1 {
			t.Errorf("CountMembers(indy) = %d, want 1 (no leak from indyhall)", n)
		}
		of, err := tx.MembershipsOf("a@x.test")
		if err != nil {
			return err
		}
		if len(of) != 2 || of[0].Space != "betahaus" || of[1].Space != "indyhall" {
			t.Errorf("MembershipsOf = %+v", of)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteMember("indyhall", "a@x.test") }); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		of, _ := tx.MembershipsOf("a@x.test")
		if len(of) != 1 || of[0].Space != "betahaus" {
			t.Errorf("after delete MembershipsOf = %+v, want only betahaus", of)
		}
		return nil
	})
}

func TestActiveOn(t *testing.T) {
	for _, c := range []struct {
		m    Member
		day  string
		want bool
	}{
		{Member{Status: StatusActive}, "2026-11-28", true},
		{Member{Status: StatusActive, Until: "2026-11-28"}, "2026-11-28", true},
		{Member{Status: StatusActive, Until: "2026-11-27"}, "2026-11-28", false},
		{Member{Status: StatusInactive}, "2026-11-28", false},
	} {
		if got := c.m.ActiveOn(c.day); got != c.want {
			t.Errorf("%+v.ActiveOn(%s) = %v, want %v", c.m, c.day, got, c.want)
		}
	}
}

// A failing transaction must leave nothing behind: this is what makes a
// message's changes all-or-nothing.
func TestUpdateRollsBackOnError(t *testing.T) {
	db, _ := openTemp(t)
	boom := errors.New("boom")
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutMember(Member{Space: "s", Email: "a@x.test", Status: StatusActive}); err != nil {
			return err
		}
		if _, err := tx.Enqueue(OutboxItem{To: []string{"a@x.test"}, Raw: []byte("x")}); err != nil {
			return err
		}
		if err := tx.MarkHandled("k", HandledMessage{Outcome: "replied"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want boom", err)
	}
	db.View(func(tx *Tx) error {
		if _, ok, _ := tx.Member("s", "a@x.test"); ok {
			t.Error("member survived a rolled-back transaction")
		}
		if _, ok, _ := tx.Handled("k"); ok {
			t.Error("handled mark survived a rolled-back transaction")
		}
		n := 0
		tx.Outbox(func(OutboxItem) bool { n++; return true })
		if n != 0 {
			t.Errorf("outbox has %d items after rollback", n)
		}
		return nil
	})
}

func TestOutboxKeepsRawBytesApart(t *testing.T) {
	db, path := openTemp(t)
	raw := []byte("Message-ID: <a@b>\r\n\r\nhello\r\n")
	var id uint64
	db.Update(func(tx *Tx) (err error) {
		id, err = tx.Enqueue(OutboxItem{From: "bot@x.test", To: []string{"a@x.test"}, Raw: raw, MessageID: "a@b", Created: time.Now()})
		return err
	})
	db.Close()
	// Reopen: the queue survives a restart.
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	db2.Update(func(tx *Tx) error {
		var items []OutboxItem
		tx.Outbox(func(it OutboxItem) bool { items = append(items, it); return true })
		if len(items) != 1 || items[0].ID != id || items[0].Raw != nil || items[0].NextAttempt.IsZero() {
			t.Fatalf("outbox after reopen = %+v", items)
		}
		if got := tx.OutboxRaw(id); !bytes.Equal(got, raw) {
			t.Errorf("OutboxRaw = %q, want %q", got, raw)
		}
		items[0].Attempts = 2
		if err := tx.PutOutboxItem(items[0]); err != nil {
			return err
		}
		if got := tx.OutboxRaw(id); !bytes.Equal(got, raw) {
			t.Errorf("OutboxRaw after PutOutboxItem = %q", got)
		}
		if err := tx.DeleteOutboxItem(id); err != nil {
			return err
		}
		if got := tx.OutboxRaw(id); len(got) != 0 {
			t.Errorf("OutboxRaw after delete = %q", got)
		}
		return nil
	})
}

func TestManagers(t *testing.T) {
	db, _ := openTemp(t)
	db.Update(func(tx *Tx) error {
		tx.PutSpace(Space{ID: "a", Name: "A"})
		tx.PutSpace(Space{ID: "b", Name: "B"})
		tx.AddManager(Manager{Email: "m@x.test", Space: "a"})
		tx.AddManager(Manager{Email: "m@x.test", Space: "b"})
		tx.AddManager(Manager{Email: "n@x.test", Space: "a"})
		return nil
	})
	db.Update(func(tx *Tx) error {
		spaces, _ := tx.ManagedSpaces("m@x.test")
		if len(spaces) != 2 || spaces[0] != "a" || spaces[1] != "b" {
			t.Errorf("ManagedSpaces = %v", spaces)
		}
		ms, _ := tx.Managers("a")
		if len(ms) != 2 {
			t.Errorf("Managers(a) = %v", ms)
		}
		if err := tx.DeleteSpace("a"); err != nil {
			t.Fatal(err)
		}
		spaces, _ = tx.ManagedSpaces("m@x.test")
		if len(spaces) != 1 || spaces[0] != "b" {
			t.Errorf("after DeleteSpace ManagedSpaces = %v", spaces)
		}
		if ms, _ := tx.ManagedSpaces("n@x.test"); len(ms) != 0 {
			t.Errorf("n still manages %v", ms)
		}
		return nil
	})
}

func TestOpenLockedAndNewerSchema(t *testing.T) {
	_, path := openTemp(t)
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	// A file from a newer program is refused, not guessed at.
	p2 := filepath.Join(t.TempDir(), "new.db")
	db, err := Open(p2)
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte("schema"), itob(SchemaVersion+1)) })
	db.Close()
	if _, err := Open(p2); err == nil {
		t.Error("Open of a newer schema succeeded")
	}
	if _, err := os.Stat(p2); err != nil {
		t.Error(err)
	}
}

func TestBackupIsAConsistentStore(t *testing.T) {
	db, _ := openTemp(t)
	db.Update(func(tx *Tx) error { return tx.PutSpace(Space{ID: "x", Name: "X"}) })
	var buf bytes.Buffer
	if _, err := db.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "copy.db")
	os.WriteFile(p, buf.Bytes(), 0o600)
	copyDB, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	copyDB.View(func(tx *Tx) error {
		if s, ok, _ := tx.Space("x"); !ok || s.Name != "X" {
			t.Errorf("backup lacks space x: %+v", s)
		}
		return nil
	})
}
