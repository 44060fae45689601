package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fullStore creates a store of many pages: spaces, managers, members with
// their audit records, handled messages, a pending change with its file,
// and an outbox message. It returns its path, closed.
func fullStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "visa.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *Tx) error {
		for s := range 3 {
			space := fmt.Sprintf("space%d", s)
			if err := tx.PutSpace(Space{ID: space, Name: "Space " + space}); err != nil {
				return err
			}
			if err := tx.AddManager(Manager{Email: "boss@" + space + ".test", Space: space, Added: now}); err != nil {
				return err
			}
			for i := range 150 {
				m := Member{Space: space, Email: fmt.Sprintf("m%03d@%s.test", i, space), Name: strings.Repeat("N", 40), Status: StatusActive, Added: now}
				if err := tx.PutMember(m); err != nil {
					return err
				}
				if _, err := tx.Record(Change{At: now, Actor: "boss@" + space + ".test", Space: space, Kind: "member", Key: m.Email, Action: "add"}); err != nil {
					return err
				}
			}
		}
		for i := range 20 {
			if err := tx.MarkHandled(fmt.Sprintf("boss@space0.test <%d@x>", i), HandledMessage{At: now, Outcome: "replied"}); err != nil {
				return err
			}
		}
		if err := tx.PutPendingWithFile(Pending{Token: "K7QX", Actor: "boss@space0.test", Space: "space0", Expires: now.Add(time.Hour)}, []byte("email\na@x.test\n")); err != nil {
			return err
		}
		_, err := tx.Enqueue(OutboxItem{From: "bot@x.test", To: []string{"boss@space0.test"}, Raw: []byte("Subject: hi\r\n\r\nhi\r\n"), Created: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyWith writes data as a store file in a new directory and returns its
// path.
func copyWith(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "visa.db")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustRefuse opens path and wants a *StoreError of kind, leaving the file
// as it was.
func mustRefuse(t *testing.T, path string, kind error) *StoreError {
	t.Helper()
	before, _ := os.ReadFile(path)
	db, err := Open(path)
	if err == nil {
		db.Close()
		t.Fatalf("Open succeeded, want %v", kind)
	}
	var se *StoreError
	if !errors.As(err, &se) || !errors.Is(err, kind) {
		t.Fatalf("Open = %v, want a StoreError of kind %v", err, kind)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the error is more than one line: %q", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("Open changed the refused file (%d bytes, now %d)", len(before), len(after))
	}
	return se
}

func TestOpenRefusesAnEmptyFile(t *testing.T) {
	mustRefuse(t, copyWith(t, nil), ErrEmpty)
}

func TestOpenRefusesTruncatedFiles(t *testing.T) {
	path := fullStore(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt grows its file ahead of use: the pages in use end at the
	// header's high-water mark, and what follows may go.
	f, _ := os.Open(path)
	h, err := inspect(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	used := int(h.pages) * h.pageSize
	if used < 16*4096 {
		t.Fatalf("the store uses %d bytes: too few pages for this test", used)
	}
	if db, err := Open(copyWith(t, data[:used])); err != nil {
		t.Errorf("the store cut at its high-water mark does not open: %v", err)
	} else {
		db.Close()
	}
	for _, n := range []int{1, 10, 19, 50, 79, 100, 4095, 4096, 4096 + 100, 2 * 4096, 3*4096 + 7, used / 2, used - 4096, used - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			se := mustRefuse(t, copyWith(t, data[:n]), ErrTruncated)
			if !strings.Contains(se.Detail, fmt.Sprint(n)) {
				t.Errorf("the detail does not give the length: %q", se.Detail)
			}
		})
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 64*1024)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	t.Run("garbage", func(t *testing.T) { mustRefuse(t, copyWith(t, garbage), ErrForeign) })
	t.Run("text", func(t *testing.T) {
		mustRefuse(t, copyWith(t, []byte("store:\n  path: /var/lib/mailbot/visa.db\n")), ErrForeign)
	})
	t.Run("a directory", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "visa.db")
		os.Mkdir(p, 0o700)
		if _, err := Open(p); !errors.Is(err, ErrForeign) {
			t.Errorf("Open of a directory = %v, want ErrForeign", err)
		}
	})
	// bbolt files of another program: with its own buckets, and none.
	for name, bucket := range map[string]string{"another program's": "widgets", "an empty bbolt": ""} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "visa.db")
			b, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if bucket != "" {
				b.Update(func(tx *bolt.Tx) error {
					bk, err := tx.CreateBucket([]byte(bucket))
					if err != nil {
						return err
					}
					return bk.Put([]byte("w1"), []byte("blue"))
				})
			}
			b.Close()
			mustRefuse(t, p, ErrForeign)
		})
	}
}

