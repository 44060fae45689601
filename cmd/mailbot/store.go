package main

// The store's own care: check-store verifies a store (the live one, through
// the daemon when it runs, or any backup), restore puts a backup in place,
// and storeAdvice turns a store the daemon cannot open into one line that
// says what to do.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/control"
	"github.com/coworkingvisa/mailbot/storage"
)

func cmdCheckStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newOperatorFlags("check-store", "--config FILE | --store FILE", stderr)
	cfgPath := fs.String("config", "", "check the store of this configuration (through the daemon when it runs)")
	file := fs.String("store", "", "check this store file instead: a backup, a copy")
	pos, err := parseOperatorFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageError(fs, "unexpected argument %q", pos[0])
	case (*cfgPath == "") == (*file == ""):
		return usageError(fs, "name either --config FILE or --store FILE")
	}
	var r *storage.Report
	var how string
	if *file != "" {
		r, err = storage.Verify(*file)
		if errors.Is(err, storage.ErrLocked) {
			return fmt.Errorf("%s is in use (the daemon runs on it?): check it with --config, which asks the daemon for a consistent copy", *file)
		}
	} else {
		r, how, err = checkLiveStore(ctx, *cfgPath)
	}
	if err != nil {
		return err
	}
	printReport(stdout, r, how)
	if !r.Clean() {
		return errStoreNotClean
	}
	return nil
}

// errStoreNotClean ends check-store with status 1 after the report said why.
var errStoreNotClean = errors.New("problems found (listed above)")

// checkLiveStore verifies the store of the config: a copy taken through the
// daemon when it runs (bbolt lets no second process read the file), else
// the file itself, and then whether the daemon would accept it there.
func checkLiveStore(ctx context.Context, cfgPath string) (*storage.Report, string, error) {
	storePath, err := storePathFromConfig(cfgPath)
	if err != nil {
		return nil, "", err
	}
	client, err := control.Dial(storePath)
	if err == nil {
		defer client.Close()
		dir, err := os.MkdirTemp("", "mailbot-check-")
		if err != nil {
			return nil, "", err
		}
		defer os.RemoveAll(dir)
		copyPath := filepath.Join(dir, filepath.Base(storePath))
		if _, err := writeFileAtomic(copyPath, func(w io.Writer) (int64, error) { return client.Backup(ctx, w) }); err != nil {
			return nil, "", err
		}
		r, err := storage.Verify(copyPath)
		if r != nil {
			r.Path = storePath
		}
		return r, " (a consistent copy taken through the running daemon)", err
	} else if !errors.Is(err, control.ErrNoDaemon) {
		return nil, "", err
	}
	if _, err := os.Stat(storePath); err != nil {
		return nil, "", fmt.Errorf("no store at %s (store.path in %s): %w", storePath, cfgPath, err)
	}
	r, err := storage.Verify(storePath)
	if errors.Is(err, storage.ErrLocked) {
		return nil, "", fmt.Errorf("the store %s is in use by another process, but no daemon answers on %s: "+
			"a \"mailbot process\" may be running (try again in a moment)", storePath, control.SocketPath(storePath))
	}
	if err != nil {
		return nil, "", err
	}
	if r.Clean() {
		if err := storage.CheckStamp(storePath, r.Identity, r.Generation); err != nil {
			r.Problems = append(r.Problems, "the daemon will refuse it: "+err.Error())
		}
	}
	return r, "", nil
}

