package control

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/storage"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// tempDir is a directory short enough for a unix socket path.
func tempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "mb"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

// openStore opens a store with two spaces: indy (three members, one
// inactive, one manager) and cowo (one member).
func openStore(t *testing.T, dir string) (*storage.DB, string) {
	t.Helper()
	path := filepath.Join(dir, "visa.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *storage.Tx) error {
		for _, sp := range []storage.Space{
			{ID: "indy", Name: "Indy Hall", City: "Philadelphia", Created: t0, Updated: t0},
			{ID: "cowo", Name: "Cowo Berlin", Created: t0, Updated: t0},
		} {
			if err := tx.PutSpace(sp); err != nil {
				return err
			}
		}
		if err := tx.AddManager(storage.Manager{Email: "alex@indy.example", Space: "indy", Added: t0}); err != nil {
			return err
		}
		for _, m := range []storage.Member{
			{Space: "indy", Email: "ann@example.org", Name: "Ann", Status: storage.StatusActive},
			{Space: "indy", Email: "bob@example.org", Name: "Bob, Jr.", Status: storage.StatusInactive},
			{Space: "indy", Email: "eve@example.org", Name: "=1+1", Status: storage.StatusActive, Until: "2026-12-31"},
			{Space: "cowo", Email: "carl@example.org", Name: "Carl", Status: storage.StatusActive},
		} {
			m.Added, m.Updated = t0, t0
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, path
}

// serve runs a control server for db until the test ends.
func serve(t *testing.T, db *storage.DB, storePath string) *Client {
	t.Helper()
	l, err := Listen(storePath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, NewHandler(db, Hooks{Now: func() time.Time { return t0 }})) }()
	c, err := Dial(storePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return c
}

func TestSocketModeAndRemovalOnStop(t *testing.T) {
	db, store := openStore(t, tempDir(t))
	l, err := Listen(store)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SocketPath(store))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, NewHandler(db, Hooks{})) }()
	if _, err := Dial(store); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := os.Lstat(SocketPath(store)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file still there after Serve returned: %v", err)
	}
	if _, err := Dial(store); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Dial after stop: %v, want ErrNoDaemon", err)
	}
}

func TestDialNoDaemonAndStaleSocket(t *testing.T) {
	dir := tempDir(t)
	store := filepath.Join(dir, "visa.db")
	if _, err := Dial(store); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Dial without a socket: %v, want ErrNoDaemon", err)
	}

	// A socket file left by a daemon that was killed: nothing listens.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketPath(store), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Lstat(SocketPath(store)); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	if _, err := Dial(store); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Dial on a stale socket: %v, want ErrNoDaemon", err)
	}

	// Listen removes the stale file and serves.
	db, _ := openStore(t, dir)
	c := serve(t, db, store)
	var buf bytes.Buffer
	if err := c.Export(context.Background(), ExportRequest{Space: "cowo"}, &buf); err != nil {
		t.Fatalf("export after replacing the stale socket: %v", err)
	}

	// A second Listen while a server answers is refused, and leaves the
	// live socket alone.
	if _, err := Listen(store); err == nil || !strings.Contains(err.Error(), "another process answers") {
		t.Errorf("second Listen: %v, want a refusal", err)
	}
	if _, err := Dial(store); err != nil {
		t.Errorf("Dial after the refused Listen: %v", err)
	}
}

