// Package itest runs the real mailbot binary against a real Dovecot IMAP
// server and a real Postfix SMTP server on loopback, started by the
// project's own harness (mailbot/testkit/mailstack). Postfix judges the mail
// it receives as a provider's inbound server does, with the real OpenDKIM
// and OpenDMARC as milters (mailbot/testkit/verifier), and the tests sign
// their mail with keys that a real dnsmasq publishes
// (mailbot/testkit/signer): every Authentication-Results the bot reads was
// written by a real verifier, or by a forger. If the servers cannot start,
// every test here fails: they are never skipped.
package itest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/signer"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/verifier"
	"github.com/coworkingvisa/mailbot/storage"

	_ "github.com/emersion/go-message/charset"
)

const password = "secret-pw"

var (
	stack  *mailstack.Stack
	binary string
	keys   *signer.Signer // the test domains' DKIM keys
	// milters is the receiving MX's real verifier; its DNS server
	// publishes the test domains' keys.
	milters *verifier.Verifier
)

// domains are the test domains whose mail is signed: their keys and DMARC
// policies (p=reject) are published for the milters.
func domains() []string {
	d := []string{"visa.test", "indyhall.test", "betahaus.test", "elsewhere.test", "evil.test", "stall1.test", "stall2.test"}
	for i := range chaosPlanFromEnv().managers {
		d = append(d, chaosDomain(i))
	}
	return d
}

// world names the mailboxes of one test, so that tests sharing the stack
// never read each other's mail.
type world struct {
	bot, admin, alex, mad, eve string
}

func newWorld(name string) world {
	return world{
		bot:   "visa-" + name + "@visa.test",
		admin: "admin-" + name + "@visa.test",
		alex:  "alex-" + name + "@indyhall.test",
		mad:   "mad-" + name + "@betahaus.test",
		eve:   "eve-" + name + "@elsewhere.test",
	}
}

var worlds = []string{"flow", "forged", "denied", "restart", "outage"}

// transports route addresses to next hops other than Dovecot (Postfix's
// transport_maps), set before the stack starts: a bot's address to its
// LMTP listener.
var transports = map[string]string{}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mailbot-itest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "mailbot")
	build := exec.Command("go", "build", "-o", binary, "github.com/coworkingvisa/mailbot/cmd/mailbot")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "ITEST: build mailbot:", err)
		return 1
	}
	users := map[string]string{}
	for _, name := range worlds {
		w := newWorld(name)
		for _, a := range []string{w.bot, w.admin, w.alex, w.mad, w.eve} {
			users[a] = password
		}
	}
	// Keys made once per run, kept in the run's directory.
	if keys, err = signer.New(filepath.Join(dir, "dkim"), domains()...); err != nil {
		fmt.Fprintln(os.Stderr, "ITEST:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	v, err := verifier.Start(ctx, verifier.Options{Records: keys.Records()})
	milters = v
	if err != nil {
		// Loud, never a skip: CI must see that the real servers are missing.
		fmt.Fprintln(os.Stderr, "ITEST: OpenDKIM and OpenDMARC could not start (run .ci/install-deps as root):", err)
		return 1
	}
	stack, err = mailstack.Start(ctx, mailstack.Options{Users: users, RetryDelay: 2 * time.Second, Milters: v.Milters, Transports: transports})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ITEST: Dovecot and Postfix could not start (run .ci/install-deps as root):", err)
		if err := v.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, stack.Logs())
		fmt.Fprintln(os.Stderr, v.Logs())
	}
	// Postfix first: while it runs, it needs its milters.
	if err := stack.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if err := v.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if code == 0 {
		os.RemoveAll(stack.Dir)
		v.Remove()
	}
	return code
}

