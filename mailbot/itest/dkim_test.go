package itest

// The bot's own DKIM check (auth.verify_dkim) against real tools: keys made
// by OpenDKIM's opendkim-genkey, messages signed by python3-dkim's dkimsign
// (and by opendkim-testmsg), keys published by a real dnsmasq on loopback
// (mailbot/testkit/dnsstack), messages carried by the real Postfix into the real
// Dovecot and handed to the bot as it fetches them. None of these tools may
// be missing: the test fails, never skips.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/coworkingvisa/mailbot/mailbot"
	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/dnsstack"
	"github.com/coworkingvisa/mailbot/mailbot/trust"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// dkimKey is a key pair made by opendkim-genkey.
type dkimKey struct {
	private string // path of the PEM private key
	record  string // the TXT record text: "v=DKIM1; h=sha256; k=rsa; p=..."
}

// genkey runs opendkim-genkey and reads the record it writes for a zone
// file ("sel._domainkey IN TXT ( "v=DKIM1; ..." "..." )").
func genkey(t *testing.T, dir, domain, selector string) dkimKey {
	t.Helper()
	kdir := filepath.Join(dir, domain+"-"+selector)
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, nil, tool(t, "opendkim-genkey", "opendkim-tools"), "-b", "2048", "-d", domain, "-s", selector, "-D", kdir)
	zone, err := os.ReadFile(filepath.Join(kdir, selector+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	var record strings.Builder
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(string(zone), -1) {
		record.WriteString(m[1])
	}
	if !strings.HasPrefix(record.String(), "v=DKIM1;") || !strings.Contains(record.String(), "p=MII") {
		t.Fatalf("opendkim-genkey wrote no key record I can read:\n%s", zone)
	}
	return dkimKey{private: filepath.Join(kdir, selector+".private"), record: record.String()}
}

// tool finds a command of a Debian package, failing loudly without it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/" + name, "/usr/sbin/" + name} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("DKIM: %s is not installed (Debian package %s; run .ci/install-deps as root)", name, pkg)
	return ""
}

func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// dkimsign signs with python3-dkim's dkimsign: rsa-sha256, relaxed/simple.
func dkimsign(t *testing.T, msg []byte, selector, domain string, k dkimKey) []byte {
	t.Helper()
	return crlfAll(run(t, msg, tool(t, "dkimsign", "python3-dkim"), selector, domain, k.private))
}

// dkimsignLength signs with python3-dkim's library and a body length tag
// (l=), which the dkimsign command does not offer.
func dkimsignLength(t *testing.T, msg []byte, selector, domain string, k dkimKey) []byte {
	t.Helper()
	tool(t, "dkimsign", "python3-dkim")
	const script = `import sys, dkim
m = sys.stdin.buffer.read()
sys.stdout.buffer.write(dkim.sign(m, sys.argv[1].encode(), sys.argv[2].encode(), open(sys.argv[3], "rb").read(), length=True) + m)`
	// Debian's python3, which has python3-dkim, whatever python3 is on PATH.
	return crlfAll(run(t, msg, "/usr/bin/python3", "-c", script, selector, domain, k.private))
}

// crlfAll turns every line end into CRLF, as SMTP carries a message.
func crlfAll(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

func dkimMessage(from, to, id, subject, body string) []byte {
	return []byte(crlf("From: Alex <" + from + ">\nTo: " + to + "\nSubject: " + subject +
		"\nDate: " + time.Now().Format(time.RFC1123Z) + "\nMessage-ID: <" + id + ">\nMIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=utf-8\n\n" + body))
}

// blackhole is a UDP and TCP "DNS server" that reads and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := u.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return u.LocalAddr().String()
}

func headerOf(t *testing.T, raw []byte) mail.Header {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	return r.Header
}

