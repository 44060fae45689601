package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coworkingvisa/mailbot/storage"
)

func TestCheckStore(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	code, out, errOut := runCLI(t, "", "check-store", "--config", cfg)
	if code != 0 {
		t.Fatalf("check-store: exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"store: " + store + "\n", "identity: store ", "2 spaces", "3 members", "clean: "} {
		if !strings.Contains(out, want) {
			t.Errorf("check-store lacks %q:\n%s", want, out)
		}
	}

	// A backup, by its file; and a damaged copy of it.
	backup := filepath.Join(dir, "backup.db")
	if code, _, errOut := runCLI(t, "", "backup", "--config", cfg, backup); code != 0 {
		t.Fatalf("backup: %s", errOut)
	}
	if code, out, _ := runCLI(t, "", "check-store", "--store", backup); code != 0 || !strings.Contains(out, "clean: ") {
		t.Errorf("check-store --store of a backup: exit %d:\n%s", code, out)
	}
	data, _ := os.ReadFile(backup)
	broken := filepath.Join(dir, "broken.db")
	os.WriteFile(broken, data[:len(data)/3], 0o600)
	code, out, errOut = runCLI(t, "", "check-store", "--store", broken)
	if code != 1 || !strings.Contains(out, "problem: store "+broken+": the file is truncated") || strings.Contains(out, "clean") {
		t.Errorf("check-store of a truncated copy: exit %d:\n%s%s", code, out, errOut)
	}

	// Usage mistakes.
	if code, _, _ := runCLI(t, "", "check-store"); code != 2 {
		t.Errorf("check-store without a store: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", "check-store", "--config", cfg, "--store", backup); code != 2 {
		t.Errorf("check-store with both: exit %d", code)
	}
}

// TestCheckStoreThroughDaemon: while the daemon holds the store, the check
// runs on a copy it takes; the file itself cannot be read.
func TestCheckStoreThroughDaemon(t *testing.T) {
	_, cfg, store := operatorConfig(t)
	runDaemonSocket(t, store)
	code, out, errOut := runCLI(t, "", "check-store", "--config", cfg)
	if code != 0 || !strings.Contains(out, "store: "+store+" (a consistent copy taken through the running daemon)") || !strings.Contains(out, "clean: ") {
		t.Errorf("check-store through the daemon: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", "check-store", "--store", store); code != 1 || !strings.Contains(errOut, "check it with --config") {
		t.Errorf("check-store --store of the held store: exit %d: %s", code, errOut)
	}
}

// TestCheckStoreSeesACopyOverTheLiveStore: a backup copied over the live
// store is clean as a file, but the daemon would refuse it, and the check
// says so.
func TestCheckStoreSeesACopyOverTheLiveStore(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	backup := filepath.Join(dir, "backup.db")
	runCLI(t, "", "backup", "--config", cfg, backup)
	db, _ := storage.Open(store)
	db.Update(func(tx *storage.Tx) error { return tx.PutSpace(storage.Space{ID: "later"}) })
	db.Close()
	data, _ := os.ReadFile(backup)
	os.WriteFile(store, data, 0o600) // cp backup.db visa.db
	code, out, _ := runCLI(t, "", "check-store", "--config", cfg)
	if code != 1 || !strings.Contains(out, "problem: the daemon will refuse it: ") || !strings.Contains(out, "older copy") {
		t.Errorf("check-store of an older copy in place: exit %d:\n%s", code, out)
	}
}

func TestRestore(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	backup := filepath.Join(dir, "backup.db")
	if code, _, errOut := runCLI(t, "", "backup", "--config", cfg, backup); code != 0 {
		t.Fatalf("backup: %s", errOut)
	}
	// Work goes on after the backup; then the store is lost to a bad disk.
	db, _ := storage.Open(store)
	db.Update(func(tx *storage.Tx) error { return tx.PutSpace(storage.Space{ID: "after-backup"}) })
	db.Close()
	old, _ := os.ReadFile(store)
	// The daemon runs as its own user (here mail, uid 8); an operator
	// restores as root.
	const daemonUID = 8
	if os.Geteuid() == 0 {
		for _, p := range []string{store, storage.StampPath(store)} {
			if err := os.Chown(p, daemonUID, daemonUID); err != nil {
				t.Fatal(err)
			}
		}
	}

	code, out, errOut := runCLI(t, "", "restore", "--config", cfg, backup)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"restore: " + backup + " is sound (store ", "2 spaces, 3 members", "is kept as " + store + ".replaced-", "is now the store at " + store, "start the daemon"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore says nothing of %q:\n%s", want, out)
		}
	}
	kept, _ := filepath.Glob(store + ".replaced-*")
	if len(kept) != 1 {
		t.Fatalf("replaced files: %v", kept)
	}
	if data, _ := os.ReadFile(kept[0]); !bytes.Equal(data, old) {
		t.Error("the kept file is not the store that was in place")
	}
	noTemporaries(t, dir)
	if os.Geteuid() == 0 {
		for _, p := range []string{store, storage.StampPath(store)} {
			if fi, err := os.Stat(p); err != nil || fi.Sys().(*syscall.Stat_t).Uid != daemonUID {
				t.Errorf("%s after a restore by root: %v, want it owned by the daemon's user", p, err)
			}
		}
	}
	// The daemon accepts the restored store, although it is older than
	// what was committed here.
	db, err := storage.Open(store)
	if err != nil {
		t.Fatalf("open after restore: %v", err)
	}
	db.View(func(tx *storage.Tx) error {
		if _, ok, _ := tx.Space("after-backup"); ok {
			t.Error("the restored store has what came after the backup")
		}
		if n := tx.CountMembers("indy"); n != 2 {
			t.Errorf("indy has %d members after restore", n)
		}
		return nil
	})
	db.Close()
	// The kept file is whole: it can be restored in turn.
	if code, out, errOut := runCLI(t, "", "restore", "--config", cfg, kept[0]); code != 0 {
		t.Fatalf("restore of the kept file: exit %d: %s%s", code, out, errOut)
	}
	db, err = storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *storage.Tx) error {
		if _, ok, _ := tx.Space("after-backup"); !ok {
			t.Error("restoring the kept file did not bring back its space")
		}
		return nil
	})
}