func TestListenRefusesOtherFiles(t *testing.T) {
	store := filepath.Join(tempDir(t), "visa.db")
	if err := os.WriteFile(SocketPath(store), []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(store); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(SocketPath(store)); string(data) != "not a socket" {
		t.Errorf("the regular file was touched")
	}
}

// TestLongSocketPath: a store deep enough that its socket path does not fit
// in sun_path still gets a working socket (through /proc/self/fd).
func TestLongSocketPath(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd")
	}
	dir := tempDir(t)
	for len(dir) < 150 {
		dir = filepath.Join(dir, "a-rather-long-directory-name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, store := openStore(t, dir)
	c := serve(t, db, store)
	var buf bytes.Buffer
	if err := c.Export(context.Background(), ExportRequest{Space: "cowo"}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "carl@example.org") {
		t.Errorf("export through a long socket path: %q", buf.String())
	}
}

// TestBackupWhileWriting: copies taken while another goroutine keeps
// writing open as stores and are consistent: every transaction writes a
// member and a counter in the space record, and each copy holds exactly
// the members its counter says.
func TestBackupWhileWriting(t *testing.T) {
	dir := tempDir(t)
	db, store := openStore(t, dir)
	// Some bulk, so a copy takes long enough to overlap writes.
	err := db.Update(func(tx *storage.Tx) error {
		for i := range 3000 {
			m := storage.Member{Space: "bulk", Email: fmt.Sprintf("m%05d@example.org", i), Name: strings.Repeat("x", 200), Status: storage.StatusActive}
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return tx.PutSpace(storage.Space{ID: "seq", Name: "0"})
	})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, db, store)

	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := db.Update(func(tx *storage.Tx) error {
				m := storage.Member{Space: "seq", Email: fmt.Sprintf("s%06d@example.org", i), Status: storage.StatusActive}
				if err := tx.PutMember(m); err != nil {
					return err
				}
				return tx.PutSpace(storage.Space{ID: "seq", Name: fmt.Sprint(i)})
			})
			if err != nil {
				t.Error(err)
				return
			}
			writes.Add(1)
		}
	}()

	var counts []int
	for i := range 5 {
		out := filepath.Join(dir, fmt.Sprintf("copy%d.db", i))
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.Backup(context.Background(), f)
		f.Close()
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		if fi, _ := os.Stat(out); fi.Size() != n {
			t.Fatalf("backup %d: reported %d bytes, file has %d", i, n, fi.Size())
		}
		counts = append(counts, checkCopy(t, out))
	}
	close(stop)
	wg.Wait()
	t.Logf("copies hold %v writes; %d writes in all", counts, writes.Load())
	if counts[len(counts)-1] == 0 {
		t.Errorf("no write landed in any copy")
	}
}

