package itest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	mbconfig "github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
)

// TestSecretsNeverLogged runs the real binary with passwords from the
// environment, from a file and from the YAML itself, at log level debug:
// working logins, a failing IMAP login, a refused SMTP login, config errors
// and check-config. No password may appear in anything it prints.
func TestSecretsNeverLogged(t *testing.T) {
	const (
		imapSecret   = "Imap-S3cret-f00d"   // the bot's real IMAP password, from the environment
		smtpSecret   = "Smtp-S3cret-beef"   // an SMTP password, from the environment
		fileSecret   = "File-S3cret-cafe"   // a wrong IMAP password, from a file
		inlineSecret = "Inline-S3cret-dead" // a password written into the YAML
		pastedSecret = "Pasted-S3cret-babe" // a password pasted where the variable's name goes
	)
	secrets := []string{imapSecret, smtpSecret, fileSecret, inlineSecret, pastedSecret}
	w := world{bot: "visa-secret@visa.test", admin: "admin-secret@visa.test"}
	if err := stack.AddUser(w.bot, imapSecret); err != nil {
		t.Fatal(err)
	}
	if err := stack.AddUser(w.admin, password); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "visa.db")
	secretFile := filepath.Join(dir, "imap-password")
	if err := os.WriteFile(secretFile, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MAILBOT_IMAP_PASSWORD="+imapSecret, "MAILBOT_SMTP_PASSWORD="+smtpSecret)
	// config writes a config file for the secret test's bot: the defaults
	// (package botconfig), with replies to smtpAddr, changed by set (the
	// password sources this test is about), its text changed by edit.
	config := func(name, smtpAddr string, set func(*mbconfig.Config), edit func(string) string) string {
		c, err := botconfig.New(botconfig.Stack{Bot: w.bot, Admin: w.admin, IMAPAddr: stack.IMAPAddr, SMTPAddr: smtpAddr,
			Store: store, AuthservID: authservID})
		if err != nil {
			t.Fatal(err)
		}
		set(c)
		text, err := botconfig.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			text = edit(text)
		}
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	smtpLogin := func(c *mbconfig.Config) {
		c.SMTP.Username, c.SMTP.PasswordEnv = w.bot, "MAILBOT_SMTP_PASSWORD"
	}
	imapFile := func(c *mbconfig.Config) {
		c.IMAP.PasswordEnv, c.IMAP.PasswordFile = "", secretFile
	}
	checked := 0
	noSecrets := func(what, out string) {
		t.Helper()
		checked++
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows the password %q:\n%s", what, s, out)
			}
		}
	}

	// 1. A working bot: the IMAP password from the environment, an SMTP
	// login (from the environment) to a server that is not there, so the
	// reply stays queued for run 2.
	dead := deadAddr(t)
	good := config("good", dead, smtpLogin, nil)
	b := runBinary(t, env, "run", "--config", good)
	b.waitLog("imap connected", 30*time.Second)
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "hello"}, "list spaces"))
	b.waitLog("message handled", 30*time.Second)
	b.waitLog("will retry", 30*time.Second)
	b.stop()
	noSecrets("the log of a working bot", b.log.String())

	// 2. A wrong IMAP password from a file, and an SMTP login that the
	// server refuses (535): both fail, and both failures are logged.
	bad := config("bad", refusingSMTP(t), func(c *mbconfig.Config) { imapFile(c); smtpLogin(c) }, nil)
	b = runBinary(t, env, "run", "--config", bad)
	b.waitLog("imap connection failed", 30*time.Second)
	b.waitLog("outbox: send failed", 30*time.Second)
	b.stop()
	t.Logf("failed logins, as logged:\n%s", grepLines(b.log.String(), "failed"))
	if !strings.Contains(b.log.String(), "535") {
		t.Errorf("the refused SMTP login is not in the log:\n%s", b.log.String())
	}
	noSecrets("the log of failed logins", b.log.String())

	// 3. check-config of a valid config with all three sources.
	inline := config("inline", stack.SMTPAddr, func(c *mbconfig.Config) {
		imapFile(c)
		c.SMTP.Username, c.SMTP.InlinePassword = w.bot, inlineSecret
	}, nil)
	out, code := runOnce(env, "check-config", "--config", inline)
	if code != 0 || !strings.Contains(out, "config is valid") {
		t.Errorf("check-config of a valid config: exit %d:\n%s", code, out)
	}
	noSecrets("check-config", out)
	out, code = runOnce(env, "check-config", "--config", good)
	if code != 0 {
		t.Errorf("check-config of a valid config: exit %d:\n%s", code, out)
	}
	noSecrets("check-config", out)

	// 4. Config errors, by check-config and by run: a bad value next to an
	// inline password, and a password pasted where the name of its
	// environment variable goes.
	for _, c := range []struct{ name, cfg string }{
		{"an invalid value beside an inline password", config("invalid", stack.SMTPAddr, func(c *mbconfig.Config) {
			c.IMAP.PasswordEnv, c.IMAP.InlinePassword = "", inlineSecret
			smtpLogin(c)
			c.PollInterval = time.Millisecond
		}, nil)},
		{"a password in password_env", config("pasted", stack.SMTPAddr, func(c *mbconfig.Config) { c.IMAP.PasswordEnv = pastedSecret }, nil)},
		{"a YAML error on the password line", config("yaml", stack.SMTPAddr, func(c *mbconfig.Config) {
			c.IMAP.PasswordEnv, c.IMAP.InlinePassword = "", inlineSecret
		}, func(text string) string {
			return strings.Replace(text, "password: "+inlineSecret, "password: \""+inlineSecret, 1)
		})},
	} {
		for _, cmd := range []string{"check-config", "run"} {
			out, code := runOnce(env, cmd, "--config", c.cfg)
			if code == 0 {
				t.Errorf("%s: mailbot %s exited 0:\n%s", c.name, cmd, out)
			}
			noSecrets(fmt.Sprintf("mailbot %s, %s,", cmd, c.name), out)
		}
	}
	t.Logf("secrets: %d outputs checked for %d passwords", checked, len(secrets))
}