// bot is one run of the mailbot binary.
type bot struct {
	t      *testing.T
	config string // the config file it runs with
	cmd    *exec.Cmd
	log    *syncBuffer
	done   chan struct{}
	exitOK bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeConfig writes a config for world w's bot: the defaults, pointed at
// the shared stack; smtpAddr may point at a dead port to keep replies in
// the outbox. adjust, if not nil, changes what the test is about (each
// caller says why).
func writeConfig(t *testing.T, w world, store, smtpAddr string, adjust func(*config.Config)) string {
	t.Helper()
	return writeBotConfig(t, botConfig{bot: w.bot, admin: w.admin, store: store, smtpAddr: smtpAddr, adjust: adjust})
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("bad address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

// startBot runs `mailbot run --config` for world w, with the defaults.
func startBot(t *testing.T, w world, store, smtpAddr string) *bot {
	t.Helper()
	return startBotWith(t, w, store, smtpAddr, nil)
}

// startBotWith is startBot with the config changed by adjust.
func startBotWith(t *testing.T, w world, store, smtpAddr string, adjust func(*config.Config)) *bot {
	t.Helper()
	return startBotConfig(t, writeConfig(t, w, store, smtpAddr, adjust))
}

// startBotConfig runs `mailbot run` with the config file cfg and waits
// until it has logged in to IMAP, so that a bot that cannot start fails now.
func startBotConfig(t *testing.T, cfg string) *bot {
	t.Helper()
	b := runBinary(t, append(os.Environ(), botconfig.PasswordEnv+"="+password), "run", "--config", cfg)
	b.config = cfg
	deadline := time.After(30 * time.Second)
	for !strings.Contains(b.log.String(), "imap connected") {
		select {
		case <-b.done:
			t.Fatalf("mailbot exited at start:\n%s", b.log.String())
		case <-deadline:
			t.Fatalf("mailbot did not connect to IMAP within 30 s:\n%s", b.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return b
}

// runBinary starts the mailbot binary with the given environment and
// arguments; it waits for nothing. When the test ends the process is
// killed if it still runs, and its output logged if the test failed.
func runBinary(t *testing.T, env []string, args ...string) *bot {
	t.Helper()
	b := &bot{t: t, log: &syncBuffer{}, done: make(chan struct{})}
	b.cmd = exec.Command(binary, args...)
	b.cmd.Env = env
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start mailbot: %v", err)
	}
	go func() {
		err := b.cmd.Wait()
		b.exitOK = err == nil
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
		if t.Failed() {
			t.Logf("mailbot %s log (last 80 lines):\n%s", args[0], lastLines(b.log.String(), 80))
		}
	})
	return b
}

// stop sends SIGTERM and expects a clean exit (status 0).
func (b *bot) stop() {
	b.t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.t.Fatalf("mailbot did not stop within 30 s of SIGTERM")
	}
	if !b.exitOK {
		b.t.Fatalf("mailbot exited with %v after SIGTERM, want status 0", b.cmd.ProcessState)
	}
}

// kill sends SIGKILL: no chance to clean up.
func (b *bot) kill() {
	b.t.Helper()
	b.cmd.Process.Kill()
	<-b.done
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// send signs a message with its From domain's key, as the sender's
// provider does, and submits it through Postfix and its milters to the
// bot.
func send(t *testing.T, from, to string, raw []byte) {
	t.Helper()
	sendAsIs(t, from, to, signed(t, raw))
}

// sendAsIs submits a message through Postfix as it is: unsigned, forged,
// or signed and then changed.
func sendAsIs(t *testing.T, from, to string, raw []byte) {
	t.Helper()
	if err := stack.Send(ctxT(t), from, []string{to}, raw); err != nil {
		t.Fatalf("send from %s: %v", from, err)
	}
}

// waitMail waits until user's mailbox holds n messages and returns them.
func waitMail(t *testing.T, user, mailbox string, n int) []reply {
	t.Helper()
	raws, err := stack.WaitForMessages(ctxT(t), user, password, mailbox, n)
	if err != nil {
		t.Fatalf("waiting for %d messages in %s of %s: %v", n, mailbox, user, err)
	}
	out := make([]reply, len(raws))
	for i, r := range raws {
		out[i] = parseReply(t, r)
	}
	return out
}

// welcomed waits for the welcome each new manager gets when an admin adds
// them, takes it out of their inbox and checks it, so that the test's
// waitMail counts only the replies it is about.
func welcomed(t *testing.T, managers ...string) {
	t.Helper()
	for _, m := range managers {
		raws, err := stack.TakeMessages(ctxT(t), m, password, "INBOX", 1, isWelcome)
		if err != nil {
			t.Fatalf("no welcome reached %s: %v", m, err)
		}
		r := parseReply(t, raws[0])
		mustContain(t, r, "made you a manager of", "verify visitor@example.org")
		if got := r.Header.Get("Auto-Submitted"); got != "auto-generated" {
			t.Errorf("welcome Auto-Submitted = %q", got)
		}
	}
}

// isWelcome tells a new manager's welcome (its Subject, in English).
func isWelcome(raw []byte) bool {
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return false
	}
	subject, _ := mr.Header.Subject()
	return strings.Contains(subject, "Welcome: you now manage")
}

// reply is a received message: its header and its text/plain body.
type reply struct {
	Header mail.Header
	Text   string
	Raw    []byte
}

func parseReply(t *testing.T, raw []byte) reply {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse reply: %v\n%s", err, raw)
	}
	r := reply{Header: mr.Header, Raw: raw}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parse reply part: %v", err)
		}
		if h, ok := p.Header.(*mail.InlineHeader); ok {
			ct, _, _ := h.ContentType()
			if ct == "text/plain" && r.Text == "" {
				b, _ := io.ReadAll(p.Body)
				r.Text = string(b)
			}
		}
	}
	return r
}

