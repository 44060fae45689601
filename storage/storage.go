// Package storage keeps the bot's state in one bbolt file: spaces, managers,
// members, the audit trail, verifications, the handled-message record and the
// outbox of replies waiting to be sent.
//
// Everything one email causes is written in a single read-write transaction
// (see DB.Update), so a message's changes, its audit records, its reply and
// the mark that it was handled commit together or not at all. That is what
// makes "exactly once" hold when the process is killed at any line.
//
// Values are JSON: easy to inspect with bbolt's own tools and to migrate.
// Keys are built so that bbolt's byte order gives useful scans (members of a
// space sorted by address, audit records in time order).
package storage

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this code reads and writes. Open refuses a
// file written by a newer version rather than guessing at it.
const SchemaVersion = 1

// Bucket names. Each holds one kind of record; the comment says the key.
var (
	bucketMeta          = []byte("meta")          // "schema" -> version
	bucketSpaces        = []byte("spaces")        // space id -> Space
	bucketManagers      = []byte("managers")      // email \x00 space -> Manager
	bucketManagerSpaces = []byte("manager_index") // space \x00 email -> nil
	bucketMembers       = []byte("members")       // space \x00 email -> Member
	bucketMemberIndex   = []byte("member_index")  // email \x00 space -> nil, for verify
	bucketAudit         = []byte("audit")         // seq -> Change
	bucketAuditMember   = []byte("audit_member")  // space \x00 email \x00 seq -> nil, for history
	bucketVerifications = []byte("verifications") // seq -> Verification
	bucketHandled       = []byte("handled")       // message key -> HandledMessage
	bucketHandledAt     = []byte("handled_at")    // at (8 bytes, unix ns) message key -> nil, for pruning
	bucketOutbox        = []byte("outbox")        // seq -> OutboxItem
	bucketOutboxRaw     = []byte("outbox_raw")    // seq -> the message bytes
	bucketRates         = []byte("rates")         // sender -> RateWindow
	bucketPending       = []byte("pending")       // token -> Pending (confirmations)
	bucketPeriods       = []byte("periods")       // name -> last period done (digests)
	// The file a pending change applies (a roster to import), stored once
	// however many pending changes apply it, as raw bytes.
	bucketPendingFiles    = []byte("pending_files")     // SHA-256 hex -> the file's bytes
	bucketPendingFileRefs = []byte("pending_file_refs") // SHA-256 hex \x00 token -> nil: who applies the file
	// What took members off a space's roster (removals, deactivations,
	// renames), for the rolling day of confirmations; pruned as it ages.
	bucketRemovals = []byte("removals") // space \x00 time (8 bytes, Unix ns) seq (8 bytes) -> RemovalCount
	// The refresh tokens of the bot's own OAuth2 logins (auth: oauth2),
	// one per client and account (see OAuthKey).
	bucketOAuth = []byte("oauth2") // client id \x00 account (lowercase) -> OAuthToken
	// The visa exchange (visa.go): members' announced visits, the free
	// days each visitor used at each host, and when each space's roster
	// was last confirmed or changed.
	bucketVisits      = []byte("visits")       // token -> Visit
	bucketVisaDays    = []byte("visa_days")    // host \x00 visitor \x00 YYYY-MM-DD -> DayUse
	bucketRosterState = []byte("roster_state") // space id -> RosterState

	allBuckets = [][]byte{bucketMeta, bucketSpaces, bucketManagers, bucketManagerSpaces,
		bucketMembers, bucketMemberIndex, bucketAudit, bucketAuditMember, bucketVerifications, bucketHandled,
		bucketOutbox, bucketOutboxRaw, bucketRates, bucketPending, bucketPeriods, bucketHandledAt,
		bucketPendingFiles, bucketPendingFileRefs, bucketRemovals, bucketOAuth,
		bucketVisits, bucketVisaDays, bucketRosterState}
)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("store is in use by another process (is the daemon running?)")

// DB is an open store.
type DB struct {
	// mu is held shared by every transaction and exclusively by Compact,
	// which replaces bolt with a compacted copy of the file.
	mu    sync.RWMutex
	bolt  *bolt.DB
	path  string
	id    Identity
	stamp *stamp // nil only while create makes the store
	pkey  []byte // the key of pseudonyms (see Pseudonym)
}

