package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/control"
	"github.com/coworkingvisa/mailbot/storage"
)

// operatorConfig writes a config for a store in a fresh directory, seeds
// the store (spaces indy and cowo, three members) and closes it.
func operatorConfig(t *testing.T) (dir, cfg, store string) {
	t.Helper()
	dir = t.TempDir()
	if len(dir) > 80 { // keep the socket path short
		var err error
		if dir, err = os.MkdirTemp("", "mb"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	store = filepath.Join(dir, "visa.db")
	cfg = filepath.Join(dir, "config.yaml")
	t.Setenv("MB_OPERATOR_PW", "pw")
	yaml := fmt.Sprintf(`bot: {address: visa@visa.test}
imap: {host: 127.0.0.1, port: 1, tls: none, username: visa@visa.test, password_env: MB_OPERATOR_PW}
smtp: {host: 127.0.0.1, port: 2, tls: none, username: visa@visa.test, password_env: MB_OPERATOR_PW}
store: {path: %s}
admins: [admin@visa.test]
auth: {require: dmarc, authserv_id: mx.visa.test}
`, store)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *storage.Tx) error {
		for _, sp := range []storage.Space{{ID: "indy", Name: "Indy Hall"}, {ID: "cowo", Name: "Cowo"}} {
			if err := tx.PutSpace(sp); err != nil {
				return err
			}
		}
		for _, m := range []storage.Member{
			{Space: "indy", Email: "ann@example.org", Name: "Ann", Status: storage.StatusActive, Added: t0, Updated: t0},
			{Space: "indy", Email: "bob@example.org", Name: "Bob", Status: storage.StatusInactive, Added: t0, Updated: t0},
			{Space: "cowo", Email: "carl@example.org", Name: "Carl", Status: storage.StatusActive, Added: t0, Updated: t0},
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, cfg, store
}

// runDaemonSocket holds the store open, as the daemon does, and serves
// its control socket until the test ends.
func runDaemonSocket(t *testing.T, store string) *storage.DB {
	t.Helper()
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	// Once Listen returns, connections queue on the socket: no need to
	// wait for Serve to start.
	l, err := control.Listen(store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- control.Serve(ctx, l, control.NewHandler(db, control.Hooks{})) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control server: %v", err)
		}
		db.Close()
	})
	return db
}

const importCSV = "email,name,status,until\n" +
	"ann@example.org,Ann,active,\n" +
	"not-an-address,Nobody,active,\n" +
	"dan@example.org,Dan,active,2027-01-31\n"

// exerciseOperator runs export, import and backup against the config and
// checks their results; via says what import and backup must mention
// about the way they went ("" for none).
func exerciseOperator(t *testing.T, dir, cfg, via string) {
	t.Helper()
	// Export all spaces as CSV to standard output.
	code, out, errOut := runCLI(t, "", "export", "--config", cfg)
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\uFEFF"))).ReadAll()
	if err != nil || len(recs) != 4 || recs[0][0] != "space" || recs[0][1] != "email" {
		t.Fatalf("export of all spaces: %q %v", recs, err)
	}

	// One space as JSON, to a file.
	jsonOut := filepath.Join(dir, "indy.json")
	code, _, errOut = runCLI(t, "", "export", "--config", cfg, "--space", "indy", "--format", "json", "--out", jsonOut)
	if code != 0 {
		t.Fatalf("export json: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, via) {
		t.Errorf("export json: %q does not say %q", errOut, via)
	}
	var spaces []control.SpaceExport
	data, _ := os.ReadFile(jsonOut)
	if err := json.Unmarshal(data, &spaces); err != nil || len(spaces) != 1 || spaces[0].ID != "indy" || len(spaces[0].Members) != 2 {
		t.Fatalf("export json: %s (%v)", data, err)
	}
	if fi, _ := os.Stat(jsonOut); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v, want 0600", fi.Mode().Perm())
	}

	// Import: a report, exit 0 although a row was rejected.
	csvFile := filepath.Join(dir, "indy.csv")
	if err := os.WriteFile(csvFile, []byte(importCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "", "import", "--config", cfg, "--space", "indy", csvFile)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"imported indy.csv into indy" + via, "added 1, updated 0, unchanged 1, removed 0, rejected 1", "rejected line 3: "} {
		if !strings.Contains(out, want) {
			t.Errorf("import report lacks %q:\n%s", want, out)
		}
	}

	// The same from standard input, with --replace (flags after the file
	// work too): bob is removed.
	code, out, errOut = runCLI(t, importCSV, "import", "--config", cfg, "-", "--space", "indy", "--replace")
	if code != 0 || !strings.Contains(out, "added 0, updated 0, unchanged 2, removed 1, rejected 1") {
		t.Errorf("import --replace: exit %d:\n%s%s", code, out, errOut)
	}

	// An unknown space fails, exit 1; a missing --space is a usage error.
	if code, _, errOut := runCLI(t, "", "import", "--config", cfg, "--space", "nope", csvFile); code != 1 || !strings.Contains(errOut, "nothing was imported") {
		t.Errorf("import into an unknown space: exit %d: %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "import", "--config", cfg, csvFile); code != 2 {
		t.Errorf("import without --space: exit %d", code)
	}

	// Backup: a file that opens as a store and holds the import.
	backup := filepath.Join(dir, "backup.db")
	code, out, errOut = runCLI(t, "", "backup", "--config", cfg, backup)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("backup: %d bytes written to %s%s\n", fi.Size(), backup, via); out != want {
		t.Errorf("backup says %q, want %q", out, want)
	}
	noTemporaries(t, dir)
	db, err := storage.Open(backup)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer db.Close()
	db.View(func(tx *storage.Tx) error {
		if _, ok, _ := tx.Member("indy", "dan@example.org"); !ok {
			t.Errorf("the backup lacks the imported member")
		}
		if _, ok, _ := tx.Member("indy", "bob@example.org"); ok {
			t.Errorf("the backup still has the member the replace removed")
		}
		if n := tx.CountMembers("cowo"); n != 1 {
			t.Errorf("the backup has %d members in cowo", n)
		}
		hist, _ := tx.History("indy", "dan@example.org")
		if len(hist) != 1 || hist[0].Actor != control.Operator.Address || !strings.HasPrefix(hist[0].MessageID, "cli-import-") {
			t.Errorf("audit of the import: %+v", hist)
		}
		return nil
	})
}

func TestOperatorWithoutDaemon(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	exerciseOperator(t, dir, cfg, "")
	// Nothing left the store locked or a socket behind.
	if _, err := os.Stat(control.SocketPath(store)); !os.IsNotExist(err) {
		t.Errorf("socket file: %v", err)
	}
	db, err := storage.Open(store)
	if err != nil {
		t.Fatalf("store still locked: %v", err)
	}
	db.Close()
}

// TestOperatorThroughDaemon: the store is held open as by a running
// daemon, so opening it would fail: everything goes through the socket.
func TestOperatorThroughDaemon(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	runDaemonSocket(t, store)
	exerciseOperator(t, dir, cfg, " (through the running daemon)")
}

func TestOperatorLockedWithoutSocket(t *testing.T) {
	_, cfg, store := operatorConfig(t)
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	code, _, errOut := runCLI(t, "", "backup", "--config", cfg, filepath.Join(t.TempDir(), "b.db"))
	if code != 1 || !strings.Contains(errOut, "in use by another process, but no daemon answers on "+control.SocketPath(store)) {
		t.Errorf("backup of a locked store without a daemon: exit %d: %s", code, errOut)
	}
}

func TestOperatorMistakes(t *testing.T) {
	dir, cfg, store := operatorConfig(t)
	// The backup must not replace the store.
	if code, _, errOut := runCLI(t, "", "backup", "--config", cfg, store); code != 1 || !strings.Contains(errOut, "the store itself") {
		t.Errorf("backup onto the store: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "export", "--config", cfg, "--out", store); code != 1 || !strings.Contains(errOut, "the store itself") {
		t.Errorf("export onto the store: exit %d: %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "backup", "--config", cfg); code != 2 {
		t.Errorf("backup without a file: exit %d", code)
	}
	if code, _, errOut := runCLI(t, "", "export", "--config", cfg, "--format", "xml"); code != 1 || !strings.Contains(errOut, "csv or json") {
		t.Errorf("export --format xml: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "export", "--config", cfg, "--space", "nope"); code != 1 || !strings.Contains(errOut, "no such space") {
		t.Errorf("export of an unknown space: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "backup", filepath.Join(dir, "b.db")); code != 1 || !strings.Contains(errOut, "--config FILE is required") {
		t.Errorf("backup without --config: exit %d: %s", code, errOut)
	}

	// No store at store.path: an error, and no store is created.
	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("store: {path: "+filepath.Join(dir, "missing.db")+"}\n"), 0o600)
	if code, _, errOut := runCLI(t, "", "export", "--config", other); code != 1 || !strings.Contains(errOut, "no store at") {
		t.Errorf("export without a store: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !os.IsNotExist(err) {
		t.Errorf("export created a store: %v", err)
	}

	// The operator commands need no mail passwords.
	os.Unsetenv("MB_OPERATOR_PW")
	if code, _, errOut := runCLI(t, "", "export", "--config", cfg, "--space", "cowo"); code != 0 {
		t.Errorf("export without the mail passwords in the environment: exit %d: %s", code, errOut)
	}
}

// noTemporaries fails if a temporary file of writeFileAtomic is left in dir.
func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestOutputFilesIgnorePlantedSymlinks: a symlink planted where a careless
// writer would put its temporary file (FILE.tmp), or at FILE itself, is
// never written through: the file it points to keeps its content, and FILE
// ends up a regular file of mode 0600 with the new content.
func TestOutputFilesIgnorePlantedSymlinks(t *testing.T) {
	dir, cfg, _ := operatorConfig(t)
	for _, tc := range []struct {
		name string
		args func(out string) []string
	}{
		{"backup", func(out string) []string { return []string{"backup", "--config", cfg, out} }},
		{"export", func(out string) []string { return []string{"export", "--config", cfg, "--space", "cowo", "--out", out} }},
	} {
		for _, planted := range []string{".tmp", ""} {
			out := filepath.Join(dir, tc.name+"-out")
			victim := filepath.Join(dir, tc.name+"-victim"+planted)
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, out+planted); err != nil {
				t.Fatal(err)
			}
			if code, _, errOut := runCLI(t, "", tc.args(out)...); code != 0 {
				t.Fatalf("%s with a symlink at %s: exit %d: %s", tc.name, out+planted, code, errOut)
			}
			if data, _ := os.ReadFile(victim); string(data) != "precious" {
				t.Errorf("%s wrote through the symlink at %s into %s: %.40q", tc.name, out+planted, victim, data)
			}
			fi, err := os.Lstat(out)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
				t.Errorf("%s: %s is %v, %d bytes; want a regular 0600 file with the output", tc.name, out, fi.Mode(), fi.Size())
			}
			os.Remove(out)
			os.Remove(out + planted)
		}
	}
}

// mailbot outbox lists what waits, a held message among it, and releases
// the held one, with and without a daemon.
func TestOutboxCommand(t *testing.T) {
	for _, daemon := range []bool{false, true} {
		t.Run(fmt.Sprintf("daemon=%v", daemon), func(t *testing.T) {
			_, cfg, store := operatorConfig(t)
			db, err := storage.Open(store)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			var held, waiting uint64
			db.Update(func(tx *storage.Tx) (err error) {
				if held, err = tx.Enqueue(storage.OutboxItem{From: "visa@visa.test", To: []string{"ann@example.org"}, Raw: []byte("x"),
					Created: now, Kind: "reply", Held: true, Crashes: 3}); err != nil {
					return err
				}
				waiting, err = tx.Enqueue(storage.OutboxItem{From: "visa@visa.test", To: []string{"carl@example.org"}, Raw: []byte("y"),
					Created: now, Kind: "digest", Attempts: 2, NextAttempt: now.Add(time.Minute), LastError: "451 try later"})
				return err
			})
			db.Close()
			if daemon {
				db = runDaemonSocket(t, store)
			}
			code, out, errOut := runCLI(t, "", "outbox", "--config", cfg)
			if code != 0 {
				t.Fatalf("outbox: exit %d: %s", code, errOut)
			}
			for _, want := range []string{"2 messages waiting", fmt.Sprintf("%d\treply to ann@example.org", held), "HELD after 3 crashes",
				fmt.Sprintf("%d\tdigest to carl@example.org", waiting), "2 attempts", "last error: 451 try later"} {
				if !strings.Contains(out, want) {
					t.Errorf("outbox lacks %q:\n%s", want, out)
				}
			}
			if code, _, errOut := runCLI(t, "", "outbox", "--config", cfg, "--release", fmt.Sprint(waiting)); code == 0 {
				t.Errorf("releasing a message that is not held succeeded: %s", errOut)
			}
			if code, out, errOut := runCLI(t, "", "outbox", "--config", cfg, "--release", fmt.Sprint(held)); code != 0 || !strings.Contains(out, "released") {
				t.Fatalf("release: exit %d: %s%s", code, out, errOut)
			}
			if _, out, _ := runCLI(t, "", "outbox", "--config", cfg); strings.Contains(out, "HELD") {
				t.Errorf("still held after the release:\n%s", out)
			}
		})
	}
}