func mustContain(t *testing.T, r reply, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.Text, w) {
			t.Errorf("reply lacks %q:\n%s", w, r.Text)
		}
	}
}

func mustNotContain(t *testing.T, r reply, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(r.Text, b) {
			t.Errorf("reply contains %q:\n%s", b, r.Text)
		}
	}
}

// setup has the admin create two spaces with a manager each, by email,
// and checks the admin's transcript.
func setup(t *testing.T, w world) {
	t.Helper()
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "network setup"},
		"Hi bot,\n\n"+
			"add space indyhall name=\"Indy Hall\" city=Philadelphia country=US tz=America/New_York\n"+
			"add space betahaus name=betahaus city=Berlin country=DE tz=Europe/Berlin terms=\"weekdays, bring ID\"\n"+
			"update space betahaus city=Berlin\n"+
			"add manager "+w.alex+" space=indyhall\n"+
			"add manager "+w.mad+" space=betahaus\n"+
			"list spaces\n"+
			"thanks\n"+
			"add space never name=\"after thanks\"\n"))
	r := waitMail(t, w.admin, "INBOX", 1)[0]
	mustContain(t, r,
		"> add space indyhall name=\"Indy Hall\"",
		"OK: added space indyhall: Indy Hall (Philadelphia, US)",
		"OK: added space betahaus",
		"OK: space betahaus is unchanged",
		"OK: "+w.alex+" is now a manager of indyhall",
		"OK: "+w.mad+" is now a manager of betahaus",
		"OK: 2 participating spaces",
		"Hi bot,",
	)
	mustNotContain(t, r, "never", "ERROR", "DENIED")
	welcomed(t, w.alex, w.mad)
}

