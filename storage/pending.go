package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// A pending change that applies a file (a roster to import) keeps it in
// bucketPendingFiles under its SHA-256, as raw bytes: once however many
// pending changes apply the same file, and not inflated by base64 inside
// their JSON. bucketPendingFileRefs records which pending changes use a
// file; the file goes with the last of them.

// PutPendingWithFile stores a change waiting for confirmation together
// with the file its confirmation applies (read back with PendingFile).
func (t *Tx) PutPendingWithFile(p Pending, file []byte) error {
	sum := sha256.Sum256(file)
	p.File = hex.EncodeToString(sum[:])
	files := t.bucket(bucketPendingFiles)
	if files.Get([]byte(p.File)) == nil {
		if err := files.Put([]byte(p.File), file); err != nil {
			return fmt.Errorf("write pending file %s: %w", p.File, err)
		}
	}
	if err := t.bucket(bucketPendingFileRefs).Put(pairKey(p.File, p.Token), nil); err != nil {
		return fmt.Errorf("write pending file reference %s: %w", p.Token, err)
	}
	return t.PutPending(p)
}

// PendingFile returns a copy of the file a pending change applies, and
// whether it has one that is still stored.
func (t *Tx) PendingFile(p Pending) ([]byte, bool) {
	if p.File == "" {
		return nil, false
	}
	data := t.bucket(bucketPendingFiles).Get([]byte(p.File))
	if data == nil {
		return nil, false
	}
	return append([]byte(nil), data...), true
}

// releaseFile drops p's reference to its file, and the file with the last
// reference.
func (t *Tx) releaseFile(p Pending) error {
	if p.File == "" {
		return nil
	}
	refs := t.bucket(bucketPendingFileRefs)
	if err := refs.Delete(pairKey(p.File, p.Token)); err != nil {
		return fmt.Errorf("delete pending file reference %s: %w", p.Token, err)
	}
	prefix := pairKey(p.File, "")
	if k, _ := refs.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
		return nil
	}
	if err := t.bucket(bucketPendingFiles).Delete([]byte(p.File)); err != nil {
		return fmt.Errorf("delete pending file %s: %w", p.File, err)
	}
	return nil
}

// ReleaseExpiredPendingFiles lets go of the files of pending changes that
// expired at or before now: an expired change is kept a while only to be
// answered "expired", which needs no file. It reports how many it released.
func (t *Tx) ReleaseExpiredPendingFiles(now time.Time) (int, error) {
	var expired []Pending
	err := t.bucket(bucketPending).ForEach(func(k, v []byte) error {
		var p Pending
		if err := decode(bucketPending, k, v, &p); err != nil {
			return err
		}
		if p.File != "" && !now.Before(p.Expires) {
			expired = append(expired, p)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, p := range expired {
		if err := t.releaseFile(p); err != nil {
			return 0, err
		}
		p.File = ""
		if err := t.PutPending(p); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}

// PendingOf lists the pending changes given to actor, expired ones
// included, the one expiring first first.
func (t *Tx) PendingOf(actor string) ([]Pending, error) {
	var out []Pending
	err := t.bucket(bucketPending).ForEach(func(k, v []byte) error {
		var p Pending
		if err := decode(bucketPending, k, v, &p); err != nil {
			return err
		}
		if p.Actor == actor {
			out = append(out, p)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out, err
}

// PendingFileStats counts the files pending changes keep, and their bytes.
func (t *Tx) PendingFileStats() (files int, size int64) {
	t.bucket(bucketPendingFiles).ForEach(func(_, v []byte) error {
		files++
		size += int64(len(v))
		return nil
	})
	return files, size
}
