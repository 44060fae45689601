package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// Compaction. bbolt never shrinks its file, and a deleted record's bytes
// stay on the page that held it until that page is reused: after "forget
// me" the address could still be read from the file. Compact writes the
// live records alone into a new file (bbolt.Compact) and puts it in place
// of the old one, while the store is locked: transactions wait for it, and
// go on with the new file. The compacted store keeps its identity; its
// generation goes on from the old one's (keyGenerationBase), so the stamp
// and older copies are judged as before.

// compactChunk bounds one transaction of the copy, so that compacting a
// large store does not hold it all in memory.
const compactChunk = 32 << 20

// compactTempPrefix names the file a compaction writes, beside the store.
func compactTempPrefix(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".compact-")
}

// CompactResult is what one compaction did to the file.
type CompactResult struct {
	Before, After int64 // file sizes, bytes
}

// Compact rewrites the store into a new file holding only its live
// records, replaces the file with it, and clears a request for compaction
// (RequestCompaction). Every other transaction waits until it is done.
// Killed midway, it leaves the old file in place (and a temporary file
// that the next Open removes).
func (db *DB) Compact() (CompactResult, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	var res CompactResult
	if fi, err := os.Stat(db.path); err == nil {
		res.Before = fi.Size()
	}
	var gen uint64
	if err := db.bolt.View(func(tx *bolt.Tx) error { gen = generation(tx); return nil }); err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	var r [8]byte
	rand.Read(r[:])
	tmp := compactTempPrefix(db.path) + hex.EncodeToString(r[:])
	dst, err := bolt.Open(tmp, 0o600, boltOptions(false, func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
		if err == nil {
			ownLikeStore(f, db.path)
		}
		return f, err
	}))
	if err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	err = bolt.Compact(dst, db.bolt, compactChunk)
	if err == nil {
		err = dst.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				return errors.New("the copy has no meta bucket")
			}
			if err := meta.Delete(keyCompactAfter); err != nil {
				return err
			}
			// The copy's own transaction ids start again from 1: go on
			// from the old file's generation.
			return meta.Put(keyGenerationBase, itob(gen))
		})
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact: %w", err)
	}
	// The swap: from here the store must be open again whatever happens.
	closeErr := db.bolt.Close()
	renameErr := os.Rename(tmp, db.path)
	if renameErr != nil {
		os.Remove(tmp)
	} else if d, err := os.Open(filepath.Dir(db.path)); err == nil {
		d.Sync()
		d.Close()
	}
	b, err := openBolt(db.path, false)
	if err != nil {
		return res, fmt.Errorf("compact: reopen the store: %w", err)
	}
	db.bolt = b
	if err := errors.Join(closeErr, renameErr); err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	if fi, err := os.Stat(db.path); err == nil {
		res.After = fi.Size()
	}
	return res, db.bolt.View(func(tx *bolt.Tx) error {
		if db.stamp != nil {
			db.stamp.record(generation(tx))
		}
		return nil
	})
}

// removeCompactLeftovers removes the temporary files of compactions that
// did not finish (the process was killed midway).
func removeCompactLeftovers(path string) {
	matches, _ := filepath.Glob(compactTempPrefix(path) + "*")
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() {
			os.Remove(m)
		}
	}
}
