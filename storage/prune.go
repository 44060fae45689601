package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Records that serve for a while only (the exactly-once record of each
// message, reply counters) are pruned once they can no longer matter, so
// that a stream of mail, from strangers above all, does not grow the store
// for ever.

// handledAtKey is at (unix nanoseconds, big-endian) followed by the message
// key: the index scans in time order.
func handledAtKey(key string, at time.Time) []byte {
	k := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(k, uint64(max(at.UnixNano(), 0)))
	return append(k, key...)
}

func (t *Tx) indexHandled(key string, at time.Time) error {
	if err := t.bucket(bucketHandledAt).Put(handledAtKey(key, at), nil); err != nil {
		return fmt.Errorf("index handled %q: %w", key, err)
	}
	return nil
}

// reindexHandled builds the time index of the handled records; it runs
// once, when a store written before the index existed is opened.
func (t *Tx) reindexHandled() error {
	return t.bucket(bucketHandled).ForEach(func(k, v []byte) error {
		var h HandledMessage
		if err := decode(bucketHandled, k, v, &h); err != nil {
			return err
		}
		return t.indexHandled(string(k), h.At)
	})
}

// PruneHandled removes the records of messages handled before the given
// time and reports how many. The caller keeps them at least as long as a
// message is accepted at all (limits.max_message_age), so that a message
// delivered again is refused by its age or by its record.
func (t *Tx) PruneHandled(before time.Time) (int, error) {
	idx := t.bucket(bucketHandledAt)
	end := handledAtKey("", before)
	var old [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		key := k[8:]
		// A key handled again later has a newer index entry: keep it.
		var h HandledMessage
		if found, err := t.get(bucketHandled, key, &h); err != nil {
			return 0, err
		} else if found && !h.At.Before(before) {
			if err := idx.Delete(k); err != nil {
				return 0, fmt.Errorf("prune handled index: %w", err)
			}
			continue
		}
		if err := t.bucket(bucketHandled).Delete(key); err != nil {
			return 0, fmt.Errorf("prune handled %q: %w", key, err)
		}
		if err := idx.Delete(k); err != nil {
			return 0, fmt.Errorf("prune handled index: %w", err)
		}
	}
	return len(old), nil
}

// PruneRates removes reply counters whose window started before the given
// time, and reports how many.
func (t *Tx) PruneRates(before time.Time) (int, error) {
	b := t.bucket(bucketRates)
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var w RateWindow
		if err := decode(bucketRates, k, v, &w); err != nil {
			return err
		}
		if w.Start.Before(before) {
			old = append(old, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("prune rate %q: %w", k, err)
		}
	}
	return len(old), nil
}