func TestOpenRefusesDamagedFiles(t *testing.T) {
	data, err := os.ReadFile(fullStore(t))
	if err != nil {
		t.Fatal(err)
	}
	ps := 4096
	t.Run("both header pages", func(t *testing.T) {
		d := bytes.Clone(data)
		d[16+20]++    // page 0's meta, in the checksummed part
		d[ps+16+20]++ // page 1's
		mustRefuse(t, copyWith(t, d), ErrDamaged)
	})
	t.Run("keys out of order", func(t *testing.T) {
		// A member key rewritten to sort before its neighbours: every
		// offset stays sound, only bbolt's own check can tell.
		d := bytes.Clone(data)
		i := bytes.Index(d, []byte("space1\x00m100@space1.test"))
		if i < 0 {
			t.Fatal("key not found in the file")
		}
		d[i+len("space1\x00m")] = '0' - 1
		mustRefuse(t, copyWith(t, d), ErrDamaged)
	})
}

// TestOpenNeverCrashes overwrites each page of a store in turn with zeros,
// with random bytes, and with a copy of another page: Open either works or
// says the file is damaged, but never panics or faults (either would end
// this test binary).
func TestOpenNeverCrashes(t *testing.T) {
	data, err := os.ReadFile(fullStore(t))
	if err != nil {
		t.Fatal(err)
	}
	ps := 4096
	rng := rand.New(rand.NewPCG(3, 4))
	refused := 0
	for pg := 2; pg < len(data)/ps; pg++ {
		for _, how := range []string{"zeros", "random", "another page"} {
			d := bytes.Clone(data)
			page := d[pg*ps : (pg+1)*ps]
			switch how {
			case "zeros":
				clear(page)
			case "random":
				for i := range page {
					page[i] = byte(rng.Uint32())
				}
			case "another page":
				other := 2 + (pg+5)%(len(data)/ps-2)
				copy(page, data[other*ps:(other+1)*ps])
			}
			db, err := Open(copyWith(t, d))
			if err == nil {
				db.Close() // a free page: nothing reads it
				continue
			}
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrForeign) {
				t.Errorf("page %d, %s: Open = %v, want ErrDamaged or success", pg, how, err)
			}
			refused++
		}
	}
	if refused == 0 {
		t.Error("no overwritten page was noticed")
	}
}

func TestNewStoreKnowsItself(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "visa.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := db.Identity()
	if id.Program != program || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id.ID) || time.Since(id.Created) > time.Hour {
		t.Errorf("identity = %+v", id)
	}
	db.Close()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".new-") {
			t.Errorf("a temporary file is left: %s", e.Name())
		}
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Identity() != id {
		t.Errorf("identity after reopen = %+v, want %+v", db.Identity(), id)
	}
}

// TestStampFollowsCommits: after each commit the stamp holds the store id
// and the generation just committed.
func TestStampFollowsCommits(t *testing.T) {
	db, path := openTemp(t)
	for range 3 {
		var gen uint64
		db.Update(func(tx *Tx) error { gen = tx.Generation(); return tx.PutSpace(Space{ID: "x"}) })
		st, ok := readStamp(path)
		if !ok || st.ID != db.Identity().ID || st.Generation != gen {
			t.Fatalf("stamp = %+v (%v), want store %s generation %d", st, ok, db.Identity().ID, gen)
		}
	}
}

