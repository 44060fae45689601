package storage

import (
	"encoding/json"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A file is stored once for every pending change that applies it, and goes
// with the last of them: when used, dropped, expired or deleted.
func TestPendingFiles(t *testing.T) {
	db, _ := openTemp(t)
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	file, other := []byte("email\na@x.test\n"), []byte("email\nb@x.test\n")
	pending := func(tok string, exp time.Duration) Pending {
		return Pending{Token: tok, Actor: "m@x.test", Kind: "replace", Payload: json.RawMessage(`{}`), Expires: now.Add(exp)}
	}
	stats := func(tx *Tx, wantFiles int, wantSize int64) {
		t.Helper()
		if files, size := tx.PendingFileStats(); files != wantFiles || size != wantSize {
			t.Errorf("files = %d of %d bytes, want %d of %d", files, size, wantFiles, wantSize)
		}
	}
	n := int64(len(file))
	err := db.Update(func(tx *Tx) error {
		for _, p := range []struct {
			p    Pending
			data []byte
		}{{pending("A", time.Hour), file}, {pending("B", 2*time.Hour), file}, {pending("C", -time.Minute), file}, {pending("D", time.Hour), other}} {
			if err := tx.PutPendingWithFile(p.p, p.data); err != nil {
				return err
			}
		}
		stats(tx, 2, 2*n)
		a, _, _ := tx.Pending("A")
		if got, ok := tx.PendingFile(a); !ok || string(got) != string(file) {
			t.Errorf("PendingFile(A) = %q, %v", got, ok)
		}
		if len(a.Payload) > 2 {
			t.Errorf("the file is in the record: %s", a.Payload)
		}
		// C expired: its file is released, the record stays for "expired".
		if n, err := tx.ReleaseExpiredPendingFiles(now); err != nil || n != 1 {
			t.Errorf("ReleaseExpiredPendingFiles = %d, %v", n, err)
		}
		if c, ok, _ := tx.Pending("C"); !ok || c.File != "" {
			t.Errorf("C after release = %+v, %v", c, ok)
		}
		if err := tx.DeletePending("D"); err != nil {
			return err
		}
		stats(tx, 1, n)
		if err := tx.DeletePending("A"); err != nil {
			return err
		}
		stats(tx, 1, n) // B still applies it
		if err := tx.DeletePending("B"); err != nil {
			return err
		}
		stats(tx, 0, 0)
		ps, err := tx.PendingOf("m@x.test")
		if err != nil || len(ps) != 1 || ps[0].Token != "C" {
			t.Errorf("PendingOf = %+v, %v", ps, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store written before pending files and the removal record existed
// opens with the new buckets, and its pending changes read as before.
func TestOpenStoreWithoutTheNewBuckets(t *testing.T) {
	db, path := openTemp(t)
	old := Pending{Token: "OLD", Actor: "m@x.test", Kind: "replace", Payload: json.RawMessage(`{"file":"r.csv","data":"ZW1haWwK"}`),
		Expires: time.Now().Add(time.Hour)}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPendingFiles, bucketPendingFileRefs, bucketRemovals} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		data, _ := json.Marshal(old)
		return tx.Bucket(bucketPending).Put([]byte(old.Token), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *Tx) error {
		p, ok, err := tx.Pending("OLD")
		if err != nil || !ok || string(p.Payload) != string(old.Payload) || p.File != "" {
			t.Errorf("old pending = %+v, %v, %v", p, ok, err)
		}
		if _, ok := tx.PendingFile(p); ok {
			t.Error("an old pending change has a stored file")
		}
		if err := tx.RecordRemovals("indy", RemovalCount{At: time.Now(), Count: 1}); err != nil {
			return err
		}
		return tx.DeletePending("OLD")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The removal record sums a space's counts over a window that ends now,
// and prunes what aged out of it.
func TestRemovalsWindow(t *testing.T) {
	db, _ := openTemp(t)
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	err := db.Update(func(tx *Tx) error {
		for _, r := range []struct {
			space string
			at    time.Duration
			n     int
		}{{"indy", 0, 5}, {"indy", time.Hour, 3}, {"indy", time.Hour, 2}, {"indyhall", time.Hour, 100}, {"in", time.Hour, 100}, {"indy", 25 * time.Hour, 1}} {
			if err := tx.RecordRemovals(r.space, RemovalCount{At: t0.Add(r.at), Count: r.n, MessageID: "m"}); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			since time.Duration
			want  int
		}{{-time.Second, 11}, {0, 6}, {time.Hour - 1, 6}, {time.Hour, 1}, {25 * time.Hour, 0}} {
			if got, err := tx.RemovalsSince("indy", t0.Add(c.since)); err != nil || got != c.want {
				t.Errorf("RemovalsSince(t0%+v) = %d, %v; want %d", c.since, got, err, c.want)
			}
		}
		if n, err := tx.PruneRemovals("indy", t0.Add(time.Hour)); err != nil || n != 3 {
			t.Errorf("PruneRemovals(indy) = %d, %v; want 3", n, err)
		}
		if got, _ := tx.RemovalsSince("indy", t0.Add(-time.Hour)); got != 1 {
			t.Errorf("after pruning indy: %d, want 1", got)
		}
		if got, _ := tx.RemovalsSince("indyhall", t0); got != 100 {
			t.Errorf("pruning indy touched indyhall: %d", got)
		}
		if n, err := tx.PruneRemovals("", t0.Add(2*time.Hour)); err != nil || n != 2 {
			t.Errorf("PruneRemovals(all) = %d, %v; want 2", n, err)
		}
		if got, _ := tx.RemovalsSince("indy", t0); got != 1 {
			t.Errorf("after pruning all: indy %d, want 1", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
