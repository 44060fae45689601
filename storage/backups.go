package storage

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The backups made of a store are logged beside it, in <path>.backups (one
// JSON object a line), so that when the store cannot be opened the daemon
// can name the last good one to restore.

// BackupRecord is one backup written of the store.
type BackupRecord struct {
	At         time.Time `json:"at"`
	Path       string    `json:"path"` // absolute
	StoreID    string    `json:"store_id"`
	Generation uint64    `json:"generation"`
}

// BackupLogPath is the log of the backups of the store at storePath.
func BackupLogPath(storePath string) string { return storePath + ".backups" }

// RecordBackup appends rec to the backup log of the store at storePath. A
// log that root creates takes the store file's owner, so that the daemon,
// running as that user, can read it.
func RecordBackup(storePath string, rec BackupRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(BackupLogPath(storePath), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("record backup: %w", err)
	}
	ownLikeStore(f, storePath)
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record backup: %w", err)
	}
	return nil
}

// LastBackup returns the newest logged backup that is still there and
// sound as far as Open looks (its header, its length, its pages); ok is
// false when none is known.
func LastBackup(storePath string) (rec BackupRecord, ok bool) {
	f, err := os.Open(BackupLogPath(storePath))
	if err != nil {
		return rec, false
	}
	defer f.Close()
	var recs []BackupRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r BackupRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Path != "" {
			recs = append(recs, r)
		}
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if id, _, err := Describe(recs[i].Path); err == nil && (recs[i].StoreID == "" || id.ID == recs[i].StoreID) {
			return recs[i], true
		}
	}
	return rec, false
}

// ownLikeStore gives a file that root made beside the store the store
// file's owner, so that the daemon, running as that user, can use it.
func ownLikeStore(f *os.File, storePath string) {
	if os.Geteuid() != 0 {
		return
	}
	if fi, err := os.Stat(storePath); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			f.Chown(int(st.Uid), int(st.Gid))
		}
	}
}

// Describe reads the identity and generation of the store file at path
// (a backup, a copy) without changing it, after the checks Open makes of
// its structure. A store older than the identity record has a zero one.
func Describe(path string) (Identity, uint64, error) {
	if _, err := inspectFile(path, false); err != nil {
		return Identity{}, 0, err
	}
	b, err := openBolt(path, true)
	if err != nil {
		return Identity{}, 0, err
	}
	defer b.Close()
	var id Identity
	var gen uint64
	err = b.View(func(tx *bolt.Tx) error {
		var ours bool
		var err error
		gen = generation(tx)
		id, _, ours, _, err = readIdentity(tx)
		if err == nil && !ours {
			err = &StoreError{Path: path, Kind: ErrForeign, Detail: "a bbolt database without the mailbot's meta record"}
		}
		return err
	})
	if err != nil && !errors.As(err, new(*StoreError)) {
		err = &StoreError{Path: path, Kind: ErrDamaged, Detail: err.Error()}
	}
	return id, gen, err
}
