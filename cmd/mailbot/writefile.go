package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// writeFileAtomic is how the CLI writes every file it writes (backups,
// exports): write fills a new temporary file beside path, which is synced
// and renamed over path, so that path is either the old file or the whole
// new one. The temporary has a random name and is created with
// O_CREATE|O_EXCL|O_NOFOLLOW, mode 0600 (rosters are personal data): a
// file or symlink planted in the directory is never opened, let alone
// followed, and a symlink at path itself is replaced, not written through.
func writeFileAtomic(path string, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := createTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return n, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable; not all systems allow it
		d.Close()
	}
	return n, nil
}

// createTemp creates a new file named prefix and random letters in dir,
// exclusively and without following a symlink.
func createTemp(dir, prefix string) (*os.File, error) {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		name := filepath.Join(dir, prefix+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, flags, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // taken (by chance, or planted): draw another name
		}
		return f, err
	}
	return nil, fmt.Errorf("no free temporary file name in %s", dir)
}
