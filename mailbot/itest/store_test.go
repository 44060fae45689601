package itest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
)

// The operator's runbook, end to end: a store that is not what it should
// be stops the daemon with one line, a backup is restored, a quarantined
// message moved back by a person is answered, and a bot killed between
// flagging a message and moving it leaves nothing stuck.

func init() { worlds = append(worlds, "badstore", "quarantine", "flagkill") }

// runTool runs the mailbot binary to its end (at most a minute: a daemon
// that does not exit is killed, and the test sees it) and returns its
// exit code and output.
func runTool(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), botconfig.PasswordEnv+"="+password)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("mailbot %s did not end within a minute:\n%s", strings.Join(args, " "), out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestDaemonRefusesABadStore: the real daemon started on an emptied, a
// truncated, a garbage store, or a backup copied over the live one, exits
// non-zero with one line that says what is wrong, how to look closer and
// which backup to restore, never a Go stack trace and never a new store;
// the restore it names brings it back.
func TestDaemonRefusesABadStore(t *testing.T) {
	w := newWorld("badstore")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)
	b.stop()
	cfg := b.config
	backup := filepath.Join(t.TempDir(), "nightly.db")
	if code, out := runTool(t, "backup", "--config", cfg, backup); code != 0 {
		t.Fatalf("backup: exit %d:\n%s", code, out)
	}
	// The daemon goes on after the nightly backup.
	startBot(t, w, store, stack.SMTPAddr).stop()
	good, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	nightly, _ := os.ReadFile(backup)

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"emptied", nil, "the file is empty"},
		{"truncated", good[:3*4096+7], "the file is truncated"},
		{"garbage", bytes.Repeat([]byte("\x00garbage"), 4096), "the file is not a mailbot store"},
		{"backup copied over it", nightly, "the file is not the store last used here: it is an older copy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(store, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := runTool(t, "run", "--config", cfg)
			if code == 0 {
				t.Fatalf("the daemon exited 0 on a bad store:\n%s", out)
			}
			for _, bad := range []string{"goroutine ", "panic", ".go:"} {
				if strings.Contains(out, bad) {
					t.Errorf("the output holds %q, as a stack trace does:\n%s", bad, out)
				}
			}
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(l, "time=") { // the logger's lines, if any
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("want one line, got %d:\n%s", len(lines), out)
			}
			wants := []string{"mailbot run: store " + store + ": " + c.want, "mailbot check-store --config " + cfg}
			if c.name == "backup copied over it" {
				wants = append(wants, "mailbot restore --config "+cfg)
			} else {
				wants = append(wants, "the last good backup is "+backup, "mailbot restore --config "+cfg+" "+backup)
			}
			for _, want := range wants {
				if !strings.Contains(lines[0], want) {
					t.Errorf("the line lacks %q:\n%s", want, lines[0])
				}
			}
			if now, _ := os.ReadFile(store); !bytes.Equal(now, c.data) {
				t.Error("the daemon changed the file it refused")
			}
		})
	}

	// The runbook: check the backup, restore it, start.
	if code, out := runTool(t, "check-store", "--store", backup); code != 0 || !strings.Contains(out, "clean: ") {
		t.Fatalf("check-store of the backup: exit %d:\n%s", code, out)
	}
	if code, out := runTool(t, "restore", "--config", cfg, backup); code != 0 || !strings.Contains(out, "is now the store at "+store) {
		t.Fatalf("restore: exit %d:\n%s", code, out)
	}
	b = startBot(t, w, store, stack.SMTPAddr)
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "after restore"}, "list spaces"))
	mustContain(t, waitMail(t, w.admin, "INBOX", 2)[1], "OK: 2 participating spaces")
	b.stop()
}

// waitCreated is waitMail for a mailbox the bot creates when it first
// moves mail there.
func waitCreated(t *testing.T, user, mailbox string, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); len(messagesIn(t, user, mailbox)) < n; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s does not hold %d messages within a minute", mailbox, user, n)
		}
	}
}

// imapAs logs in to Dovecot as user, as a person's mail client does.
func imapAs(t *testing.T, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(stack.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// flagsIn returns the flags of each message in mailbox, by UID.
func flagsIn(t *testing.T, c *imapclient.Client, mailbox string) map[imap.UID][]imap.Flag {
	t.Helper()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID][]imap.Flag{}
	if len(data.AllUIDs()) == 0 {
		return out
	}
	msgs, err := c.Fetch(imap.UIDSetNum(data.AllUIDs()...), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		out[m.UID] = m.Flags
	}
	return out
}

func hasKeyword(flags []imap.Flag, kw string) bool {
	return slices.ContainsFunc(flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), kw) })
}