// checkCopy opens a backup and checks that the counter and the members of
// space seq agree; it returns the counter.
func checkCopy(t *testing.T, path string) int {
	t.Helper()
	db, err := storage.Open(path)
	if err != nil {
		t.Fatalf("open backup %s: %v", path, err)
	}
	defer db.Close()
	var n int
	err = db.View(func(tx *storage.Tx) error {
		sp, ok, err := tx.Space("seq")
		if err != nil || !ok {
			return fmt.Errorf("space seq: %v %v", ok, err)
		}
		fmt.Sscan(sp.Name, &n)
		if got := tx.CountMembers("seq"); got != n {
			return fmt.Errorf("counter says %d writes, %d members", n, got)
		}
		if got := tx.CountMembers("bulk"); got != 3000 {
			return fmt.Errorf("bulk has %d members", got)
		}
		if _, ok, _ := tx.Member("indy", "ann@example.org"); !ok {
			return errors.New("ann is missing")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("backup %s: %v", path, err)
	}
	return n
}

func TestExport(t *testing.T) {
	db, store := openStore(t, tempDir(t))
	c := serve(t, db, store)
	ctx := context.Background()
	export := func(req ExportRequest) string {
		t.Helper()
		var viaSocket, direct bytes.Buffer
		if err := c.Export(ctx, req, &viaSocket); err != nil {
			t.Fatalf("export %+v: %v", req, err)
		}
		if err := Export(db, req, &direct); err != nil {
			t.Fatalf("direct export %+v: %v", req, err)
		}
		if viaSocket.String() != direct.String() {
			t.Errorf("export %+v: socket and direct differ:\n%s\n%s", req, viaSocket.String(), direct.String())
		}
		return viaSocket.String()
	}

	// One space as CSV: exactly the roster a manager gets.
	var want []byte
	db.View(func(tx *storage.Tx) error {
		var err error
		want, err = commands.RosterCSV(tx, "indy", "")
		return err
	})
	if got := export(ExportRequest{Space: "indy"}); got != string(want) {
		t.Errorf("CSV of indy:\n%s\nwant\n%s", got, want)
	}

	// Every space as CSV: a space column, one header.
	allCSV := export(ExportRequest{Format: "csv"})
	if !strings.HasPrefix(allCSV, "\uFEFF") {
		t.Errorf("CSV of all spaces without the BOM a roster has: %q", allCSV)
	}
	recs, err := readCSV(allCSV)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || strings.Join(recs[0][:3], ",") != "space,email,name" {
		t.Fatalf("CSV of all spaces: %q", recs)
	}
	bySpace := map[string][]string{}
	for _, r := range recs[1:] {
		bySpace[r[0]] = append(bySpace[r[0]], r[1])
		if r[1] == "bob@example.org" && r[2] != "Bob, Jr." {
			t.Errorf("a name with a comma came out as %q", r[2])
		}
		if r[1] == "eve@example.org" && strings.HasPrefix(r[2], "=") {
			t.Errorf("a formula-like name came out unguarded: %q", r[2])
		}
	}
	if len(bySpace["indy"]) != 3 || len(bySpace["cowo"]) != 1 {
		t.Errorf("rows by space: %v", bySpace)
	}

	// Status filter.
	recs, _ = readCSV(export(ExportRequest{Status: "inactive"}))
	if len(recs) != 2 || recs[1][1] != "bob@example.org" {
		t.Errorf("inactive members of all spaces: %q", recs)
	}

	// JSON, all spaces and one.
	var all []SpaceExport
	if err := json.Unmarshal([]byte(export(ExportRequest{Format: "json"})), &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "cowo" || all[1].ID != "indy" || all[1].Name != "Indy Hall" ||
		len(all[1].Members) != 3 || len(all[0].Members) != 1 || len(all[1].Managers) != 1 || all[1].Managers[0] != "alex@indy.example" {
		t.Errorf("JSON of all spaces: %+v", all)
	}
	var one []SpaceExport
	if err := json.Unmarshal([]byte(export(ExportRequest{Space: "cowo", Format: "json"})), &one); err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || one[0].ID != "cowo" || len(one[0].Members) != 1 || one[0].Members[0].Email != "carl@example.org" || one[0].Managers == nil {
		t.Errorf("JSON of cowo: %+v", one)
	}

	// Errors keep their identity through the socket.
	if err := c.Export(ctx, ExportRequest{Space: "nope"}, &bytes.Buffer{}); !errors.Is(err, ErrUnknownSpace) {
		t.Errorf("unknown space: %v", err)
	}
	if err := c.Export(ctx, ExportRequest{Format: "xml"}, &bytes.Buffer{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad format: %v", err)
	}
}

func readCSV(s string) ([][]string, error) {
	return csv.NewReader(strings.NewReader(strings.TrimPrefix(s, "\uFEFF"))).ReadAll()
}

func TestImportViaSocket(t *testing.T) {
	db, store := openStore(t, tempDir(t))
	c := serve(t, db, store)
	ctx := context.Background()
	data := "email,name,status,until\n" +
		"ann@example.org,Ann,active,\n" + // unchanged
		"not-an-address,Nobody,active,\n" + // line 3: rejected
		"dan@example.org,Dan,active,2027-01-31\n" + // added
		"bob@example.org,\"Bob, Jr.\",active,\n" // updated
	rep, err := c.Import(ctx, ImportRequest{Space: "indy", CSV: []byte(data), Filename: "indy.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.File != "indy.csv" || rep.Added != 1 || rep.Updated != 1 || rep.Unchanged != 1 || rep.Removed != 0 ||
		len(rep.Rejected) != 1 || rep.Rejected[0].Line != 3 || rep.Rejected[0].Reason == "" {
		t.Errorf("report: %+v", rep)
	}
	err = db.View(func(tx *storage.Tx) error {
		m, ok, err := tx.Member("indy", "dan@example.org")
		if err != nil || !ok || m.Name != "Dan" || m.Until != "2027-01-31" {
			t.Errorf("dan: %+v %v %v", m, ok, err)
		}
		if m, _, _ := tx.Member("indy", "bob@example.org"); m.Status != storage.StatusActive {
			t.Errorf("bob not updated: %+v", m)
		}
		hist, err := tx.History("indy", "dan@example.org")
		if err != nil || len(hist) != 1 {
			t.Fatalf("history of dan: %+v %v", hist, err)
		}
		h := hist[0]
		if h.Actor != Operator.Address || h.MessageID != "cli-import-"+t0.Format(time.RFC3339Nano) || !h.At.Equal(t0) || h.Action != "add" {
			t.Errorf("audit record: %+v", h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Replace removes the members missing from the file.
	rep, err = c.Import(ctx, ImportRequest{Space: "indy", CSV: []byte("email,name,status,until\nann@example.org,Ann,active,\n"), Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 3 || rep.Unchanged != 1 {
		t.Errorf("replace report: %+v", rep)
	}
	db.View(func(tx *storage.Tx) error {
		if n := tx.CountMembers("indy"); n != 1 {
			t.Errorf("indy has %d members after replace", n)
		}
		if n := tx.CountMembers("cowo"); n != 1 {
			t.Errorf("cowo touched by an import into indy: %d members", n)
		}
		return nil
	})

	// An unknown space, or none, applies nothing.
	if _, err := c.Import(ctx, ImportRequest{Space: "nope", CSV: []byte(data)}); !errors.Is(err, ErrUnknownSpace) {
		t.Errorf("import into an unknown space: %v", err)
	}
	if _, err := c.Import(ctx, ImportRequest{CSV: []byte(data)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("import without a space: %v", err)
	}
	db.View(func(tx *storage.Tx) error {
		if ms, _ := tx.MembershipsOf("dan@example.org"); len(ms) != 0 {
			t.Errorf("dan is back: %+v", ms)
		}
		return nil
	})
}

func TestImportTooLarge(t *testing.T) {
	db, store := openStore(t, tempDir(t))
	c := serve(t, db, store)
	big := bytes.Repeat([]byte("x"), MaxImportBytes+1)
	if _, err := c.Import(context.Background(), ImportRequest{Space: "indy", CSV: big}); !errors.Is(err, ErrInvalid) {
		t.Errorf("import of %d bytes: %v", len(big), err)
	}
}

// TestBackupStalledClient: a client that stops reading does not hold the
// backup's read transaction (and so the daemon's writes) for ever.
func TestBackupStalledClient(t *testing.T) {
	db, store := openStore(t, tempDir(t))
	err := db.Update(func(tx *storage.Tx) error {
		for i := range 5000 {
			m := storage.Member{Space: "bulk", Email: fmt.Sprintf("m%05d@example.org", i), Name: strings.Repeat("x", 300), Status: storage.StatusActive}
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = 300 * time.Millisecond

	l, err := Listen(store)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(db, Hooks{})
	returned := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			close(returned)
		}))
	}()
	defer func() { cancel(); <-served }()

	conn, err := net.Dial("unix", SocketPath(store))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /backup HTTP/1.1\r\nHost: mailbot\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Read nothing.
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the backup handler still waits on a client that reads nothing")
	}
}

// TestExportImportRoundTrip: a space's export imports back unchanged.
func TestExportImportRoundTrip(t *testing.T) {
	db, store := openStore(t, tempDir(t))
	c := serve(t, db, store)
	var buf bytes.Buffer
	if err := c.Export(context.Background(), ExportRequest{Space: "indy"}, &buf); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Import(context.Background(), ImportRequest{Space: "indy", CSV: buf.Bytes()})
	if err != nil || rep.Unchanged != 3 || rep.Added+rep.Updated+rep.Removed+len(rep.Rejected) != 0 {
		t.Errorf("import of the export: %+v %v", rep, err)
	}
}
