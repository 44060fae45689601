package packaging_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	unitPath = "mailbot.service"
	// binPath is where the unit expects the binary; the tests that run
	// systemd-analyze put a stand-in elsewhere, as verify checks that it
	// exists.
	binPath = "/usr/local/bin/mailbot"
)

// unit is a unit file as systemd reads it: for each section, each key's
// values in the order given (a key may be repeated, as LoadCredential=).
type unit map[string]map[string][]string

// readUnit parses the unit file at path: sections, key=value lines,
// comments (# and ;). It refuses a line continuation, which it does not
// read.
func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: a line continuation, which this test does not read", path, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last is the value that counts for a key given once or more, and whether
// it is given.
func (u unit) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// TestUnitSettings checks the settings the service depends on, one by one,
// so that a removed hardening line names itself (systemd-analyze security
// sums them into one number).
func TestUnitSettings(t *testing.T) {
	u := readUnit(t, unitPath)
	want := []struct{ key, value string }{
		{"Type", "exec"},
		{"DynamicUser", "yes"},
		{"User", "mailbot"}, // the name systemd-run -p User=mailbot shares
		{"StateDirectory", "mailbot"},
		{"StateDirectoryMode", "0700"},
		{"UMask", "0077"},
		{"Restart", "on-failure"},
		{"KillSignal", "SIGTERM"},
		{"KillMode", "mixed"},
		{"TimeoutStopSec", "90s"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"NoNewPrivileges", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"LockPersonality", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectControlGroups", "yes"},
		{"ProtectClock", "yes"},
		{"ProtectHostname", "yes"},
		{"RestrictNamespaces", "yes"},
		{"RestrictRealtime", "yes"},
		{"RestrictSUIDSGID", "yes"},
		{"SystemCallArchitectures", "native"},
	}
	for _, w := range want {
		got, ok := u.last("Service", w.key)
		if !ok || got != w.value {
			t.Errorf("[Service] %s=%q (set: %v), want %q", w.key, got, ok, w.value)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; !slices.Contains(f, "@system-service") {
		t.Errorf("SystemCallFilter=%q, want @system-service among them", f)
	}

	exec, _ := u.last("Service", "ExecStart")
	if exec != binPath+" run --config /etc/mailbot/config.yaml" {
		t.Errorf("ExecStart=%q", exec)
	}
	// The daemon reads its config at start only: an ExecReload would say
	// "reloaded" and change nothing. systemctl restart is the way.
	if r, ok := u.last("Service", "ExecReload"); ok {
		t.Errorf("ExecReload=%q: the daemon cannot reload", r)
	}
	if w, _ := u.last("Install", "WantedBy"); w != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%q", w)
	}

	// Each credential is read by the config as $CREDENTIALS_DIRECTORY/ID
	// (the README's config says so) from a root-only file of that name.
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range u["Service"]["LoadCredential"] {
		id, path, _ := strings.Cut(c, ":")
		ids = append(ids, id)
		if path != "/etc/mailbot/credentials/"+id {
			t.Errorf("LoadCredential=%s: want the file /etc/mailbot/credentials/%s", c, id)
		}
		if !bytes.Contains(readme, []byte("$CREDENTIALS_DIRECTORY/"+id)) {
			t.Errorf("README.md never names $CREDENTIALS_DIRECTORY/%s for LoadCredential=%s", id, c)
		}
	}
	if !slices.Equal(ids, []string{"imap-password", "smtp-password"}) {
		t.Errorf("LoadCredential IDs %q, want imap-password and smtp-password", ids)
	}
}

// systemdAnalyze returns the path of systemd-analyze, or fails the test
// saying how to get it.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed (Debian package systemd; .ci/install-deps installs it): %v", err)
	}
	return p
}

// stageUnit writes the unit, changed by edit, to a directory of its own
// with its ExecStart pointing at a stand-in binary (systemd-analyze verify
// refuses a unit whose binary does not exist), and returns its path.
func stageUnit(t *testing.T, edit func(string) string) string {
	t.Helper()
	text, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailbot")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const exec = "\nExecStart=" + binPath + " "
	s := string(text)
	if strings.Count(s, exec) != 1 {
		t.Fatalf("%s: want one ExecStart=%s …", unitPath, binPath)
	}
	s = strings.Replace(s, exec, "\nExecStart="+bin+" ", 1)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(dir, "mailbot.service")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// verify runs systemd-analyze verify on the unit at path: an error, or any
// word it prints (it warns of an unknown key or a bad value and still
// exits 0), is a finding.
func verify(t *testing.T, path string) (string, error) {
	t.Helper()
	out, err := exec.Command(systemdAnalyze(t), "verify", path).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestUnitVerify(t *testing.T) {
	if out, err := verify(t, stageUnit(t, nil)); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The same check finds a mistake: one wrong value is enough.
	broken := stageUnit(t, func(s string) string {
		return strings.Replace(s, "Restart=on-failure", "Restart=on-failures", 1)
	})
	if out, err := verify(t, broken); err == nil && out == "" {
		t.Fatal("systemd-analyze verify passes a unit with Restart=on-failures: this check proves nothing here")
	}
}

// exposureLine is the summary of systemd-analyze security (systemd 252:
// "→ Overall exposure level for mailbot.service: 1.1 OK 🙂").
var exposureLine = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+\.[0-9]) ([A-Z]+)`)

// exposure rates the unit at path offline and returns its exposure level
// (0 best, 10 worst), the word systemd gives it and the whole output.
func exposure(t *testing.T, path string) (float64, string, string) {
	t.Helper()
	out, err := exec.Command(systemdAnalyze(t), "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline=true: %v\n%s", err, out)
	}
	m := exposureLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no overall exposure level:\n%s", out)
	}
	level, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return level, string(m[2]), string(out)
}

// maxExposure is the highest level systemd-analyze calls low: it says OK
// from 1.0 to 4.9, SAFE below 1.0. The unit rates 1.1 with systemd 252: what
// remains is the network it needs (PrivateNetwork, IPAddressDeny,
// AF_INET/AF_INET6/AF_UNIX), the host's root directory and the clock device
// ProtectClock leaves readable. TestUnitSettings guards each setting.
const maxExposure = 4.0

func TestUnitSecurity(t *testing.T) {
	level, word, out := exposure(t, stageUnit(t, nil))
	if level >= maxExposure || !slices.Contains([]string{"OK", "SAFE", "PERFECT"}, word) {
		var open []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "✗") {
				open = append(open, l)
			}
		}
		t.Fatalf("exposure %.1f %s, want below %.1f (OK or better); not covered:\n%s",
			level, word, maxExposure, strings.Join(open, "\n"))
	}
	t.Logf("systemd-analyze security: %.1f %s", level, word)

	// The same reading finds an unhardened unit: the number is parsed, not
	// assumed.
	bare := filepath.Join(t.TempDir(), "bare.service")
	if err := os.WriteFile(bare, []byte("[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if level, word, _ := exposure(t, bare); level < maxExposure {
		t.Fatalf("a unit without any hardening rates %.1f %s: this check proves nothing here", level, word)
	}
}
