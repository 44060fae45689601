package storage

import (
	"encoding/binary"
	"io"
)

// HashSpaces writes every space record, as stored, to h: a hash of it
// changes when a space is added, changed or removed, and only then. The
// public directory keys its sorted copy of the spaces on it, so that the
// store's other writes (every message handled) do not make it decode them
// all again; hashing the raw records costs a small part of decoding them.
func (t *Tx) HashSpaces(h io.Writer) error {
	return t.bucket(bucketSpaces).ForEach(func(k, v []byte) error {
		// Lengths first, so that no two sets of records write the
		// same bytes.
		var n [16]byte
		binary.BigEndian.PutUint64(n[:8], uint64(len(k)))
		binary.BigEndian.PutUint64(n[8:], uint64(len(v)))
		for _, b := range [][]byte{n[:], k, v} {
			if _, err := h.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}