// TestFlows is the product's main path: an admin sets up the network, a
// manager keeps the roster from Gmail, a host verifies from Outlook and
// from an old ISO-8859-1 client, and a message without commands gets help.
func TestFlows(t *testing.T) {
	w := newWorld("flow")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)

	roster := gmail(envelope{From: w.alex, To: w.bot, Subject: "Re: roster", MessageID: "roster-1@indyhall.test"},
		"add member adam@indyhall.test name=\"Adam Teterus\"\n"+
			"add member Beth Kaplan <beth@indyhall.test> until=2027-06-30\n"+
			"add member carl@indyhall.test\n"+
			"update member carl@indyhall.test status=inactive\n"+
			"add member dora@indyhall.test\n"+
			"remove member dora@indyhall.test")
	send(t, w.alex, w.bot, roster)
	r := waitMail(t, w.alex, "INBOX", 1)[0]
	mustContain(t, r,
		"OK: added Adam Teterus <adam@indyhall.test> (active) to indyhall",
		"OK: added Beth Kaplan <beth@indyhall.test> (active, until 2027-06-30)",
		"OK: updated status of carl@indyhall.test",
		"OK: removed dora@indyhall.test from indyhall",
		"6 commands: 6 OK.")
	mustNotContain(t, r, "everyone@example.org", "ERROR")
	// The reply threads under the message it answers and says it is automatic.
	if got := r.Header.Get("Subject"); got != "Re: roster" {
		t.Errorf("Subject = %q, want %q", got, "Re: roster")
	}
	if got := r.Header.Get("In-Reply-To"); got != "<roster-1@indyhall.test>" {
		t.Errorf("In-Reply-To = %q", got)
	}
	if got := r.Header.Get("References"); !strings.Contains(got, "<roster-1@indyhall.test>") {
		t.Errorf("References = %q", got)
	}
	if got := r.Header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if from, _ := r.Header.AddressList("From"); len(from) != 1 || from[0].Address != w.bot {
		t.Errorf("From = %v, want the bot", from)
	}

	send(t, w.mad, w.bot, outlook(envelope{From: w.mad, To: w.bot, Subject: "Visitors today"},
		"Good morning,\n\nverify adam@indyhall.test\nverify carl@indyhall.test\nverify dora@indyhall.test\nverify stranger@nowhere.test"))
	r = waitMail(t, w.mad, "INBOX", 1)[0]
	mustContain(t, r,
		"> verify adam@indyhall.test",
		"VERIFIED: adam@indyhall.test is Adam Teterus, a member of Indy Hall (Philadelphia, US).",
		"NOT VERIFIED: carl@indyhall.test is not an active member of a participating space.",
		"NOT VERIFIED: dora@indyhall.test is not an active member",
		"NOT VERIFIED: stranger@nowhere.test is not an active member",
		"Good morning,")
	mustNotContain(t, r, "everyone@example.org", "Kind regards")

	send(t, w.mad, w.bot, latin1(envelope{From: w.mad, To: w.bot, Subject: "verify beth@indyhall.test"},
		"add member juergen@betahaus.test name=\"Jürgen Groß\"\nGrüße aus Berlin\n"))
	r = waitMail(t, w.mad, "INBOX", 2)[1]
	mustContain(t, r,
		"VERIFIED: beth@indyhall.test is Beth Kaplan, a member of Indy Hall (Philadelphia, US), until 2027-06-30.",
		"OK: added Jürgen Groß <juergen@betahaus.test> (active) to betahaus",
		"Grüße aus Berlin")

	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "hello"}, "Hello, how does this work?"))
	r = waitMail(t, w.alex, "INBOX", 2)[1]
	mustContain(t, r, "How to use the Coworking Visa bot", "verify EMAIL", "add member EMAIL")
	b.stop()
}

