package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Report is what Verify found in a store file.
type Report struct {
	Path       string
	Size       int64
	PageSize   int
	Generation uint64
	Schema     uint64
	Identity   Identity // zero for a store older than the identity record
	Counts     []Count  // records per kind, for the operator
	// Problems are what makes the file unfit to run on; Notes are worth
	// knowing but harmless (the daemon fixes them when it opens the file).
	Problems []string
	Notes    []string
	// Omitted counts the problems beyond maxProblems, not listed.
	Omitted int
}

// Count is the number of records of one kind.
type Count struct {
	Name string
	N    int
}

// Clean reports whether no problem was found.
func (r *Report) Clean() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// maxProblems bounds the problems listed: a broken index can produce one
// per record.
const maxProblems = 50

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) >= maxProblems {
		r.Omitted++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Verify checks the store file at path without changing it: its structure
// (as Open does before bbolt reads it), bbolt's own consistency check
// (Tx.Check: every page reachable once, the free list, key order), the
// meta records, and the invariants between records and their indexes. It
// works on the live store only when no process holds it (ErrLocked
// otherwise: check a copy then), and on any backup or copy. The error is
// for a file that could not be read at all; what is wrong with it is in
// the report.
func Verify(path string) (*Report, error) {
	r := &Report{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("check store: %w", err)
	}
	r.Size = fi.Size()
	if !fi.Mode().IsRegular() {
		r.problem("%v", &StoreError{Path: path, Kind: ErrForeign, Detail: "not a regular file"})
		return r, nil
	}
	h, err := inspectFile(path, false)
	var se *StoreError
	if errors.As(err, &se) {
		r.problem("%v", se)
		return r, nil
	} else if err != nil {
		return nil, err
	}
	r.PageSize, r.Generation = h.pageSize, h.txid
	b, err := openBolt(path, true)
	if errors.As(err, &se) {
		r.problem("%v", se)
		return r, nil
	} else if err != nil {
		return nil, err
	}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		r.Generation = generation(tx)
		checkBolt(tx, r)
		checkRecords(tx, r)
		return nil
	})
	return r, err
}

// checkBolt runs bbolt's consistency check. Check recovers its own panics
// into errors; inspect made sure it cannot read outside the file.
func checkBolt(tx *bolt.Tx, r *Report) {
	for err := range tx.Check() {
		r.problem("bbolt: %v", err)
	}
}

// checkRecords checks the meta records and the project's invariants.
func checkRecords(tx *bolt.Tx, r *Report) {
	id, schema, ours, found, err := readIdentity(tx)
	switch {
	case !ours:
		r.problem("%v", &StoreError{Path: r.Path, Kind: ErrForeign, Detail: "no meta record with a schema version (another program's bbolt file?)"})
		return
	case err != nil:
		r.problem("meta: the identity record cannot be read: %v", err)
	case !found:
		r.Notes = append(r.Notes, "meta: no identity record (a store from an older version); the daemon writes one when it opens it")
	case id.Program != program || id.ID == "":
		r.problem("meta: the identity record names program %q and store %q", id.Program, id.ID)
	}
	r.Identity, r.Schema = id, schema
	if schema > SchemaVersion {
		r.problem("meta: schema version %d is newer than this program's %d", schema, SchemaVersion)
	}
	var missing [][]byte
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("buckets %q are missing (a store from an older version); the daemon creates and fills them when it opens it", missing))
	}
	c := checker{tx: tx, r: r}
	c.pairs("members", bucketMembers, bucketMemberIndex, "member_index")
	c.pairs("managers", bucketManagers, bucketManagerSpaces, "manager_index")
	c.audit()
	c.handled()
	c.pending()
	c.outbox()
	for _, k := range []struct {
		name   string
		bucket []byte
	}{{"spaces", bucketSpaces}, {"managers", bucketManagers}, {"members", bucketMembers}, {"audit records", bucketAudit},
		{"verifications", bucketVerifications}, {"handled messages", bucketHandled}, {"outbox messages", bucketOutbox},
		{"pending confirmations", bucketPending}, {"pending files", bucketPendingFiles},
		{"visits", bucketVisits}, {"used visa days", bucketVisaDays}} {
		if b := tx.Bucket(k.bucket); b != nil {
			r.Counts = append(r.Counts, Count{k.name, b.Stats().KeyN})
		}
	}
}

// checker checks the invariants of one transaction's records.
type checker struct {
	tx *bolt.Tx
	r  *Report
}

// buckets returns the named buckets, or nil when one is missing (noted
// already: the check of that pair is skipped).
func (c *checker) buckets(names ...[]byte) []*bolt.Bucket {
	out := make([]*bolt.Bucket, len(names))
	for i, n := range names {
		if out[i] = c.tx.Bucket(n); out[i] == nil {
			return nil
		}
	}
	return out
}

// pairs checks a bucket keyed a \x00 b (members: space, email; managers:
// email, space) against its index keyed b \x00 a, both ways, and that each
// record decodes and names the key it is stored under.
func (c *checker) pairs(what string, records, index []byte, indexName string) {
	bs := c.buckets(records, index)
	if bs == nil {
		return
	}
	bs[0].ForEach(func(k, v []byte) error {
		a, b := splitPair(k)
		if bs[1].Get(pairKey(b, a)) == nil {
			c.r.problem("%s: %q has no %s entry", what, k, indexName)
		}
		var rec struct{ Space, Email string }
		if err := decode(records, k, v, &rec); err != nil {
			c.r.problem("%s: %v", what, err)
		} else if what == "members" && (rec.Space != a || rec.Email != b) || what == "managers" && (rec.Email != a || rec.Space != b) {
			c.r.problem("%s: the record stored under %q is of %s in %s", what, k, rec.Email, rec.Space)
		}
		return nil
	})
	bs[1].ForEach(func(k, _ []byte) error {
		b, a := splitPair(k)
		if bs[0].Get(pairKey(a, b)) == nil {
			c.r.problem("%s: %q points to no record", indexName, k)
		}
		return nil
	})
}

