package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes a minimal valid config with extra appended.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	t.Setenv("MB_TEST_PW", "pw")
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	yaml := `bot: {address: visa@visa.test}
imap: {host: 127.0.0.1, port: 1, tls: none, username: visa@visa.test, password_env: MB_TEST_PW}
smtp: {host: 127.0.0.1, port: 2, tls: none}
store: {path: ` + filepath.Join(dir, "visa.db") + `}
admins: [admin@visa.test]
auth: {require: dmarc, authserv_id: mx.visa.test}
` + extra
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJSONLogs: logging.format json makes every log line a JSON object, as
// log shippers read them, with errors under the key "error".
func TestJSONLogs(t *testing.T) {
	var b strings.Builder
	log := newLogger(&b, "info", "json")
	log.Error("outbox: send failed", "error", "451 try later", "id", 7)
	var line map[string]any
	if err := json.Unmarshal([]byte(b.String()), &line); err != nil {
		t.Fatalf("not a JSON line: %q: %v", b.String(), err)
	}
	if line["msg"] != "outbox: send failed" || line["error"] != "451 try later" || line["level"] != "ERROR" {
		t.Errorf("line = %v", line)
	}
}

// TestFormerLogSection: a config with log: (the former name of logging:)
// still works, with a warning from check-config and in the log, in the
// format it asks for.
func TestFormerLogSection(t *testing.T) {
	cfg := writeConfig(t, "log: {format: json}\n")
	code, out, errOut := runCLI(t, "", "check-config", "--config", cfg)
	if code != 0 {
		t.Fatalf("check-config exited %d: %s", code, errOut)
	}
	if !strings.Contains(out, "# warning: log: a former name: rename the section to logging") ||
		!strings.Contains(out, "logging:\n  level: info\n  format: json\n") {
		t.Errorf("check-config output:\n%s", out)
	}
	var line map[string]any
	first, _, _ := strings.Cut(errOut, "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || !strings.Contains(line["msg"].(string), "log: a former name") {
		t.Errorf("the warning is not logged as JSON: %q (%v)", errOut, err)
	}

	cfg = writeConfig(t, "log: {format: json}\nlogging: {format: text}\n")
	if code, _, errOut := runCLI(t, "", "check-config", "--config", cfg); code != 1 ||
		!strings.Contains(errOut, "log: the former name of logging; both are set: keep only logging") {
		t.Errorf("log and logging both: exit %d, %q", code, errOut)
	}
}