// Open opens the store at path, or creates it when there is no file there,
// and brings its schema up to date. A file that is there is never replaced:
// one that is empty, truncated, damaged, not a mailbot store, or not the
// store last used at path (see Identity) is refused with a *StoreError.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if st, ok := readStamp(path); ok {
			return nil, &StoreError{Path: path, Kind: ErrMissing, Detail: fmt.Sprintf(
				"%s records store %s at generation %d; put it back or restore a backup, or remove %s to start a new, empty store",
				StampPath(path), st.ID, st.Generation, StampPath(path))}
		}
		if err := create(path); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, &StoreError{Path: path, Kind: ErrForeign, Detail: "not a regular file"}
	}
	if _, err := inspectFile(path, true); err != nil {
		return nil, err
	}
	b, err := openBolt(path, false)
	if err == nil {
		removeCompactLeftovers(path) // the file is ours now: no compaction runs
	}
	if err != nil {
		return nil, err
	}
	db := &DB{bolt: b, path: path}
	if err := db.start(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// boltOptions are the options every open uses. NoFreelistSync: the
// free-page list is rebuilt on open instead of written at every commit,
// which on a store of a million members cut a commit from 5 ms to 2 ms (see
// BENCHMARKS.md). Crash safety is the same. The file is never created here
// (create makes new stores): bbolt would turn any empty file into a store.
func boltOptions(readOnly bool, openFile func(string, int, os.FileMode) (*os.File, error)) *bolt.Options {
	if openFile == nil {
		openFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
			return os.OpenFile(name, flag&^os.O_CREATE, perm)
		}
	}
	return &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly, FreelistType: bolt.FreelistMapType,
		NoFreelistSync: true, OpenFile: openFile}
}

// openBolt opens a file that inspect passed. bbolt's own refusals, and a
// panic of its open (it rebuilds the free list by walking the tree and
// panics on what it finds wrong), are reported as a damaged store.
func openBolt(path string, readOnly bool) (b *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, &StoreError{Path: path, Kind: ErrDamaged, Detail: fmt.Sprintf("bbolt: %v", p)}
		}
	}()
	b, err = bolt.Open(path, 0o600, boltOptions(readOnly, nil))
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, &StoreError{Path: path, Kind: ErrDamaged, Detail: fmt.Sprintf("bbolt: %v", err)}
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return b, nil
}

// start checks that an opened file is this program's store, and the one
// last used at its path, then migrates it and starts its stamp.
func (db *DB) start() error {
	var gen, schema uint64
	var ours bool
	err := db.bolt.View(func(tx *bolt.Tx) (err error) {
		gen = generation(tx)
		db.id, schema, ours, _, err = readIdentity(tx)
		return err
	})
	switch {
	case err != nil:
		return &StoreError{Path: db.path, Kind: ErrDamaged, Detail: err.Error()}
	case !ours:
		return &StoreError{Path: db.path, Kind: ErrForeign, Detail: "a bbolt database without the mailbot's meta record (another program's file?)"}
	case schema > SchemaVersion:
		return fmt.Errorf("open store %s: schema version %d is newer than this program's %d", db.path, schema, SchemaVersion)
	default:
		// A store older than the identity record has none yet: only a
		// copy made before the upgrade can meet a stamp.
		err = CheckStamp(db.path, db.id, gen)
	}
	if err != nil {
		return err
	}
	if err := db.migrate(); err != nil {
		return fmt.Errorf("open store %s: %w", db.path, err)
	}
	db.stamp = openStamp(db.path, db.id.ID)
	return db.bolt.View(func(tx *bolt.Tx) error {
		db.pkey = append([]byte(nil), tx.Bucket(bucketMeta).Get(keyPseudonym)...)
		db.stamp.record(generation(tx))
		return nil
	})
}

// create makes a new store at path, complete with its meta records, under
// a temporary name first: a process killed while creating it leaves no
// half-made file at path for the next start to refuse. A file that
// appeared at path meanwhile is kept, and opened instead.
func create(path string) error {
	dir := filepath.Dir(path)
	var r [8]byte
	rand.Read(r[:])
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".new-"+hex.EncodeToString(r[:]))
	b, err := bolt.Open(tmp, 0o600, boltOptions(false, func(name string, flag int, perm os.FileMode) (*os.File, error) {
		return os.OpenFile(name, flag|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	}))
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	defer os.Remove(tmp)
	err = (&DB{bolt: b, path: tmp}).migrate()
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
			err = os.Rename(tmp, path) // a file system without hard links
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new name durable
		d.Close()
	}
	return nil
}