// audit checks that each member change is indexed under its space and
// address (and its new address for a rename), and that each index entry
// names a record about that member.
func (c *checker) audit() {
	bs := c.buckets(bucketAudit, bucketAuditMember)
	if bs == nil {
		return
	}
	bs[0].ForEach(func(k, v []byte) error {
		var ch Change
		if err := decode(bucketAudit, k, v, &ch); err != nil {
			c.r.problem("audit: %v", err)
			return nil
		}
		if ch.Seq != btoi(k) {
			c.r.problem("audit: record %d says it is %d", btoi(k), ch.Seq)
		}
		if ch.Kind != "member" || ch.Space == "" {
			return nil
		}
		for _, key := range []string{ch.Key, renamedTo(ch)} {
			if key != "" && bs[1].Get(historyKey(ch.Space, key, ch.Seq)) == nil {
				c.r.problem("audit: record %d (%s in %s) has no audit_member entry", ch.Seq, key, ch.Space)
			}
		}
		return nil
	})
	bs[1].ForEach(func(k, _ []byte) error {
		space, rest := splitPair(k)
		email, seqb := splitPair([]byte(rest))
		if len(seqb) != 8 {
			c.r.problem("audit_member: malformed key %q", k)
			return nil
		}
		seq := btoi([]byte(seqb))
		data := bs[0].Get(itob(seq))
		if data == nil {
			c.r.problem("audit_member: %s in %s points to audit record %d, which does not exist", email, space, seq)
			return nil
		}
		var ch Change
		if decode(bucketAudit, itob(seq), data, &ch) == nil && (ch.Space != space || (ch.Key != email && renamedTo(ch) != email)) {
			c.r.problem("audit_member: %s in %s points to audit record %d, which is about %s in %s", email, space, seq, ch.Key, ch.Space)
		}
		return nil
	})
}

// handled checks that each exactly-once record is indexed at its time, and
// that each index entry names a record. An entry older than its record's
// time is allowed: the message was handled again, PruneHandled drops it.
func (c *checker) handled() {
	bs := c.buckets(bucketHandled, bucketHandledAt)
	if bs == nil {
		return
	}
	bs[0].ForEach(func(k, v []byte) error {
		var h HandledMessage
		if err := decode(bucketHandled, k, v, &h); err != nil {
			c.r.problem("handled: %v", err)
		} else if bs[1].Get(handledAtKey(string(k), h.At)) == nil {
			c.r.problem("handled: %q has no handled_at entry", k)
		}
		return nil
	})
	bs[1].ForEach(func(k, _ []byte) error {
		if len(k) < 8 {
			c.r.problem("handled_at: malformed key %q", k)
		} else if bs[0].Get(k[8:]) == nil {
			c.r.problem("handled_at: %q points to no handled record", k[8:])
		}
		return nil
	})
}

// pending checks that a pending change's file is stored and referenced by
// it, that each reference names a pending change of that file, and that
// no file is kept without a reference.
func (c *checker) pending() {
	bs := c.buckets(bucketPending, bucketPendingFileRefs, bucketPendingFiles)
	if bs == nil {
		return
	}
	bs[0].ForEach(func(k, v []byte) error {
		var p Pending
		if err := decode(bucketPending, k, v, &p); err != nil {
			c.r.problem("pending: %v", err)
			return nil
		}
		if p.File == "" {
			return nil
		}
		if bs[1].Get(pairKey(p.File, string(k))) == nil {
			c.r.problem("pending: %s has no pending_file_refs entry for its file %s", k, p.File)
		}
		if bs[2].Get([]byte(p.File)) == nil {
			c.r.problem("pending: the file %s of %s is not stored", p.File, k)
		}
		return nil
	})
	bs[1].ForEach(func(k, _ []byte) error {
		file, token := splitPair(k)
		var p Pending
		if found, err := (&Tx{tx: c.tx}).get(bucketPending, []byte(token), &p); err == nil && (!found || p.File != file) {
			c.r.problem("pending_file_refs: %s names %s, which does not apply that file", file, token)
		}
		if bs[2].Get([]byte(file)) == nil {
			c.r.problem("pending_file_refs: the file %s of %s is not stored", file, token)
		}
		return nil
	})
	bs[2].ForEach(func(k, _ []byte) error {
		prefix := pairKey(string(k), "")
		if ref, _ := bs[1].Cursor().Seek(prefix); ref == nil || !bytes.HasPrefix(ref, prefix) {
			c.r.problem("pending_files: %s is kept but no pending change applies it", k)
		}
		return nil
	})
}

// outbox checks that each queued message has its bytes, and each stored
// body its queue entry.
func (c *checker) outbox() {
	bs := c.buckets(bucketOutbox, bucketOutboxRaw)
	if bs == nil {
		return
	}
	bs[0].ForEach(func(k, v []byte) error {
		var it OutboxItem
		if err := decode(bucketOutbox, k, v, &it); err != nil {
			c.r.problem("outbox: %v", err)
		} else if bs[1].Get(k) == nil {
			c.r.problem("outbox: message %d has no bytes in outbox_raw", btoi(k))
		}
		return nil
	})
	bs[1].ForEach(func(k, _ []byte) error {
		if bs[0].Get(k) == nil {
			c.r.problem("outbox_raw: message %d is not in the outbox", btoi(k))
		}
		return nil
	})
}