// TestBackupCopiedOverTheLiveStore: an older copy, or another store, put in
// place of the live file is refused; Restamp (what restore does) accepts it.
func TestBackupCopiedOverTheLiveStore(t *testing.T) {
	db, path := openTemp(t)
	db.Update(func(tx *Tx) error { return tx.PutSpace(Space{ID: "old"}) })
	var backup bytes.Buffer
	if _, err := db.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *Tx) error { return tx.PutSpace(Space{ID: "new"}) })
	db.Close()
	live, _ := os.ReadFile(path)

	os.WriteFile(path, backup.Bytes(), 0o600)
	se := mustRefuse(t, path, ErrReplaced)
	if !strings.Contains(se.Detail, "older copy") {
		t.Errorf("detail = %q", se.Detail)
	}

	other, _ := openTemp(t)
	var b2 bytes.Buffer
	other.Backup(&b2)
	os.WriteFile(path, b2.Bytes(), 0o600)
	if se := mustRefuse(t, path, ErrReplaced); !strings.Contains(se.Detail, "another store") {
		t.Errorf("detail = %q", se.Detail)
	}

	// The newer file back in place opens again.
	os.WriteFile(path, live, 0o600)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	// A deliberate restore of the backup.
	os.WriteFile(path, backup.Bytes(), 0o600)
	if _, _, err := Restamp(path); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatalf("Open after Restamp = %v", err)
	}
	defer db.Close()
	db.View(func(tx *Tx) error {
		if _, ok, _ := tx.Space("new"); ok {
			t.Error("the restored store has the newer space")
		}
		return nil
	})
}

func TestMissingStoreWithAStampIsNotRecreated(t *testing.T) {
	db, path := openTemp(t)
	db.Close()
	os.Remove(path)
	if _, err := Open(path); !errors.Is(err, ErrMissing) {
		t.Fatalf("Open = %v, want ErrMissing", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a new store was created")
	}
	os.Remove(StampPath(path))
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open without the stamp = %v, want a new store", err)
	}
	db.Close()
}

// TestStoreOlderThanTheIdentity: a store written before the identity record
// gets one; an old copy of it put in place of the identified store is
// refused.
func TestStoreOlderThanTheIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "visa.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyIdentity) })
	var old bytes.Buffer
	db.Backup(&old)
	db.Close()
	os.Remove(StampPath(path)) // as an older version left it

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if db.Identity().ID == "" {
		t.Error("no identity written")
	}
	db.Close()
	os.WriteFile(path, old.Bytes(), 0o600)
	mustRefuse(t, path, ErrReplaced)
}

func TestBackupLog(t *testing.T) {
	db, path := openTemp(t)
	dir := t.TempDir()
	var gens []uint64
	for i := range 3 {
		db.Update(func(tx *Tx) error { return tx.PutSpace(Space{ID: fmt.Sprint(i)}) })
		var buf bytes.Buffer
		db.Backup(&buf)
		p := filepath.Join(dir, fmt.Sprintf("b%d.db", i))
		os.WriteFile(p, buf.Bytes(), 0o600)
		id, gen, err := Describe(p)
		if err != nil || id != db.Identity() {
			t.Fatalf("Describe = %+v, %v", id, err)
		}
		gens = append(gens, gen)
		if err := RecordBackup(path, BackupRecord{At: time.Now(), Path: p, StoreID: id.ID, Generation: gen}); err != nil {
			t.Fatal(err)
		}
	}
	if !(gens[0] < gens[1] && gens[1] < gens[2]) {
		t.Errorf("generations %v do not grow", gens)
	}
	if rec, ok := LastBackup(path); !ok || rec.Path != filepath.Join(dir, "b2.db") {
		t.Errorf("LastBackup = %+v, %v; want b2", rec, ok)
	}
	// The newest is damaged, the one before is gone: b0 is the last good.
	os.WriteFile(filepath.Join(dir, "b2.db"), []byte("oops"), 0o600)
	os.Remove(filepath.Join(dir, "b1.db"))
	if rec, ok := LastBackup(path); !ok || rec.Path != filepath.Join(dir, "b0.db") {
		t.Errorf("LastBackup = %+v, %v; want b0", rec, ok)
	}
}
