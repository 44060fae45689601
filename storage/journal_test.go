package storage

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// memberChange is an audit record of a member as the commands write it.
func memberChange(space, key, action string, after *Member) Change {
	c := Change{At: time.Now(), Actor: "m@x.test", MessageID: "m1", Space: space, Kind: "member", Key: key, Action: action}
	if after != nil {
		c.After, _ = json.Marshal(after)
	}
	return c
}

// trail records a member's life: added, updated, renamed, then a new
// member under the old address, plus noise in other spaces and kinds.
func trail(t *testing.T, db *DB) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		for _, c := range []Change{
			memberChange("indy", "a@x.test", "add", &Member{Email: "a@x.test"}),                    // 1
			memberChange("indyhall", "a@x.test", "add", &Member{Email: "a@x.test"}),                // 2: another space
			memberChange("indy", "a@x.test", "update", &Member{Email: "a@x.test", Name: "A"}),      // 3
			memberChange("indy", "ab@x.test", "add", &Member{Email: "ab@x.test"}),                  // 4: a longer address
			{Kind: "manager", Space: "indy", Key: "a@x.test", Action: "add"},                       // 5: not a member
			memberChange("indy", "a@x.test", "update", &Member{Email: "b@x.test", Name: "A"}),      // 6: renamed to b
			memberChange("indy", "b@x.test", "update", &Member{Email: "b@x.test", Status: "gone"}), // 7
			memberChange("indy", "a@x.test", "add", &Member{Email: "a@x.test"}),                    // 8: a new a
			memberChange("indy", "b@x.test", "update", &Member{Email: "c@x.test"}),                 // 9: renamed to c
			memberChange("indy", "c@x.test", "remove", nil),                                        // 10
		} {
			if _, err := tx.Record(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func seqs(t *testing.T, db *DB, space, key string) string {
	t.Helper()
	var out []string
	err := db.View(func(tx *Tx) error {
		h, err := tx.History(space, key)
		for _, c := range h {
			out = append(out, fmt.Sprint(c.Seq))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ",")
}

func TestHistoryIndex(t *testing.T) {
	db, _ := openTemp(t)
	trail(t, db)
	for _, c := range []struct{ space, key, want string }{
		{"indy", "a@x.test", "1,3,6,8"},      // its own records, the rename away included
		{"indy", "b@x.test", "1,3,6,7,9"},    // renamed from a: a's history before the rename comes along
		{"indy", "c@x.test", "1,3,6,7,9,10"}, // two renames back
		{"indy", "ab@x.test", "4"},
		{"indyhall", "a@x.test", "2"},
		{"indy", "nobody@x.test", ""},
	} {
		if got := seqs(t, db, c.space, c.key); got != c.want {
			t.Errorf("History(%s, %s) = %s, want %s", c.space, c.key, got, c.want)
		}
	}
}

// A store written before the index existed gets it built when opened.
func TestHistoryIndexBackfill(t *testing.T) {
	db, path := openTemp(t)
	trail(t, db)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketAuditMember) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := seqs(t, db2, "indy", "c@x.test"); got != "1,3,6,7,9,10" {
		t.Errorf("history after backfill = %s", got)
	}
}

func TestDeleteExpiredPending(t *testing.T) {
	db, _ := openTemp(t)
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	db.Update(func(tx *Tx) error {
		for i, exp := range []time.Duration{-48 * time.Hour, -time.Minute, time.Hour} {
			if err := tx.PutPending(Pending{Token: fmt.Sprint("T", i), Actor: "m@x.test", Kind: "remove",
				Payload: json.RawMessage(`{}`), Expires: now.Add(exp)}); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	db.Update(func(tx *Tx) error {
		n, err := tx.DeleteExpiredPending(now.Add(-time.Hour))
		if err != nil || n != 1 {
			t.Errorf("DeleteExpiredPending = %d, %v; want 1", n, err)
		}
		for i, want := range []bool{false, true, true} {
			if _, ok, _ := tx.Pending(fmt.Sprint("T", i)); ok != want {
				t.Errorf("T%d present = %v, want %v", i, ok, want)
			}
		}
		return nil
	})
}