// waitLog waits until the bot's output holds s.
func (b *bot) waitLog(s string, within time.Duration) {
	b.t.Helper()
	deadline := time.After(within)
	for !strings.Contains(b.log.String(), s) {
		select {
		case <-b.done:
			b.t.Fatalf("mailbot exited before logging %q:\n%s", s, b.log.String())
		case <-deadline:
			b.t.Fatalf("mailbot did not log %q within %v:\n%s", s, within, b.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runOnce runs the binary to its end and returns its combined output and
// exit code.
func runOnce(env []string, args ...string) (string, int) {
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	done := make(chan struct{})
	timer := time.AfterFunc(30*time.Second, func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	close(done)
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

// refusingSMTP is an SMTP server on loopback that offers AUTH PLAIN over
// plaintext and refuses every login; it returns its address.
func refusingSMTP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gosmtp.NewServer(refusingBackend{})
	srv.Domain = "refusing.test"
	srv.AllowInsecureAuth = true
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

type refusingBackend struct{}

func (refusingBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return refusingSession{}, nil
}

type refusingSession struct{}

func (refusingSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (refusingSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, _ string) error { return gosmtp.ErrAuthFailed }), nil
}
func (refusingSession) Mail(string, *gosmtp.MailOptions) error { return gosmtp.ErrAuthRequired }
func (refusingSession) Rcpt(string, *gosmtp.RcptOptions) error { return gosmtp.ErrAuthRequired }
func (refusingSession) Data(io.Reader) error                   { return gosmtp.ErrAuthRequired }
func (refusingSession) Reset()                                 {}
func (refusingSession) Logout() error                          { return nil }

// grepLines returns the lines of s that hold sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