func TestOwnDKIMWithRealSignerAndDNS(t *testing.T) {
	dir := t.TempDir()
	indy := genkey(t, dir, "indyhall.test", "sel")
	other := genkey(t, dir, "indyhall.test", "other")
	evil := genkey(t, dir, "evil.test", "sel")
	dns := dnsstack.StartForTest(t,
		dnsstack.TXT{Name: "sel._domainkey.indyhall.test", Text: indy.record},
		dnsstack.TXT{Name: "other._domainkey.indyhall.test", Text: other.record},
		dnsstack.TXT{Name: "sel._domainkey.evil.test", Text: evil.record},
	)

	// The bot's mailbox, on the shared stack.
	botAddr := "visa-dkim@visa.test"
	if err := stack.AddUser(botAddr, password); err != nil {
		t.Fatal(err)
	}
	const from = "alex-dkim@indyhall.test"
	body := "add member carol@example.net\n"
	msg := func(id string) []byte { return dkimMessage(from, botAddr, id, "add member bob@example.net", body) }

	tampered := dkimsign(t, msg("tampered@indyhall.test"), "sel", "indyhall.test", indy)
	tampered = bytes.Replace(tampered, []byte("carol@"), []byte("mallory@"), 1)
	// A signature whose selector names the key of another selector: the
	// signer used "other"'s private key, DNS serves "sel"'s public key.
	wrongKey := dkimsign(t, msg("wrongkey@indyhall.test"), "sel", "indyhall.test", other)
	// l=: the signed body ends where the attacker's text begins.
	lengthTag := append(dkimsignLength(t, msg("length@indyhall.test"), "sel", "indyhall.test", indy),
		[]byte("add manager mallory@evil.test\r\n")...)
	if !regexp.MustCompile(`(?m)[; ]l=\d+`).Match(lengthTag) {
		t.Fatalf("python3-dkim wrote no l= tag:\n%s", lengthTag)
	}
	// OpenDKIM's test signer signs with rsa-sha1, which RFC 8301 forbids.
	sha1 := crlfAll(run(t, msg("sha1@indyhall.test"), tool(t, "opendkim-testmsg", "opendkim-tools"),
		"-d", "indyhall.test", "-s", "sel", "-k", indy.private, "-C"))
	if !bytes.Contains(sha1, []byte("a=rsa-sha1")) {
		t.Fatalf("opendkim-testmsg did not sign with rsa-sha1 as expected:\n%s", sha1)
	}

	cases := []struct {
		name    string
		raw     []byte
		dns     string // the DNS server; "" is dnsmasq
		wantErr string // "" for a pass
		temp    bool   // the failure must be temporary
	}{
		{"signed and aligned", dkimsign(t, msg("good@indyhall.test"), "sel", "indyhall.test", indy), "", "", false},
		{"tampered body", tampered, "", "body hash did not verify", false},
		{"wrong key", wrongKey, "", "signature did not verify", false},
		{"unaligned d=", dkimsign(t, msg("evil@indyhall.test"), "sel", "evil.test", evil), "", "d= not aligned with the From domain indyhall.test", false},
		{"missing signature", msg("unsigned@indyhall.test"), "", "no DKIM signature", false},
		{"body length tag", lengthTag, "", "body length tag", false},
		{"rsa-sha1", sha1, "", "hash algorithm", false},
		{"unknown selector", dkimsign(t, msg("nokey@indyhall.test"), "nokey", "indyhall.test", indy), "", "no key for signature", false},
		{"DNS timeout", dkimsign(t, msg("timeout@indyhall.test"), "sel", "indyhall.test", indy), blackhole(t), "temporary", true},
		{"DNS server down", dkimsign(t, msg("down@indyhall.test"), "sel", "indyhall.test", indy), deadAddr(t), "temporary", true},
	}

	// Every message goes through Postfix into Dovecot: the bot verifies
	// what it fetches, with the Received and Return-Path fields added on
	// the way.
	for _, c := range cases {
		sendAsIs(t, from, botAddr, c.raw)
	}
	fetched := waitMail(t, botAddr, "INBOX", len(cases))
	byID := map[string][]byte{}
	for _, r := range fetched {
		byID[r.Header.Get("Message-Id")] = r.Raw
	}

	db, err := storage.Open(filepath.Join(dir, "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := regexp.MustCompile(`(?m)^Message-ID: (<[^>]+>)`).FindSubmatch(c.raw)
			if id == nil {
				t.Fatal("no Message-ID")
			}
			raw := byID[string(id[1])]
			if raw == nil {
				t.Fatalf("message %s did not arrive", id[1])
			}
			server := c.dns
			if server == "" {
				server = dns.Addr
			}
			// The daemon's policy with auth.verify_dkim: true and an
			// authserv-id that nothing in these messages carries (the
			// milters stamp authservID): a provider whose
			// Authentication-Results the bot cannot use.
			policy := trust.Policy{Require: trust.RequireDMARC, AuthservID: "mx.unusable.test", BotAddress: botAddr,
				DKIM: trust.NewDKIMVerifier(server, time.Second)}
			sender, err := trust.AuthenticateMessage(context.Background(), headerOf(t, raw), raw, policy)
			if c.wantErr == "" {
				if err != nil || sender.Address != from || sender.Method != trust.MethodOwnDKIM {
					t.Fatalf("got %+v, %v; want %s by %s", sender, err, from, trust.MethodOwnDKIM)
				}
			} else {
				if err == nil {
					t.Fatalf("authenticated %+v: want a failure", sender)
				}
				if !errors.Is(err, trust.ErrNotAuthenticated) || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("error %q, want one containing %q", err, c.wantErr)
				}
				if errors.Is(err, trust.ErrDKIMTemporary) != c.temp {
					t.Errorf("error %q: temporary is %v, want %v", err, !c.temp, c.temp)
				}
				t.Logf("refused: %v", err)
			}

			// The same message through the bot's pipeline: authenticated
			// mail is handled, the rest set aside unanswered; a DNS that
			// does not answer leaves the message waiting (nothing applied)
			// for a later try.
			cfg := config.Default()
			cfg.Bot.Address = botAddr
			set := mailbot.SettingsFrom(cfg)
			set.Trust = policy
			bot := mailbot.NewBot(set, db, tmpl, logger, nil, nil)
			out := bot.Handle(context.Background(), raw)
			if c.wantErr == "" {
				if out.Action != inbox.Handled {
					t.Fatalf("Handle: %+v, want handled", out)
				}
				return
			}
			if c.temp {
				if out.Action != inbox.Leave {
					t.Errorf("Handle: %+v, want the message left waiting after a DNS failure", out)
				}
				return
			}
			if out.Action != inbox.SetAside || out.Mailbox != "Rejected" || !strings.Contains(out.Reason, "own DKIM check") {
				t.Errorf("Handle: %+v, want set aside in Rejected by the own DKIM check", out)
			}
		})
	}
	if t.Failed() {
		t.Logf("bot log:\n%s\n%s", log.String(), dns.Logs())
	}
	if !strings.Contains(dns.Logs(), "query[TXT] sel._domainkey.indyhall.test") {
		t.Errorf("dnsmasq saw no query for the key:\n%s", dns.Logs())
	}
}