// TestForgedAndAutomaticMail: mail that is not from an authenticated sender,
// and automatic mail, changes nothing and gets no reply: it is moved aside.
// The forgeries are what a forger can submit: unsigned mail, signed by the
// forger's own domain, or with Authentication-Results of its own making,
// which the real milters judge (dmarc=fail on top) and let through.
func TestForgedAndAutomaticMail(t *testing.T) {
	w := newWorld("forged")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)
	forgedPass := authservID + "; dkim=pass header.d=indyhall.test header.s=sel; dmarc=pass (p=reject dis=none) header.from=indyhall.test"
	bad := []struct {
		name string
		env  envelope
		sign func(*testing.T, []byte) []byte // nil: sent unsigned
		fail bool                            // the milters' verdict: dmarc=fail, or pass
	}{
		{"unsigned", envelope{}, nil, true},
		{"another authserv-id says pass", envelope{AuthResults: []string{"mx.evil.test; dmarc=pass header.from=indyhall.test"}}, nil, true},
		{"a forged pass of ours, below the real fail", envelope{AuthResults: []string{forgedPass}}, nil, true},
		{"signed by another domain", envelope{}, func(t *testing.T, raw []byte) []byte { return signedAs(t, "evil.test", raw) }, true},
		{"auto-reply", envelope{Extra: []string{"Auto-Submitted: auto-replied"}}, signed, false},
		{"bulk", envelope{Extra: []string{"Precedence: bulk"}}, signed, false},
		{"mailing list", envelope{Extra: []string{"List-Id: <roster.lists.indyhall.test>", "List-Unsubscribe: <mailto:leave@lists.indyhall.test>"}}, signed, false},
		{"two From", envelope{Extra: []string{"From: " + w.admin}}, nil, true},
		// Another sender's signed message with the manager's From added
		// on top: the signature verifies (it covers the bottom-most
		// From), OpenDMARC judges the top one: not aligned.
		{"From prepended above a signed one", envelope{From: w.eve}, func(t *testing.T, raw []byte) []byte {
			return prepend(signed(t, raw), "From: "+w.alex)
		}, true},
	}
	for i, c := range bad {
		e := c.env
		if e.From == "" {
			e.From = w.alex
		}
		e.To, e.Subject = w.bot, c.name
		raw := thunderbird(e, fmt.Sprintf("add member forged%d@evil.test\nverify adam@indyhall.test", i))
		if c.sign != nil {
			raw = c.sign(t, raw)
		}
		sendAsIs(t, e.From, w.bot, raw)
	}
	// A bounce: null envelope sender, from MAILER-DAEMON, a delivery report.
	bounce := "From: MAILER-DAEMON@visa.test (Mail Delivery System)\r\nTo: " + w.bot +
		"\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce1@visa.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n--B1\r\nContent-Type: text/plain\r\n\r\nadd member forged-bounce@evil.test\r\n--B1--\r\n"
	sendAsIs(t, "", w.bot, []byte(bounce))

	// Then a real message from the same manager: its reply proves the bot
	// read everything before it, and the roster shows nothing forged.
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "check"}, "list members"))
	r := waitMail(t, w.alex, "INBOX", 1)[0]
	mustContain(t, r, "OK: indyhall has 0 members")
	aside := waitMail(t, w.bot, "Rejected", len(bad)+1)
	if len(aside) != len(bad)+1 {
		t.Errorf("%d messages set aside, want %d", len(aside), len(bad)+1)
	}
	// The forgeries reached the bot with the real verifier's fail on top;
	// the automatic mail, signed, with a pass.
	verdicts := map[string]string{}
	for _, r := range aside {
		for _, v := range r.Header.Values("Authentication-Results") {
			if strings.HasPrefix(v, authservID+";") {
				verdicts[r.Header.Get("Subject")] = v
				break
			}
		}
	}
	for _, c := range bad {
		want := map[bool]string{true: "dmarc=fail", false: "dmarc=pass"}[c.fail]
		if !strings.Contains(verdicts[c.name], want) {
			t.Errorf("%s: the topmost Authentication-Results of %s is %q, want %s", c.name, authservID, verdicts[c.name], want)
		}
	}
	if testing.Verbose() {
		t.Logf("verdicts on top: %q", verdicts)
	}
	b.stop()
	// Nothing forged reached the store, and alex got exactly one reply.
	got := waitMail(t, w.alex, "INBOX", 1)
	if len(got) != 1 {
		t.Errorf("alex has %d messages, want only the one real reply", len(got))
	}
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *storage.Tx) error {
		return tx.Changes(0, func(c storage.Change) bool {
			if c.Kind == "member" {
				t.Errorf("forged or automatic mail changed the roster: %+v", c)
			}
			return true
		})
	})
	if !strings.Contains(b.log.String(), "not authenticated") || !strings.Contains(b.log.String(), "automatic mail") {
		t.Errorf("the log does not give the reasons:\n%s", b.log.String())
	}
}

