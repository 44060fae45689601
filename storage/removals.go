package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// RemovalCount records how many members one message (or one confirmation)
// took off a space's roster: removals, deactivations and renames, the
// changes a roster wipe is made of. Their sum over a rolling window is
// what decides when such changes must be confirmed.
type RemovalCount struct {
	At        time.Time `json:"at"`
	Count     int       `json:"count"`
	MessageID string    `json:"message_id"`
}

// removalKey is space \x00 time seq: one space's records are a prefix, in
// time order, so a window is one seek and its end.
func removalKey(space string, at time.Time, seq uint64) []byte {
	k := pairKey(space, "")
	k = binary.BigEndian.AppendUint64(k, unixNano(at))
	return binary.BigEndian.AppendUint64(k, seq)
}

// unixNano is t as an unsigned key part; times before 1970 sort first.
func unixNano(t time.Time) uint64 {
	if n := t.UnixNano(); n > 0 {
		return uint64(n)
	}
	return 0
}

// removalTime reads the time part of a removal key, whose prefix is n bytes.
func removalTime(k []byte, n int) uint64 {
	if len(k) < n+16 {
		return 0
	}
	return binary.BigEndian.Uint64(k[n : n+8])
}

// RecordRemovals adds a count to a space's record.
func (t *Tx) RecordRemovals(space string, r RemovalCount) error {
	seq, err := t.bucket(bucketRemovals).NextSequence()
	if err != nil {
		return fmt.Errorf("next sequence in %s: %w", bucketRemovals, err)
	}
	return t.put(bucketRemovals, removalKey(space, r.At, seq), r)
}

// RemovalsSince sums the counts recorded for a space after since.
func (t *Tx) RemovalsSince(space string, since time.Time) (int, error) {
	prefix := pairKey(space, "")
	after := unixNano(since)
	n := 0
	c := t.bucket(bucketRemovals).Cursor()
	for k, v := c.Seek(removalKey(space, since, 0)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if removalTime(k, len(prefix)) <= after {
			continue
		}
		var r RemovalCount
		if err := decode(bucketRemovals, k, v, &r); err != nil {
			return 0, err
		}
		n += r.Count
	}
	return n, nil
}

// PruneRemovals deletes the records of a space (of every space when space
// is "") made at or before the given time, which no window counts any
// more, and reports how many.
func (t *Tx) PruneRemovals(space string, before time.Time) (int, error) {
	limit := unixNano(before)
	var old [][]byte
	c := t.bucket(bucketRemovals).Cursor()
	if space != "" {
		prefix := pairKey(space, "")
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && removalTime(k, len(prefix)) <= limit; k, _ = c.Next() {
			old = append(old, append([]byte(nil), k...))
		}
	} else {
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if i := bytes.IndexByte(k, 0); i >= 0 && removalTime(k, i+1) <= limit {
				old = append(old, append([]byte(nil), k...))
			}
		}
	}
	for _, k := range old {
		if err := t.bucket(bucketRemovals).Delete(k); err != nil {
			return 0, fmt.Errorf("prune %s: %w", bucketRemovals, err)
		}
	}
	return len(old), nil
}
