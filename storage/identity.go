package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A store knows itself. Its meta bucket holds, beside the schema version,
// an identity written when the store is created: the program, a random
// store id and the creation time. Its generation is bbolt's transaction id,
// which bbolt keeps in its header pages and raises at every commit, and
// which a backup (Tx.WriteTo) carries over: so no extra write per commit
// inside the store is needed to tell an older copy from the live file.
//
// What the live file was is kept beside it, in <path>.stamp: the store id
// and the last generation committed through this package, rewritten
// (without fsync: it only ever lags) after each commit. At open, a store
// with another id, or with a generation below the stamp's, is refused
// (ErrReplaced): a backup or an older copy was put in place of the live
// store, and running on it would forget every message handled since, and
// answer them again. `mailbot restore` rewrites the stamp (Restamp), so a
// deliberate restore passes. A missing stamp is accepted (a store from an
// older version, or moved without it) and written.

// program names this program in the identity record.
const program = "coworkingvisa-mailbot"

// Identity is the record a store keeps of itself.
type Identity struct {
	Program string    `json:"program"`
	ID      string    `json:"id"`      // random, 32 hex digits
	Created time.Time `json:"created"` // when written: the creation, or for a store older than the record, its first open by a version that writes it
}

var keyIdentity = []byte("identity")

func newIdentity(now time.Time) (Identity, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Identity{}, fmt.Errorf("store id: %w", err)
	}
	return Identity{Program: program, ID: hex.EncodeToString(b[:]), Created: now.UTC().Round(time.Second)}, nil
}

// Identity returns the store's identity record.
func (db *DB) Identity() Identity { return db.id }

// Generation is the number of the last committed transaction: it grows
// with every change, and a copy keeps the number it had when taken.
func (t *Tx) Generation() uint64 { return generation(t.tx) }

// keyGenerationBase in the meta bucket is added to bbolt's transaction id
// to make the generation. A compacted store (Compact) is a new bbolt file
// whose transaction ids start again from 1: its base is the generation it
// was compacted at, so that the generation still only grows, and an older
// copy is still told from the live file.
var keyGenerationBase = []byte("generation_base")

// generation is the store's generation as of tx: its base plus bbolt's
// transaction id.
func generation(tx *bolt.Tx) uint64 {
	var base uint64
	if meta := tx.Bucket(bucketMeta); meta != nil {
		base = btoi(meta.Get(keyGenerationBase))
	}
	return base + uint64(tx.ID())
}

// StampPath is the file beside the store that records what the live store
// was.
func StampPath(storePath string) string { return storePath + ".stamp" }

// stampRecord is the stamp's content.
type stampRecord struct {
	ID         string
	Generation uint64
}

// The stamp is one line of fixed length, rewritten in place with one write:
// "mailbot-store <id> <generation, 20 digits>\n".
const stampPrefix = "mailbot-store "

func (s stampRecord) line() []byte {
	return fmt.Appendf(nil, "%s%s %020d\n", stampPrefix, s.ID, s.Generation)
}

// readStamp reads the stamp beside storePath; ok is false when there is
// none or it cannot be read (a stamp is advisory: without one nothing is
// refused).
func readStamp(storePath string) (stampRecord, bool) {
	data, err := os.ReadFile(StampPath(storePath))
	if err != nil {
		return stampRecord{}, false
	}
	f := strings.Fields(strings.TrimPrefix(string(data), stampPrefix))
	if !strings.HasPrefix(string(data), stampPrefix) || len(f) != 2 {
		return stampRecord{}, false
	}
	gen, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return stampRecord{}, false
	}
	return stampRecord{ID: f[0], Generation: gen}, true
}

// CheckStamp says whether the daemon would run on the store at storePath,
// whose identity and generation are id and gen (read with Verify or
// Describe): nil, or an ErrReplaced StoreError when it is not the store the
// stamp beside it recorded: another store, an older generation of it, or
// a copy made before the store had an identity (a zero id).
func CheckStamp(storePath string, id Identity, gen uint64) error {
	st, ok := readStamp(storePath)
	if !ok {
		return nil
	}
	switch {
	case id.ID == "":
		return &StoreError{Path: storePath, Kind: ErrReplaced, Detail: fmt.Sprintf(
			"it has no identity record, but %s records store %s: an older copy, made before this version, was put in place of the live file",
			StampPath(storePath), st.ID)}
	case st.ID != id.ID:
		return &StoreError{Path: storePath, Kind: ErrReplaced, Detail: fmt.Sprintf(
			"it is store %s, created %s, but %s records store %s: another store was copied over it",
			id.ID, id.Created.Format(time.DateTime), StampPath(storePath), st.ID)}
	case gen < st.Generation:
		return &StoreError{Path: storePath, Kind: ErrReplaced, Detail: fmt.Sprintf(
			"it is an older copy of this store (generation %d, but %d was committed here, says %s): a backup or copy was put in place of the live file",
			gen, st.Generation, StampPath(storePath))}
	}
	return nil
}

// stamp keeps the stamp file of an open store current.
type stamp struct {
	mu   sync.Mutex
	f    *os.File // nil when the stamp cannot be written
	id   string
	last uint64
}

func openStamp(storePath, id string) *stamp {
	f, err := os.OpenFile(StampPath(storePath), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		f = nil // read-only directory: the check stays as lenient as without a stamp
	} else {
		ownLikeStore(f, storePath)
	}
	return &stamp{f: f, id: id}
}

// record writes a committed generation. The write is one pwrite of a fixed
// length line at offset 0 and is not synced: after a crash the stamp may lag
// the store, which makes the check more lenient, never wrong.
func (s *stamp) record(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil || gen <= s.last {
		return
	}
	if _, err := s.f.WriteAt(stampRecord{ID: s.id, Generation: gen}.line(), 0); err == nil {
		s.last = gen
	}
}

func (s *stamp) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// Restamp records the store now at storePath as the one expected there,
// whatever the stamp said: `mailbot restore` calls it once it put a backup
// in place, so that the daemon accepts its older generation. It opens the
// store (bringing its schema up to date) and returns its identity and
// generation.
func Restamp(storePath string) (Identity, uint64, error) {
	if err := os.Remove(StampPath(storePath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Identity{}, 0, fmt.Errorf("restamp: %w", err)
	}
	db, err := Open(storePath)
	if err != nil {
		return Identity{}, 0, err
	}
	var gen uint64
	db.View(func(tx *Tx) error { gen = tx.Generation(); return nil })
	return db.Identity(), gen, db.Close()
}

// readIdentity reads the meta records: ours is false when the file has no
// meta bucket or no schema version, i.e. it is not a mailbot store; found
// is false for a mailbot store older than the identity record.
func readIdentity(tx *bolt.Tx) (id Identity, schema uint64, ours, found bool, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || meta.Get([]byte("schema")) == nil {
		return id, 0, false, false, nil
	}
	schema = btoi(meta.Get([]byte("schema")))
	data := meta.Get(keyIdentity)
	if data == nil {
		return id, schema, true, false, nil
	}
	if err := decode(bucketMeta, keyIdentity, data, &id); err != nil {
		return id, schema, true, false, err
	}
	return id, schema, true, true, nil
}