// migrate creates missing buckets, checks the schema version and writes
// the identity record where there is none. Buckets
// added within schema version 1 are indexes, filled from the records they
// index when they are created, or start empty where older code kept no
// such records (pending files: older pending changes hold theirs inline),
// so an older file reads the same as a new one.
func (db *DB) migrate() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		auditIndexed := tx.Bucket(bucketAuditMember) != nil
		handledIndexed := tx.Bucket(bucketHandledAt) != nil
		rosterKnown := tx.Bucket(bucketRosterState) != nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if !auditIndexed {
			if err := (&Tx{tx: tx}).reindexAudit(); err != nil {
				return err
			}
		}
		if !handledIndexed {
			if err := (&Tx{tx: tx}).reindexHandled(); err != nil {
				return err
			}
		}
		if !rosterKnown {
			if err := (&Tx{tx: tx}).fillRosterState(); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := ensurePseudonymKey(meta); err != nil {
			return err
		}
		if meta.Get(keyIdentity) == nil {
			id, err := newIdentity(time.Now())
			if err != nil {
				return err
			}
			data, err := json.Marshal(id)
			if err != nil {
				return err
			}
			if err := meta.Put(keyIdentity, data); err != nil {
				return fmt.Errorf("write identity: %w", err)
			}
			db.id = id
		}
		v := meta.Get([]byte("schema"))
		switch {
		case v == nil:
			return meta.Put([]byte("schema"), itob(SchemaVersion))
		case btoi(v) > SchemaVersion:
			return fmt.Errorf("schema version %d is newer than this program's %d", btoi(v), SchemaVersion)
		}
		return nil
	})
}

// ErrClosed is returned by the methods of a DB that was closed.
var ErrClosed = bolt.ErrDatabaseNotOpen

// Probe writes a small record and commits it: whether the store can be
// written now (a full disk, a read-only file system fail it).
func (db *DB) Probe(now time.Time) error {
	return db.Update(func(tx *Tx) error {
		return tx.bucket(bucketMeta).Put([]byte("probe"), []byte(now.UTC().Format(time.RFC3339Nano)))
	})
}

// Close closes the file.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.stamp != nil {
		db.stamp.close()
	}
	return db.bolt.Close()
}

// Update runs fn in one read-write transaction, committed (fsynced) only if
// fn returns nil. Nothing fn wrote is kept when it returns an error. Once
// committed, its generation goes to the stamp.
func (db *DB) Update(fn func(*Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var gen uint64
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		gen = generation(tx)
		return fn(&Tx{tx: tx})
	})
	if err == nil && db.stamp != nil {
		db.stamp.record(gen)
	}
	return err
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Backup writes a consistent copy of the whole store to w while other
// transactions go on.
func (db *DB) Backup(w io.Writer) (int64, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// Tx is one transaction. Its methods are the only way records are read and
// written, so the key layouts stay in this package.
type Tx struct {
	tx *bolt.Tx
}

func (t *Tx) bucket(name []byte) *bolt.Bucket { return t.tx.Bucket(name) }

// get decodes the JSON value at key into v; it reports whether it was there.
func (t *Tx) get(bucket, key []byte, v any) (bool, error) {
	data := t.bucket(bucket).Get(key)
	if data == nil {
		return false, nil
	}
	return true, decode(bucket, key, data, v)
}

// decode unmarshals a stored JSON value, naming where it came from on error.
func decode(bucket, key, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s/%q: %w", bucket, key, err)
	}
	return nil
}

// put stores v as JSON at key.
func (t *Tx) put(bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%q: %w", bucket, key, err)
	}
	if err := t.bucket(bucket).Put(key, data); err != nil {
		return fmt.Errorf("write %s/%q: %w", bucket, key, err)
	}
	return nil
}

// appendSeq stores v under the bucket's next sequence number and returns it.
func (t *Tx) appendSeq(bucket []byte, v any, setSeq func(uint64)) (uint64, error) {
	b := t.bucket(bucket)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("next sequence in %s: %w", bucket, err)
	}
	setSeq(seq)
	return seq, t.put(bucket, itob(seq), v)
}

// pairKey joins two key parts with a NUL, which no address or id contains.
func pairKey(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

// splitPair is the inverse of pairKey.
func splitPair(k []byte) (string, string) {
	for i, c := range k {
		if c == 0 {
			return string(k[:i]), string(k[i+1:])
		}
	}
	return string(k), ""
}

func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func btoi(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
