package storage

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestVerifyCleanStore(t *testing.T) {
	path := fullStore(t)
	r, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() {
		t.Fatalf("problems in a sound store: %q", r.Problems)
	}
	if r.Identity.ID == "" || r.Schema != SchemaVersion || r.Generation == 0 || r.PageSize == 0 {
		t.Errorf("report = %+v", r)
	}
	counts := map[string]int{}
	for _, c := range r.Counts {
		counts[c.Name] = c.N
	}
	if counts["members"] != 450 || counts["spaces"] != 3 || counts["outbox messages"] != 1 || counts["pending files"] != 1 {
		t.Errorf("counts = %v", counts)
	}
}

// TestVerifyFindsEachBrokenInvariant breaks one invariant at a time, as a
// bug or a damaged page could, and wants Verify to name it.
func TestVerifyFindsEachBrokenInvariant(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(tx *bolt.Tx) error
		want   string
	}{
		{"member without its index entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMemberIndex).Delete(pairKey("m001@space0.test", "space0"))
		}, `members: "space0\x00m001@space0.test" has no member_index entry`},
		{"index entry without its member", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMemberIndex).Put(pairKey("ghost@x.test", "space0"), nil)
		}, `member_index: "ghost@x.test\x00space0" points to no record`},
		{"member stored under another key", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMembers)
			v := b.Get(pairKey("space0", "m001@space0.test"))
			if err := b.Put(pairKey("space0", "m002@space0.test"), v); err != nil {
				return err
			}
			return nil
		}, `members: the record stored under "space0\x00m002@space0.test" is of m001@space0.test in space0`},
		{"manager without its index entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketManagerSpaces).Delete(pairKey("space1", "boss@space1.test"))
		}, `managers: "boss@space1.test\x00space1" has no manager_index entry`},
		{"manager index entry without its manager", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketManagerSpaces).Put(pairKey("space1", "gone@x.test"), nil)
		}, `manager_index: "space1\x00gone@x.test" points to no record`},
		{"audit record without its history entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAuditMember).Delete(historyKey("space0", "m000@space0.test", 1))
		}, `audit: record 1 (m000@space0.test in space0) has no audit_member entry`},
		{"history entry without its audit record", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAudit).Delete(itob(2))
		}, `audit_member: m001@space0.test in space0 points to audit record 2, which does not exist`},
		{"history entry of another member", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAuditMember).Put(historyKey("space0", "m007@space0.test", 3), nil)
		}, `audit_member: m007@space0.test in space0 points to audit record 3, which is about m002@space0.test in space0`},
		{"handled record without its time index", func(tx *bolt.Tx) error {
			at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			return tx.Bucket(bucketHandledAt).Delete(handledAtKey("boss@space0.test <3@x>", at))
		}, `handled: "boss@space0.test <3@x>" has no handled_at entry`},
		{"time index without its handled record", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketHandled).Delete([]byte("boss@space0.test <4@x>"))
		}, `handled_at: "boss@space0.test <4@x>" points to no handled record`},
		{"pending change without its file reference", func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketPendingFileRefs).Cursor()
			k, _ := c.First()
			return tx.Bucket(bucketPendingFileRefs).Delete(k)
		}, `pending: K7QX has no pending_file_refs entry`},
		{"pending change whose file is gone", func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketPendingFiles).Cursor()
			k, _ := c.First()
			return tx.Bucket(bucketPendingFiles).Delete(k)
		}, `is not stored`},
		{"file reference of no pending change", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketPending).Delete([]byte("K7QX"))
		}, `which does not apply that file`},
		{"outbox message without its bytes", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketOutboxRaw).Delete(itob(1))
		}, `outbox: message 1 has no bytes in outbox_raw`},
		{"outbox bytes without their message", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketOutbox).Delete(itob(1))
		}, `outbox_raw: message 1 is not in the outbox`},
		{"a record that does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketOutbox).Put(itob(1), []byte("{not json"))
		}, `outbox: decode outbox/`},
		{"no meta record", func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketMeta)
		}, `not a mailbot store`},
		{"identity of another program", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyIdentity, []byte(`{"program":"widgets","id":"x"}`))
		}, `meta: the identity record names program "widgets"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := fullStore(t)
			b, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Update(c.break_); err != nil {
				t.Fatal(err)
			}
			b.Close()
			r, err := Verify(path)
			if err != nil {
				t.Fatal(err)
			}
			if r.Clean() {
				t.Fatal("Verify found nothing")
			}
			found := false
			for _, p := range r.Problems {
				found = found || strings.Contains(p, c.want)
			}
			if !found {
				t.Errorf("problems %q lack %q", r.Problems, c.want)
			}
		})
	}
}

func TestVerifyReportsUnusableFiles(t *testing.T) {
	for name, data := range map[string][]byte{"empty": nil, "garbage": []byte(strings.Repeat("x", 9000))} {
		r, err := Verify(copyWith(t, data))
		if err != nil {
			t.Fatal(err)
		}
		if r.Clean() {
			t.Errorf("%s: Verify found nothing", name)
		}
	}
	// A store without the identity record (an older version's) is sound:
	// only a note.
	path := fullStore(t)
	b, _ := bolt.Open(path, 0o600, nil)
	b.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyIdentity) })
	b.Close()
	r, err := Verify(path)
	if err != nil || !r.Clean() || len(r.Notes) == 0 {
		t.Errorf("older store: %v, problems %q, notes %q", err, r.Problems, r.Notes)
	}
}

func TestVerifyLeavesTheFileAndWantsItFree(t *testing.T) {
	path := fullStore(t)
	before, _ := os.ReadFile(path)
	if _, err := Verify(path); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("Verify changed the file")
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Verify(path); !errors.Is(err, ErrLocked) {
		t.Errorf("Verify of a store held open = %v, want ErrLocked", err)
	}
}