// TestDeniedAndErrors: an authenticated sender without the right gets
// DENIED, bad arguments get ERROR, and neither writes anything.
func TestDeniedAndErrors(t *testing.T) {
	w := newWorld("denied")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)
	send(t, w.eve, w.bot, thunderbird(envelope{From: w.eve, To: w.bot, Subject: "let me in"},
		"add member eve@elsewhere.test\nverify adam@indyhall.test\nadd space evil name=Evil"))
	r := waitMail(t, w.eve, "INBOX", 1)[0]
	mustContain(t, r,
		"DENIED: "+w.eve+" is not a manager of any space",
		"DENIED: only space managers may verify visitors; to become one, ask the network's admins ("+w.admin+").",
		"DENIED: add space is for network admins only; to have it done, ask the network's admins ("+w.admin+").")
	send(t, w.alex, w.bot, gmail(envelope{From: w.alex, To: w.bot, Subject: "mistakes"},
		"add space mine name=Mine\n"+
			"add member not-an-address\n"+
			"add member ok@indyhall.test until=2027-13-45\n"+
			"update member nobody@indyhall.test status=active\n"+
			"add member x@indyhall.test name=Two Words\n"+
			"remove member ok@indyhall.test space=betahaus\n"+
			"list\n"+
			"add member fine@indyhall.test"))
	r = waitMail(t, w.alex, "INBOX", 1)[0]
	mustContain(t, r,
		"DENIED: add space is for network admins only; to have it done, ask",
		"ERROR: \"not-an-address\" is not a valid email address",
		"ERROR: \"2027-13-45\" is not a valid date",
		"ERROR: nobody@indyhall.test is not a member of indyhall",
		"ERROR: add member takes one address; quote names with spaces",
		"DENIED: you are not a manager of space betahaus; to become one, ask the network's admins ("+w.admin+").",
		"ERROR: \"list\" needs one of: list members, list spaces.",
		"OK: added fine@indyhall.test",
		"8 commands: 1 OK, 5 ERROR, 2 DENIED.")
	b.stop()
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *storage.Tx) error {
		ms, _ := tx.Members("indyhall")
		if len(ms) != 1 || ms[0].Email != "fine@indyhall.test" {
			t.Errorf("indyhall roster = %+v, want only fine@", ms)
		}
		if sp, _ := tx.Spaces(); len(sp) != 2 {
			t.Errorf("spaces = %+v, want 2", sp)
		}
		return nil
	})
}