func printReport(w io.Writer, r *storage.Report, how string) {
	fmt.Fprintf(w, "store: %s%s\n", r.Path, how)
	if r.PageSize > 0 {
		fmt.Fprintf(w, "file: %d bytes, pages of %d bytes, generation %d\n", r.Size, r.PageSize, r.Generation)
	} else {
		fmt.Fprintf(w, "file: %d bytes\n", r.Size)
	}
	if r.Identity.ID != "" {
		fmt.Fprintf(w, "identity: store %s, created %s, schema %d\n", r.Identity.ID, r.Identity.Created.UTC().Format("2006-01-02 15:04:05 UTC"), r.Schema)
	}
	if len(r.Counts) > 0 {
		parts := make([]string, len(r.Counts))
		for i, c := range r.Counts {
			parts[i] = fmt.Sprintf("%d %s", c.N, c.Name)
		}
		fmt.Fprintf(w, "records: %s\n", strings.Join(parts, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	if r.Omitted > 0 {
		fmt.Fprintf(w, "problem: … and %d more\n", r.Omitted)
	}
	if r.Clean() {
		fmt.Fprintln(w, "clean: bbolt's consistency check and the store's own invariants found nothing wrong")
	}
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newOperatorFlags("restore", "--config FILE BACKUPFILE", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML); only store.path is read")
	pos, err := parseOperatorFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, "name one backup file")
	}
	backup := pos[0]
	storePath, err := storePathFromConfig(*cfgPath)
	if err != nil {
		return err
	}
	if err := notRunning(storePath); err != nil {
		return err
	}
	if err := notTheStore(backup, storePath); err != nil {
		return err
	}

	// The backup first: a damaged one is not put in place of anything.
	r, err := storage.Verify(backup)
	if err != nil {
		return err
	}
	if !r.Clean() {
		printReport(stdout, r, "")
		return fmt.Errorf("%s is not a sound store: nothing was changed", backup)
	}
	fmt.Fprintf(stdout, "restore: %s is sound (store %s, generation %d, %s)\n", backup, orUnknown(r.Identity.ID), r.Generation, countsOf(r))
	if id, _, err := storage.Describe(storePath); err == nil && r.Identity.ID != "" && id.ID != "" && id.ID != r.Identity.ID {
		fmt.Fprintf(stdout, "restore: note: it is another store than the one in place (store %s)\n", id.ID)
	}

	if err := os.MkdirAll(filepath.Dir(storePath), 0o700); err != nil {
		return err
	}
	owner := ownerFor(storePath)
	kept, err := keepAside(storePath)
	if err != nil {
		return err
	}
	if kept != "" {
		fmt.Fprintf(stdout, "restore: the store that was in place is kept as %s\n", kept)
	}
	in, err := os.Open(backup)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := writeFileAtomic(storePath, func(w io.Writer) (int64, error) { return io.Copy(w, in) }); err != nil {
		return fmt.Errorf("copy %s to %s: %w", backup, storePath, err)
	}
	if err := owner(storePath); err != nil {
		return err
	}
	// Record it as the store expected here: the daemon then accepts its
	// older generation, which is what a restore means.
	id, gen, err := storage.Restamp(storePath)
	if err != nil {
		return fmt.Errorf("the copy is in place at %s, but opening it failed: %w", storePath, err)
	}
	fmt.Fprintf(stdout, "restore: %s is now the store at %s (store %s, generation %d); start the daemon\n", backup, storePath, id.ID, gen)
	return nil
}

// notRunning refuses when a daemon, or any process, holds the store.
func notRunning(storePath string) error {
	client, err := control.Dial(storePath)
	if err == nil {
		client.Close()
		return fmt.Errorf("the daemon is running (it answers on %s): stop it first", control.SocketPath(storePath))
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return err
	}
	inUse, err := storage.InUse(storePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if inUse {
		return fmt.Errorf("the store %s is in use by another process (a daemon, a \"mailbot process\"): stop it first", storePath)
	}
	return nil
}

// keepAside gives the file at storePath a second name,
// <store>.replaced-<time>, before a restore replaces it, and returns that
// name ("" when there was no file). A hard link keeps a whole store at
// storePath until the restored one takes its place.
func keepAside(storePath string) (string, error) {
	if _, err := os.Lstat(storePath); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	base := storePath + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Link(storePath, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			// No hard links here: rename; the restored copy follows.
			if _, serr := os.Lstat(name); serr == nil {
				continue
			}
			err = os.Rename(storePath, name)
		}
		if err != nil {
			return "", fmt.Errorf("keep the store aside as %s: %w", name, err)
		}
		return name, nil
	}
}

// ownerFor returns what gives a restored store the owner of the file it
// replaces (or of its directory): run as root, restore must not leave a
// store the daemon's user cannot open. For others it does nothing.
func ownerFor(storePath string) func(string) error {
	if os.Geteuid() != 0 {
		return func(string) error { return nil }
	}
	fi, err := os.Stat(storePath)
	if err != nil {
		fi, err = os.Stat(filepath.Dir(storePath))
	}
	if err != nil {
		return func(string) error { return nil }
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return func(string) error { return nil }
	}
	return func(path string) error { return os.Chown(path, int(st.Uid), int(st.Gid)) }
}

func orUnknown(id string) string {
	if id == "" {
		return "without identity (an older version's)"
	}
	return id
}

func countsOf(r *storage.Report) string {
	var parts []string
	for _, c := range r.Counts {
		if c.Name == "spaces" || c.Name == "members" {
			parts = append(parts, fmt.Sprintf("%d %s", c.N, c.Name))
		}
	}
	return strings.Join(parts, ", ")
}

// recordBackup logs a backup written to file beside the store, so that a
// store that cannot be opened names it; the backup is read back first, as
// Open would read it. A backup that does not read back is an error.
func recordBackup(storePath, file string) (storage.BackupRecord, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return storage.BackupRecord{}, err
	}
	id, gen, err := storage.Describe(abs)
	if err != nil {
		return storage.BackupRecord{}, fmt.Errorf("the backup written does not read back: %w", err)
	}
	rec := storage.BackupRecord{At: time.Now().UTC().Round(time.Second), Path: abs, StoreID: id.ID, Generation: gen}
	return rec, storage.RecordBackup(storePath, rec)
}

// storeAdvice turns a store the daemon cannot open into the one line an
// operator needs: what is wrong, how to look closer, and the last good
// backup to restore, when one is known. Other errors pass unchanged.
func storeAdvice(err error, cfgPath string) error {
	var se *storage.StoreError
	if !errors.As(err, &se) {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v; look closer with: mailbot check-store --config %s", se, cfgPath)
	if errors.Is(se, storage.ErrReplaced) {
		fmt.Fprintf(&b, "; to keep the newer store, put it back; to run on this copy, move it aside and restore it: mailbot restore --config %s FILE", cfgPath)
		return errors.New(b.String())
	}
	if rec, ok := storage.LastBackup(se.Path); ok {
		fmt.Fprintf(&b, "; the last good backup is %s (%s, generation %d): mailbot restore --config %s %s",
			rec.Path, rec.At.UTC().Format("2006-01-02 15:04 UTC"), rec.Generation, cfgPath, rec.Path)
	} else {
		b.WriteString("; no backup of it is known (mailbot backup makes them)")
	}
	return errors.New(b.String())
}

// configArg is the value of the --config flag in args, for messages.
func configArg(args []string) string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "")
	fs.Parse(args)
	return *path
}
