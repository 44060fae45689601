package main

// The operator commands: export, import and backup. Each asks the running
// daemon over its control socket (bbolt lets only one process open the
// store, even to read it) and, when no daemon runs, opens the store itself.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/mailbot/control"
	"github.com/coworkingvisa/mailbot/storage"
)

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newOperatorFlags("export", "--config FILE [--space ID] [--format csv|json] [--status active|inactive] [--out FILE]", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML); only store.path is read")
	space := fs.String("space", "", "export this space only (default: every space, with a first column space)")
	format := fs.String("format", "csv", "csv or json")
	status := fs.String("status", "", "only members with this status: active or inactive")
	out := fs.String("out", "", "write to this file (default: standard output)")
	pos, err := parseOperatorFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError(fs, "unexpected argument %q", pos[0])
	}
	st, err := openOperatorStore(*cfgPath)
	if err != nil {
		return err
	}
	defer st.close()
	req := control.ExportRequest{Space: *space, Format: *format, Status: *status}
	export := func(w io.Writer) (int64, error) {
		cw := &countingWriter{w: w}
		if st.client != nil {
			return cw.n, st.client.Export(ctx, req, cw)
		}
		return cw.n, control.Export(st.db, req, cw)
	}
	if *out == "" || *out == "-" {
		_, err := export(stdout)
		return err
	}
	if err := notTheStore(*out, st.storePath); err != nil {
		return err
	}
	n, err := writeFileAtomic(*out, export)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d bytes to %s%s\n", n, *out, st.how())
	return nil
}

func cmdImport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newOperatorFlags("import", "--config FILE --space ID [--replace] [--charset NAME] CSVFILE", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML); only store.path is read")
	space := fs.String("space", "", "the space whose roster the file is (required)")
	replace := fs.Bool("replace", false, "also remove the members missing from the file")
	charset := fs.String("charset", "", "the file's character set, e.g. windows-1252 (default: UTF-8, with or without BOM)")
	pos, err := parseOperatorFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *space == "":
		return usageError(fs, "--space ID is required")
	case len(pos) != 1:
		return usageError(fs, "name one CSV file (- for standard input)")
	}
	file := pos[0]
	var in io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, control.MaxImportBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > control.MaxImportBytes {
		return fmt.Errorf("%s is larger than %d bytes", file, control.MaxImportBytes)
	}
	st, err := openOperatorStore(*cfgPath)
	if err != nil {
		return err
	}
	defer st.close()
	req := control.ImportRequest{Space: *space, CSV: data, Charset: *charset, Replace: *replace, Filename: filepath.Base(file)}
	if file == "-" {
		req.Filename = "standard input"
	}
	var rep commands.ImportReport
	if st.client != nil {
		rep, err = st.client.Import(ctx, req)
	} else {
		rep, err = control.Import(st.db, time.Now(), req)
	}
	if err != nil {
		return fmt.Errorf("nothing was imported: %w", err)
	}
	fmt.Fprintf(stdout, "imported %s into %s%s\n", rep.File, *space, st.how())
	fmt.Fprintf(stdout, "added %d, updated %d, unchanged %d, removed %d, rejected %d\n",
		rep.Added, rep.Updated, rep.Unchanged, rep.Removed, len(rep.Rejected))
	for _, r := range rep.Rejected {
		fmt.Fprintf(stdout, "rejected line %d: %s\n", r.Line, r.Reason)
	}
	return nil
}

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newOperatorFlags("backup", "--config FILE BACKUPFILE", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML); only store.path is read")
	pos, err := parseOperatorFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, "name one backup file (- for standard output)")
	}
	file := pos[0]
	st, err := openOperatorStore(*cfgPath)
	if err != nil {
		return err
	}
	defer st.close()
	backup := func(w io.Writer) (int64, error) {
		if st.client != nil {
			return st.client.Backup(ctx, w)
		}
		return st.db.Backup(w)
	}
	if file == "-" {
		n, err := backup(stdout)
		if err == nil {
			fmt.Fprintf(stderr, "backup: %d bytes written to standard output%s\n", n, st.how())
		}
		return err
	}
	if err := notTheStore(file, st.storePath); err != nil {
		return err
	}
	n, err := writeFileAtomic(file, backup)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup: %d bytes written to %s%s\n", n, file, st.how())
	// Logged beside the store, so that a store that cannot be opened
	// names its last good backup.
	if _, err := recordBackup(st.storePath, file); err != nil {
		return err
	}
	return nil
}