func TestRestoreRefuses(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	backup := filepath.Join(dir, "backup.db")
	runCLI(t, "", "backup", "--config", cfg, backup)
	before, _ := os.ReadFile(store)
	unchanged := func(what string) {
		t.Helper()
		if after, _ := os.ReadFile(store); !bytes.Equal(before, after) {
			t.Errorf("%s: the store changed", what)
		}
		if kept, _ := filepath.Glob(store + ".replaced-*"); len(kept) != 0 {
			t.Errorf("%s: a file was kept aside: %v", what, kept)
		}
	}

	// A damaged backup.
	data, _ := os.ReadFile(backup)
	broken := filepath.Join(dir, "broken.db")
	os.WriteFile(broken, append(bytes.Clone(data[:8192]), make([]byte, len(data)-8192)...), 0o600)
	code, out, errOut := runCLI(t, "", "restore", "--config", cfg, broken)
	if code != 1 || !strings.Contains(errOut, "is not a sound store: nothing was changed") || !strings.Contains(out, "problem: ") {
		t.Errorf("restore of a damaged backup: exit %d:\n%s%s", code, out, errOut)
	}
	unchanged("damaged backup")

	// The store itself.
	if code, _, errOut := runCLI(t, "", "restore", "--config", cfg, store); code != 1 || !strings.Contains(errOut, "the store itself") {
		t.Errorf("restore of the store onto itself: exit %d: %s", code, errOut)
	}

	// The store held open by a process without a socket, then by a daemon.
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "", "restore", "--config", cfg, backup)
	db.Close()
	if code != 1 || !strings.Contains(errOut, "in use by another process") {
		t.Errorf("restore while the store is held: exit %d: %s", code, errOut)
	}
	runDaemonSocket(t, store) // opening it writes to it
	before, _ = os.ReadFile(store)
	if code, _, errOut := runCLI(t, "", "restore", "--config", cfg, backup); code != 1 || !strings.Contains(errOut, "the daemon is running") {
		t.Errorf("restore while the daemon runs: exit %d: %s", code, errOut)
	}
	unchanged("daemon running")
}

// TestRunRefusesABadStore: the daemon started on an emptied, truncated or
// garbage store exits 1 with one line that says what is wrong, how to look
// closer, and which backup to restore.
func TestRunRefusesABadStore(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	backup := filepath.Join(dir, "nightly.db")
	if code, _, errOut := runCLI(t, "", "backup", "--config", cfg, backup); code != 0 {
		t.Fatalf("backup: %s", errOut)
	}
	good, _ := os.ReadFile(store)
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":     {nil, "the file is empty"},
		"truncated": {good[:5000], "the file is truncated"},
		"garbage":   {bytes.Repeat([]byte("garbage!"), 2000), "the file is not a mailbot store"},
	} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(store, c.data, 0o600)
			code, _, errOut := runCLI(t, "", "run", "--config", cfg)
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
				if strings.HasPrefix(l, "mailbot ") {
					lines = append(lines, l)
				}
			}
			if code != 1 || len(lines) != 1 {
				t.Fatalf("run: exit %d, want 1 and one line:\n%s", code, errOut)
			}
			for _, want := range []string{"mailbot run: store " + store + ": " + c.want, "mailbot check-store --config " + cfg,
				"the last good backup is " + backup, "mailbot restore --config " + cfg + " " + backup} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("the line lacks %q:\n%s", want, lines[0])
				}
			}
			if after, _ := os.ReadFile(store); !bytes.Equal(after, c.data) {
				t.Error("run changed the refused file")
			}
		})
	}
}