// TestQuarantinedMessageMovedBackIsAnswered: a message whose handling kept
// failing (a broken reply template, as an operator's override can be) is
// quarantined without the bot's keywords; once the template is fixed and
// the bot restarted, an admin moves it back with a mail client and gets
// the answer. It was never recorded as handled, or it would not be.
func TestQuarantinedMessageMovedBackIsAnswered(t *testing.T) {
	w := newWorld("quarantine")
	store := filepath.Join(t.TempDir(), "visa.db")
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "reply.txt"), []byte(`{{template "no-such-template"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBotWith(t, w, store, stack.SMTPAddr, func(c *config.Config) {
		// What the test is about: every reply fails to render.
		c.Templates.Dir = broken
		// The three tries of a failing message come one per wake-up:
		// every second, rather than every minute.
		c.PollInterval = time.Second
	})
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "setup", MessageID: "q-1@visa.test"},
		"add space qspace name=\"Q Space\""))
	waitCreated(t, w.bot, "Quarantine", 1)
	notice := waitMail(t, w.admin, "INBOX", 1)[0]
	mustContain(t, notice, "once the cause is fixed, move it back to the inbox")
	b.stop()

	c := imapAs(t, w.bot)
	q := flagsIn(t, c, "Quarantine")
	if len(q) != 1 {
		t.Fatalf("Quarantine holds %d messages", len(q))
	}
	var uid imap.UID
	for u, flags := range q {
		uid = u
		if hasKeyword(flags, "$MailbotHandled") || hasKeyword(flags, "$MailbotRejected") {
			t.Fatalf("the quarantined message carries the bot's keywords: %v", flags)
		}
	}

	// The template is fixed (the defaults); the admin moves the message
	// back into the inbox.
	b = startBot(t, w, store, stack.SMTPAddr)
	if _, err := c.Move(imap.UIDSetNum(uid), "INBOX").Wait(); err != nil {
		t.Fatal(err)
	}
	r := waitMail(t, w.admin, "INBOX", 2)[1]
	mustContain(t, r, "> add space qspace", "OK: added space qspace: Q Space")
	if got := r.Header.Get("In-Reply-To"); got != "<q-1@visa.test>" {
		t.Errorf("the answer replies to %q", got)
	}
	waitMail(t, w.bot, "Processed", 1)
	b.stop()
}

// moveHolder is a TCP proxy between the bot and Dovecot that passes
// everything until the bot sends UID MOVE, and holds that command back:
// the bot has flagged the message and waits for the move, and the test
// kills it there.
type moveHolder struct {
	ln   net.Listener
	held chan string
}

func holdMoves(t *testing.T) *moveHolder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &moveHolder{ln: ln, held: make(chan string, 1)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h.serve(c)
		}
	}()
	return h
}

func (h *moveHolder) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", stack.IMAPAddr)
	if err != nil {
		return
	}
	defer s.Close()
	go io.Copy(c, s)
	// The bot's commands are lines; none here carries a literal.
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.Contains(strings.ToUpper(line), " UID MOVE ") {
			select {
			case h.held <- strings.TrimSpace(line):
			default:
			}
			io.Copy(io.Discard, r) // until the bot dies
			return
		}
		if _, err := io.WriteString(s, line); err != nil {
			return
		}
	}
}

// TestKillBetweenFlagAndMove: the bot is killed (SIGKILL) after it
// committed a message, answered it and flagged it, before it moved it. The
// next bot moves it on without acting on it or answering it again.
func TestKillBetweenFlagAndMove(t *testing.T) {
	w := newWorld("flagkill")
	store := filepath.Join(t.TempDir(), "visa.db")
	hold := holdMoves(t)
	host, port := splitHostPort(t, hold.ln.Addr().String())
	b := startBotWith(t, w, store, stack.SMTPAddr, func(c *config.Config) {
		// Through the proxy that holds back the move, so that the kill
		// comes between the flag and the move.
		c.IMAP.Host = host
		c.IMAP.Port, _ = strconv.Atoi(port)
	})
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "setup", MessageID: "fk-1@visa.test"},
		"add space fk name=\"Flag Kill\""))
	select {
	case cmd := <-hold.held:
		t.Logf("held: %s", cmd)
	case <-time.After(time.Minute):
		t.Fatal("the bot sent no UID MOVE within a minute")
	}
	mustContain(t, waitMail(t, w.admin, "INBOX", 1)[0], "OK: added space fk")
	b.kill()

	// What the kill left: the message flagged handled, in the inbox.
	c := imapAs(t, w.bot)
	in := flagsIn(t, c, "INBOX")
	if len(in) != 1 {
		t.Fatalf("the inbox holds %d messages, want the one flagged", len(in))
	}
	for _, flags := range in {
		if !hasKeyword(flags, "$MailbotHandled") {
			t.Fatalf("the message in the inbox carries %v, want $MailbotHandled: the kill was not between flag and move", flags)
		}
	}
	c.Logout().Wait()

	b = startBot(t, w, store, stack.SMTPAddr)
	waitMail(t, w.bot, "Processed", 1)
	// A later message gets its answer; by then a second answer to the
	// first would have been queued before it.
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "check"}, "list spaces"))
	replies := waitMail(t, w.admin, "INBOX", 2)
	for !slices.ContainsFunc(replies, func(r reply) bool { return strings.Contains(r.Text, "> list spaces") }) {
		replies = waitMail(t, w.admin, "INBOX", len(replies)+1)
	}
	adds := 0
	for _, r := range replies {
		if strings.Contains(r.Text, "> add space fk") {
			adds++
		}
	}
	if adds != 1 {
		t.Errorf("%d answers to the first message, want 1", adds)
	}
	b.stop()
	if left := flagsIn(t, imapAs(t, w.bot), "INBOX"); len(left) != 0 {
		t.Errorf("the inbox still holds %d messages", len(left))
	}
	for _, want := range []string{"flagged handled but still in the mailbox", "message already handled"} {
		if !strings.Contains(b.log.String(), want) {
			t.Errorf("the second bot's log lacks %q", want)
		}
	}
}
