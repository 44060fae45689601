package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, "", "help")
	if code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for _, want := range []string{"mailbot run --config FILE", "mailbot demo", "mailbot process", "verify EMAIL", "add member EMAIL", "add space ID"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if code, _, errOut := runCLI(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "run"); code != 1 || !strings.Contains(errOut, "--config FILE is required") {
		t.Errorf("run without config: exit %d, %q", code, errOut)
	}
}

func TestCheckConfigExample(t *testing.T) {
	t.Setenv("MAILBOT_IMAP_PASSWORD", "imap-secret-1")
	t.Setenv("MAILBOT_SMTP_PASSWORD", "smtp-secret-2")
	code, out, errOut := runCLI(t, "", "check-config", "--config", "../../config.example.yaml")
	if code != 0 {
		t.Fatalf("check-config exited %d: %s", code, errOut)
	}
	if !strings.Contains(out, "config is valid") || strings.Contains(out+errOut, "imap-secret-1") || strings.Contains(out+errOut, "smtp-secret-2") {
		t.Errorf("check-config output:\n%s\n%s", out, errOut)
	}
}

// processConfig writes a config whose SMTP server is a dead loopback port,
// so replies stay queued in the store.
func processConfig(t *testing.T) (cfg, store string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	store = filepath.Join(dir, "visa.db")
	cfg = filepath.Join(dir, "config.yaml")
	t.Setenv("MB_TEST_PW", "pw")
	yaml := fmt.Sprintf(`bot: {address: visa@visa.test}
imap: {host: 127.0.0.1, port: 1, tls: none, username: visa@visa.test, password_env: MB_TEST_PW}
smtp: {host: 127.0.0.1, port: %d, tls: none}
store: {path: %s}
admins: [admin@visa.test]
auth: {require: dmarc, authserv_id: mx.visa.test}
`, port, store)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, store
}

var pipedMessage = "Authentication-Results: mx.visa.test; dmarc=pass header.from=visa.test\r\n" +
	"From: Admin <admin@visa.test>\r\nTo: visa@visa.test\r\nSubject: setup\r\nMessage-ID: <p1@visa.test>\r\n" +
	"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n\r\nadd space indyhall name=\"Indy Hall\"\r\n"

func TestProcess(t *testing.T) {
	cfg, store := processConfig(t)
	for i := 0; i < 2; i++ {
		if code, _, errOut := runCLI(t, pipedMessage, "process", "--config", cfg); code != 0 {
			t.Fatalf("process #%d exited %d: %s", i, code, errOut)
		}
	}
	forged := strings.Replace(pipedMessage, "dmarc=pass", "dmarc=fail", 1)
	forged = strings.Replace(forged, "p1@", "p2@", 1)
	forged = strings.Replace(forged, "indyhall", "evil", -1)
	if code, _, errOut := runCLI(t, forged, "process", "--config", cfg); code != 0 {
		t.Fatalf("process of forged mail exited %d: %s", code, errOut)
	}
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	spaces, queued := 0, 0
	db.View(func(tx *storage.Tx) error {
		s, _ := tx.Spaces()
		spaces = len(s)
		return tx.Outbox(func(storage.OutboxItem) bool { queued++; return true })
	})
	if spaces != 1 || queued != 1 {
		t.Errorf("%d spaces and %d queued replies, want 1 and 1 (once, and kept for the daemon)", spaces, queued)
	}
	// While something holds the store, the MTA is asked to retry (75).
	defer db.Close()
	if code, _, _ := runCLI(t, pipedMessage, "process", "--config", cfg); code != exitTempFail {
		t.Errorf("process with a locked store exited %d, want %d", code, exitTempFail)
	}
}
