package storage

import (
	"crypto/sha256"
	"testing"
	"time"
)

// The spaces' hash moves with the spaces and with nothing else.
func TestHashSpaces(t *testing.T) {
	db, _ := openTemp(t)
	sum := func() [32]byte {
		t.Helper()
		h := sha256.New()
		if err := db.View(func(tx *Tx) error { return tx.HashSpaces(h) }); err != nil {
			t.Fatal(err)
		}
		return [32]byte(h.Sum(nil))
	}
	update := func(fn func(tx *Tx) error) {
		t.Helper()
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	empty := sum()
	update(func(tx *Tx) error { return tx.PutSpace(Space{ID: "betahaus", Name: "betahaus", City: "Berlin"}) })
	one := sum()
	if one == empty {
		t.Fatal("adding a space left the hash")
	}
	update(func(tx *Tx) error { return tx.AddManager(Manager{Email: "m@betahaus.test", Space: "betahaus"}) })
	if err := db.Probe(time.Now()); err != nil {
		t.Fatal(err)
	}
	if sum() != one {
		t.Error("writes to other records moved the hash")
	}
	update(func(tx *Tx) error {
		s, _, err := tx.Space("betahaus")
		s.Hours = "9-18"
		if err == nil {
			err = tx.PutSpace(s)
		}
		return err
	})
	changed := sum()
	if changed == one {
		t.Error("changing a space left the hash")
	}
	update(func(tx *Tx) error { return tx.DeleteSpace("betahaus") })
	if sum() != empty {
		t.Error("removing the only space did not bring back the empty hash")
	}
}
