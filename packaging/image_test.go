package packaging_test

import (
	"bytes"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
)

const (
	containerfile = "Containerfile"
	imageUser     = "65532:65532"
	imageUID      = 65532
)

// instruction is one line of a Containerfile, continuations joined.
type instruction struct {
	cmd  string   // upper case: FROM, COPY …
	args []string // split on blanks (no argument here holds one)
}

func readContainerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile(containerfile)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur += more + " "
			continue
		}
		f := strings.Fields(cur + line)
		cur = ""
		out = append(out, instruction{strings.ToUpper(f[0]), f[1:]})
	}
	return out
}

// TestContainerfile checks what the build must never do here or anywhere:
// pull a base image, run a command, or leave the daemon running as root.
func TestContainerfile(t *testing.T) {
	ins := readContainerfile(t)
	if len(ins) == 0 || ins[0].cmd != "FROM" {
		t.Fatalf("%s does not begin with FROM", containerfile)
	}
	var user string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			if len(in.args) != 1 || in.args[0] != "scratch" {
				t.Errorf("FROM %s: only FROM scratch builds without pulling an image", strings.Join(in.args, " "))
			}
		case "RUN":
			t.Errorf("RUN %s: a scratch image has nothing to run it with", strings.Join(in.args, " "))
		case "ADD":
			t.Errorf("ADD %s: use COPY (ADD fetches URLs and unpacks archives)", strings.Join(in.args, " "))
		case "USER":
			user = strings.Join(in.args, " ")
		}
	}
	if user != imageUser {
		t.Errorf("USER %q, want %s (not root)", user, imageUser)
	}
}

// copySources are the context paths the Containerfile's COPY lines name.
func copySources(ins []instruction) []string {
	var srcs []string
	for _, in := range ins {
		if in.cmd != "COPY" {
			continue
		}
		var args []string
		for _, a := range in.args {
			if !strings.HasPrefix(a, "--") {
				args = append(args, a)
			}
		}
		srcs = append(srcs, args[:len(args)-1]...) // the last is the destination
	}
	return srcs
}

// buildah runs buildah with its storage under dir (vfs: no kernel overlay
// needed, nothing shared with the host's images) and returns its
// standard output.
type buildah struct {
	t    *testing.T
	path string
	env  []string
}