// operatorStore is the way to the store: the daemon's control socket, or
// the file itself when no daemon runs.
type operatorStore struct {
	storePath string
	client    *control.Client
	db        *storage.DB
}

// openOperatorStore reads store.path from the config file and reaches the
// store through the daemon if one answers, else directly.
func openOperatorStore(cfgPath string) (*operatorStore, error) {
	storePath, err := storePathFromConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	st := &operatorStore{storePath: storePath}
	if st.client, err = control.Dial(storePath); err == nil {
		return st, nil
	} else if !errors.Is(err, control.ErrNoDaemon) {
		return nil, err
	}
	if _, err := os.Stat(storePath); err != nil {
		return nil, fmt.Errorf("no store at %s (store.path in %s): %w", storePath, cfgPath, err)
	}
	st.db, err = storage.Open(storePath)
	if errors.Is(err, storage.ErrLocked) {
		// A daemon may have started since the first try.
		if st.client, err = control.Dial(storePath); err == nil {
			return st, nil
		}
		return nil, fmt.Errorf("the store %s is in use by another process, but no daemon answers on %s: "+
			"a \"mailbot process\" may be running (try again in a moment), or a daemon without a control socket (restart it)",
			storePath, control.SocketPath(storePath))
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// how says, after a summary line, which way the store was reached.
func (st *operatorStore) how() string {
	if st.client != nil {
		return " (through the running daemon)"
	}
	return ""
}

func (st *operatorStore) close() {
	if st.client != nil {
		st.client.Close()
	}
	if st.db != nil {
		st.db.Close()
	}
}

// storePathFromConfig reads store.path, and nothing else, from the config:
// the operator commands need neither the mail servers nor their passwords,
// which are often readable only by the service itself (systemd
// credentials). The daemon validates the whole file when it starts.
func storePathFromConfig(cfgPath string) (string, error) {
	if cfgPath == "" {
		return "", errors.New("--config FILE is required")
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	var c struct {
		Store struct {
			Path string `yaml:"path"`
		} `yaml:"store"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return "", fmt.Errorf("config %s: %w", cfgPath, err)
	}
	if c.Store.Path == "" {
		return "", fmt.Errorf("config %s: store.path: required", cfgPath)
	}
	return c.Store.Path, nil
}

// notTheStore refuses to write over the store or its socket.
func notTheStore(out, storePath string) error {
	for _, p := range []string{storePath, control.SocketPath(storePath)} {
		a, _ := filepath.Abs(out)
		b, _ := filepath.Abs(p)
		same := a == b
		if fa, err := os.Stat(out); err == nil {
			if fb, err := os.Stat(p); err == nil && os.SameFile(fa, fb) {
				same = true
			}
		}
		if same {
			return fmt.Errorf("%s is the store itself (or its socket): name another file", out)
		}
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newOperatorFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mailbot %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseOperatorFlags parses args, allowing flags after the file name too,
// and returns the other arguments.
func parseOperatorFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError reports a misuse with the command's usage; run exits 2.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "mailbot %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return flag.ErrHelp
}

func cmdOutbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newOperatorFlags("outbox", "--config FILE [--release ID]", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML); only store.path is read")
	release := fs.Uint64("release", 0, "put the held message with this id back in the queue")
	pos, err := parseOperatorFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError(fs, "unexpected argument %q", pos[0])
	}
	st, err := openOperatorStore(*cfgPath)
	if err != nil {
		return err
	}
	defer st.close()
	if *release != 0 {
		if st.client != nil {
			err = st.client.Release(ctx, *release)
		} else {
			err = control.Release(st.db, *release, time.Now())
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "outbox: message %d released; it is sent now%s\n", *release, st.how())
		return nil
	}
	var items []storage.OutboxItem
	if st.client != nil {
		items, err = st.client.Outbox(ctx)
	} else {
		items, err = control.Outbox(st.db)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "outbox: %d messages waiting%s\n", len(items), st.how())
	for _, it := range items {
		state := "next try " + it.NextAttempt.Local().Format(time.DateTime)
		if it.Held {
			state = fmt.Sprintf("HELD after %d crashes (release with --release %d)", it.Crashes, it.ID)
		}
		fmt.Fprintf(stdout, "%d\t%s to %s, queued %s, %d attempts, %s\n", it.ID, it.Kind,
			strings.Join(it.To, ", "), it.Created.Local().Format(time.DateTime), it.Attempts, state)
		if it.LastError != "" {
			fmt.Fprintf(stdout, "\tlast error: %s\n", it.LastError)
		}
	}
	return nil
}