// TestRestartDuplicateAndKill: the store survives a restart; the same
// message delivered twice takes effect once; a bot killed with SIGKILL
// after committing a message but before sending its reply sends the reply
// after restart, and the change exists exactly once.
func TestRestartDuplicateAndKill(t *testing.T) {
	w := newWorld("restart")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)
	add := thunderbird(envelope{From: w.alex, To: w.bot, Subject: "add", MessageID: "add-dup@indyhall.test"}, "add member dup@indyhall.test")
	send(t, w.alex, w.bot, add)
	mustContain(t, waitMail(t, w.alex, "INBOX", 1)[0], "OK: added dup@indyhall.test")
	b.stop()

	b = startBot(t, w, store, stack.SMTPAddr)
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "remove"}, "verify dup@indyhall.test\nremove member dup@indyhall.test"))
	r := waitMail(t, w.alex, "INBOX", 2)[1]
	mustContain(t, r, "VERIFIED: dup@indyhall.test", "OK: removed dup@indyhall.test")
	// The first message again, byte for byte: if it took effect twice,
	// dup@ would be a member again.
	send(t, w.alex, w.bot, add)
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "check"}, "verify dup@indyhall.test"))
	replies := waitMail(t, w.alex, "INBOX", 3)
	mustContain(t, replies[2], "NOT VERIFIED: dup@indyhall.test")
	b.stop()

	// Kill -9 between commit and reply: this bot's SMTP server is a dead
	// port, so the reply stays in the outbox after the commit.
	dead := deadAddr(t)
	b = startBot(t, w, store, dead)
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "kill", MessageID: "kill-1@indyhall.test"},
		"add member kill@indyhall.test"))
	// Handled and moved means committed.
	waitMail(t, w.bot, "Processed", 6) // setup, add, remove, add again, check, kill
	b.kill()
	if got := waitMail(t, w.alex, "INBOX", 3); len(got) != 3 {
		t.Fatalf("a reply left a bot without SMTP: %d messages", len(got))
	}
	b = startBot(t, w, store, stack.SMTPAddr)
	replies = waitMail(t, w.alex, "INBOX", 4)
	mustContain(t, replies[3], "OK: added kill@indyhall.test")
	if got := replies[3].Header.Get("In-Reply-To"); got != "<kill-1@indyhall.test>" {
		t.Errorf("reply after restart answers %q", got)
	}
	b.stop()
	adds := memberAdds(t, store)
	if adds["dup@indyhall.test"] != 1 || adds["kill@indyhall.test"] != 1 {
		t.Errorf("adds = %v, want exactly one each", adds)
	}
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *storage.Tx) error { return tx.Outbox(func(storage.OutboxItem) bool { n++; return true }) })
	if n != 0 {
		t.Errorf("%d replies still in the outbox", n)
	}
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestOutages: the IMAP server going away and the SMTP server going away
// lose nothing. The bot reconnects to Dovecot and answers what arrived
// meanwhile; a reply that cannot be sent while Postfix is down is retried
// and arrives once Postfix is back.
func TestOutages(t *testing.T) {
	w := newWorld("outage")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)
	ctx := ctxT(t)

	if err := stack.StopDovecot(ctx); err != nil {
		t.Fatal(err)
	}
	// Postfix keeps the message while Dovecot is down.
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "during imap outage"}, "add member imap@indyhall.test"))
	time.Sleep(500 * time.Millisecond)
	if err := stack.StartDovecot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stack.FlushQueue(ctx); err != nil {
		t.Fatal(err)
	}
	mustContain(t, waitMail(t, w.alex, "INBOX", 1)[0], "OK: added imap@indyhall.test")

	// A command that passed the MX (and its milters) before Postfix went
	// down is delivered straight into Dovecot over LMTP while it is down.
	judged := throughMX(t, w.alex, w.eve, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "during smtp outage"}, "verify imap@indyhall.test"))
	if err := stack.StopPostfix(ctx); err != nil {
		t.Fatal(err)
	}
	lmtp(t, w.alex, w.bot, judged)
	waitMail(t, w.bot, "Processed", 3) // setup, first, this one: committed, reply queued
	time.Sleep(time.Second)            // a failed attempt or two
	if err := stack.StartPostfix(ctx); err != nil {
		t.Fatal(err)
	}
	r := waitMail(t, w.alex, "INBOX", 2)[1]
	mustContain(t, r, "VERIFIED: imap@indyhall.test")
	b.stop()
	if !strings.Contains(b.log.String(), "will retry") {
		t.Errorf("no failed send was logged while Postfix was down:\n%s", b.log.String())
	}
}

// throughMX signs a message and passes it through Postfix and its milters
// into parking's mailbox (which must receive nothing else), and returns it
// as the MX handed it on: with the milters' Authentication-Results and
// Postfix's Received, without the Return-Path and Delivered-To of the
// delivery.
func throughMX(t *testing.T, from, parking string, raw []byte) []byte {
	t.Helper()
	send(t, from, parking, raw)
	got := waitMail(t, parking, "INBOX", 1)
	if len(got) != 1 {
		t.Fatalf("%s holds %d messages, want the one parked", parking, len(got))
	}
	return withoutLeading(got[0].Raw, "return-path", "delivered-to")
}

// lmtp delivers a message straight to Dovecot, as Postfix would.
func lmtp(t *testing.T, from, to string, raw []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", stack.LMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("itest"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Write(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := wc.CloseWithLMTPResponse(); err != nil {
		t.Fatalf("LMTP delivery to %s: %v", to, err)
	}
}

// memberAdds counts, per address, the member additions the store's
// change log holds: exactly-once shows as one each.
func memberAdds(t *testing.T, store string) map[string]int {
	t.Helper()
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	adds := map[string]int{}
	err = db.View(func(tx *storage.Tx) error {
		return tx.Changes(0, func(c storage.Change) bool {
			if c.Kind == "member" && c.Action == "add" {
				adds[c.Key]++
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return adds
}