func newBuildah(t *testing.T) *buildah {
	t.Helper()
	path, err := exec.LookPath("buildah")
	if err != nil {
		t.Fatalf("buildah is needed (Debian package buildah; .ci/install-deps installs it): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "storage.conf")
	text := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "graph"), filepath.Join(dir, "run"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return &buildah{t: t, path: path, env: append(os.Environ(), "CONTAINERS_STORAGE_CONF="+conf)}
}

func (b *buildah) command(args ...string) *exec.Cmd {
	cmd := exec.Command(b.path, args...)
	cmd.Env = b.env
	return cmd
}

func (b *buildah) run(args ...string) string {
	b.t.Helper()
	var stderr bytes.Buffer
	cmd := b.command(args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("buildah %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// TestImage builds the image as the README says, offline, and checks what
// is in it, then runs the binary in it the way a container runtime would:
// as the image's user, with the config, the secrets and the store mounted.
func TestImage(t *testing.T) {
	b := newBuildah(t)
	context := filepath.Join(t.TempDir(), "context")
	if out, err := exec.Command("./image-context", context).CombinedOutput(); err != nil {
		t.Fatalf("image-context: %v\n%s", err, out)
	}
	for _, src := range copySources(readContainerfile(t)) {
		if _, err := os.Stat(filepath.Join(context, src)); err != nil {
			t.Errorf("COPY %s: not in the context image-context makes: %v", src, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	const image = "localhost/mailbot:test"
	// --pull=never: the build must succeed with no registry at all.
	b.run("build", "--pull=never", "--isolation", "chroot", "-f", containerfile, "-t", image, context)

	var inspect struct {
		OCIv1 struct {
			Config struct {
				User       string
				Entrypoint []string
				Cmd        []string
				WorkingDir string
				StopSignal string
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(b.run("inspect", "--type", "image", image)), &inspect); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.OCIv1.Config
	if cfg.User != imageUser {
		t.Errorf("image user %q, want %s", cfg.User, imageUser)
	}
	if want := []string{"/usr/local/bin/mailbot"}; !slices.Equal(cfg.Entrypoint, want) {
		t.Errorf("entrypoint %q, want %q", cfg.Entrypoint, want)
	}
	if want := []string{"run", "--config", "/etc/mailbot/config.yaml"}; !slices.Equal(cfg.Cmd, want) {
		t.Errorf("cmd %q, want %q", cfg.Cmd, want)
	}
	if cfg.WorkingDir != "/var/lib/mailbot" || cfg.StopSignal != "SIGTERM" {
		t.Errorf("working dir %q, stop signal %q", cfg.WorkingDir, cfg.StopSignal)
	}

	ctr := b.run("from", "--pull-never", image)
	t.Cleanup(func() { b.command("rm", ctr).Run() })
	checkImageFiles(t, b.run("mount", ctr))

	// The daemon's way in: the config read-only at /etc/mailbot, the
	// secret as a mounted file found through $CREDENTIALS_DIRECTORY, the
	// store on a volume owned by the image's user. `mailbot process` loads
	// the config (the secret included) and writes the store, and needs no
	// mail server for a message it sets aside.
	host := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"config", "secrets", "state"} {
		dirs[d] = filepath.Join(host, d)
		if err := os.Mkdir(dirs[d], 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c, err := botconfig.New(botconfig.Stack{
		Bot: "visa@example.org", Admin: "admin@example.org",
		IMAPAddr: "127.0.0.1:143", SMTPAddr: "127.0.0.1:25",
		Store: "/var/lib/mailbot/visa.db", AuthservID: "mx.example.org",
	})
	if err != nil {
		t.Fatal(err)
	}
	// What this test is about: the password from a file in the secrets
	// mount.
	c.IMAP.PasswordEnv, c.IMAP.PasswordFile = "", "$CREDENTIALS_DIRECTORY/imap-password"
	text, err := botconfig.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dirs["secrets"], "imap-password")
	for path, content := range map[string]string{
		filepath.Join(dirs["config"], "config.yaml"): text,
		secret: "not-a-real-password\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// As an operator prepares them for the image's user: a config anyone
	// may read (it holds no secret), a secret only it may read, a store
	// directory only it may enter.
	for _, p := range []string{dirs["secrets"], secret, dirs["state"]} {
		if err := os.Chown(p, imageUID, imageUID); err != nil {
			t.Fatal(err)
		}
	}
	for p, mode := range map[string]fs.FileMode{dirs["config"]: 0o755, secret: 0o400} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}

	msg := "From: stranger@example.net\r\nTo: visa@example.org\r\nSubject: verify\r\n" +
		"Message-ID: <image-test@example.net>\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\n\r\n" +
		"verify someone@example.org\r\n"
	cmd := b.command("run", "--isolation", "chroot",
		"-v", dirs["config"]+":/etc/mailbot:ro",
		"-v", dirs["secrets"]+":/run/secrets:ro",
		"-v", dirs["state"]+":/var/lib/mailbot",
		"--env", "CREDENTIALS_DIRECTORY=/run/secrets",
		ctr, "--", "/usr/local/bin/mailbot", "process", "--config", "/etc/mailbot/config.yaml")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mailbot process in the image: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "message set aside") {
		t.Errorf("mailbot process did not report the message set aside:\n%s", out)
	}
	fi, err := os.Stat(filepath.Join(dirs["state"], "visa.db"))
	if err != nil {
		t.Fatalf("no store written on the volume: %v\n%s", err, out)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != imageUID {
		t.Errorf("the store is owned by uid %d: the daemon ran as that user, want %d", uid, imageUID)
	}
}

// checkImageFiles checks the image's whole file system at root: the static
// binary, CA certificates, time zones, its user, the store's directory, and
// nothing else (no shell).
func checkImageFiles(t *testing.T, root string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(path, root+"/")
		if !d.IsDir() && !strings.HasPrefix(rel, "/usr/share/zoneinfo/") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	want := []string{"/etc/group", "/etc/passwd", "/etc/ssl/certs/ca-certificates.crt", "/usr/local/bin/mailbot"}
	if !slices.Equal(files, want) {
		t.Errorf("files outside /usr/share/zoneinfo: %q, want %q", files, want)
	}

	bin, err := elf.Open(filepath.Join(root, "usr/local/bin/mailbot"))
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%v): build it with CGO_ENABLED=0", p.Type)
		}
	}

	pem, err := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(pem) {
		t.Error("ca-certificates.crt holds no certificate")
	}

	for _, zone := range []string{"Europe/Paris", "America/New_York", "US/Eastern", "UTC"} {
		data, err := os.ReadFile(filepath.Join(root, "usr/share/zoneinfo", zone))
		if err == nil {
			_, err = time.LoadLocationFromTZData(zone, data)
		}
		if err != nil {
			t.Errorf("zoneinfo %s: %v", zone, err)
		}
	}

	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil || !strings.HasPrefix(string(passwd), fmt.Sprintf("mailbot:x:%d:%d:", imageUID, imageUID)) {
		t.Errorf("/etc/passwd %q (%v): want the user mailbot, %d", passwd, err, imageUID)
	}

	for _, d := range []struct {
		path string
		uid  uint32
		mode fs.FileMode
	}{
		{"var/lib", 0, 0o755},
		{"var/lib/mailbot", imageUID, 0o700},
	} {
		fi, err := os.Stat(filepath.Join(root, d.path))
		if err != nil {
			t.Error(err)
			continue
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != d.uid || fi.Mode().Perm() != d.mode || !fi.IsDir() {
			t.Errorf("/%s: uid %d, mode %v; want a directory of uid %d, mode %v", d.path, uid, fi.Mode(), d.uid, d.mode)
		}
	}
}
