package itest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
)

// The trust boundary end to end: each attack goes through the real Postfix
// and its real OpenDKIM and OpenDMARC milters, which pass it (the verdict a
// provider writes when the signature verifies on the signed fields), and
// the bot refuses it.

func init() { worlds = append(worlds, "boundary", "bulk", "m365") }

// verdictOf is the topmost Authentication-Results of our MX: what the
// provider said of a message.
func verdictOf(r reply) string {
	for _, v := range r.Header.Values("Authentication-Results") {
		if strings.HasPrefix(v, authservID+";") {
			return v
		}
	}
	return ""
}

// noResults fails when a reply carries any result line: nothing in the
// message was taken for a command.
func noResults(t *testing.T, r reply) {
	t.Helper()
	for _, l := range strings.Split(r.Text, "\n") {
		for _, st := range []string{"OK:", "VERIFIED:", "NOT VERIFIED:", "ERROR:", "DENIED:"} {
			if strings.HasPrefix(l, st) {
				t.Errorf("a result line in the reply: %q\n%s", l, r.Text)
			}
		}
	}
}

// waitSubject waits until user's INBOX holds a message with this Subject,
// and returns it: for mailboxes where other mail (a digest) may arrive too.
func waitSubject(t *testing.T, user, subject string) reply {
	t.Helper()
	ctx := ctxT(t)
	for {
		raws, err := stack.WaitForMessages(ctx, user, password, "INBOX", 0)
		if err != nil {
			t.Fatalf("reading %s: %v", user, err)
		}
		for _, raw := range raws {
			if r := parseReply(t, raw); r.Header.Get("Subject") == subject {
				return r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no message %q reached %s", subject, user)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// htmlMail is an HTML-only message as a mail client writes it.
func htmlMail(e envelope, html string) []byte {
	h := e.Header("Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	return []byte(h + "\r\n" + crlf(html) + "\r\n")
}

func TestTrustBoundaryEndToEnd(t *testing.T) {
	w := newWorld("boundary")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "roster"}, "add member adam@indyhall.test name=Adam"))
	mustContain(t, waitMail(t, w.alex, "INBOX", 1)[0], "OK: added Adam <adam@indyhall.test>")

	// 1. Signed mail of a manager and of the admin, once sent to eve (a
	// supplier): eve adds a Subject of her own on top and sends them to
	// the bot. And a command alex really sent to the bot, sent again by
	// someone who saw it, with a new Message-ID on top.
	toEve := signed(t, thunderbird(envelope{From: w.alex, To: w.eve, Subject: "your invoice"}, "Thanks, paid today."))
	adminToEve := signed(t, thunderbird(envelope{From: w.admin, To: w.eve, Subject: "welcome"}, "Welcome aboard."))
	sendAsIs(t, w.eve, w.bot, prepend(toEve, "Subject: add member "+w.eve+" name=Eve"))
	sendAsIs(t, w.eve, w.bot, prepend(adminToEve, "Subject: add manager "+w.eve+" space=indyhall"))
	verify := signed(t, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "desk"}, "verify adam@indyhall.test"))
	sendAsIs(t, w.alex, w.bot, verify)
	mustContain(t, waitMail(t, w.alex, "INBOX", 2)[1], "VERIFIED: adam@indyhall.test")
	sendAsIs(t, w.eve, w.bot, prepend(verify, "Message-ID: <replayed@elsewhere.test>"))

	// 2. alex forwards a visitor's mail, with a greeting and no command of
	// his own; and one whose Subject was a command.
	forward := "FYI, see below.\n\nAlex\n\n---------- Forwarded message ---------\nFrom: Visitor <visitor@evil.test>\n" +
		"Date: Mon, 30 Nov 2026 at 09:12\nSubject: membership\nTo: <" + w.alex + ">\n\n" +
		"add member visitor@evil.test name=Visitor\nremove member adam@indyhall.test\n"
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "Fwd: membership"}, forward))
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "Fwd: remove member adam@indyhall.test"}, "FYI"))

	// 3. HTML the manager never saw: hidden, white on white, 1 px.
	send(t, w.alex, w.bot, htmlMail(envelope{From: w.alex, To: w.bot, Subject: "visitor"},
		`<html><body><p>verify adam@indyhall.test</p>`+
			`<p style="display:none">add member hidden@evil.test</p>`+
			`<p><span style="color:#ffffff">add member white@evil.test</span></p>`+
			`<div style="font-size:1px">remove member adam@indyhall.test</div></body></html>`))

	// 4. A message alex wrote to mad with the bot in Bcc.
	bcc := signed(t, thunderbird(envelope{From: w.alex, To: w.mad, Subject: "our visitors"}, "add member bcc@indyhall.test"))
	sendAsIs(t, w.alex, w.bot, bcc)

	// 5. 50 list members lines in one small mail: one roster file.
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "lists"}, strings.Repeat("list members\n", 50)))

	// Alex's answers, in order: the two forwards, the hidden HTML, the
	// Bcc, the lists. The forwards changed nothing and ran nothing.
	got := waitMail(t, w.alex, "INBOX", 7)
	bySubject := map[string]reply{}
	for _, r := range got[2:] {
		bySubject[r.Header.Get("Subject")] = r
	}
	fwd := bySubject["Re: Fwd: membership"]
	noResults(t, fwd)
	mustContain(t, fwd, "FYI, see below.", "0 commands")
	noResults(t, bySubject["Re: Fwd: remove member adam@indyhall.test"])
	hidden := bySubject["Re: visitor: VERIFIED adam@indyhall.test (indyhall)"] // a single verify: its answer follows the subject
	mustContain(t, hidden, "VERIFIED: adam@indyhall.test", "1 command: 1 VERIFIED.")
	mustNotContain(t, hidden, "hidden@", "white@", "removed")
	mustContain(t, bySubject["Re: our visitors"], "ERROR:", "does not name "+w.bot)
	lists := bySubject["Re: lists"]
	if n := strings.Count(string(lists.Raw), "Content-Disposition: attachment"); n != 1 {
		t.Errorf("50 list lines: %d attachments, want 1", n)
	}
	if len(lists.Raw) > config.Default().Limits.MaxReplyBytes {
		t.Errorf("a reply of %d bytes", len(lists.Raw))
	}

	// 6. Strangers: 30 of one domain, rotating local parts. The domain's
	// budget answers 20; the rest is set aside at once; and the manager
	// at the front desk is answered all the same.
	for i := range 30 {
		from := fmt.Sprintf("stranger%d@elsewhere.test", i)
		send(t, from, w.bot, thunderbird(envelope{From: from, To: w.bot, Subject: "hello"}, "help"))
	}
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "after the strangers"}, "verify adam@indyhall.test"))
	mustContain(t, waitMail(t, w.alex, "INBOX", 8)[7], "VERIFIED: adam@indyhall.test")

	// The forged ones went aside, and the provider had passed them.
	aside := waitMail(t, w.bot, "Rejected", 3+10)
	var passed int
	for _, r := range aside {
		v := verdictOf(r)
		if strings.Contains(v, "dmarc=pass") && strings.HasPrefix(r.Header.Get("Subject"), "add m") ||
			strings.Contains(v, "dmarc=pass") && r.Header.Get("Subject") == "desk" {
			passed++
		}
	}
	if passed != 3 {
		t.Errorf("%d of the 3 messages with a field added on top were set aside with dmarc=pass from the real verifier", passed)
	}
	b.stop()
	log := b.log.String()
	// The pipeline's own lines (the inbox logs the move too).
	if n := strings.Count(log, `msg="message set aside" reason="header fields that may occur once occur more often`); n != 3 {
		t.Errorf("%d messages set aside for a repeated field, want 3", n)
	}
	if n := strings.Count(log, `msg="message set aside" reason="a stranger over the daily or hourly budget`); n != 10 {
		t.Errorf("%d strangers over the budget, want 10", n)
	}

	// Nothing of it reached the store.
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *storage.Tx) error {
		for _, a := range []string{w.eve, "visitor@evil.test", "hidden@evil.test", "white@evil.test", "bcc@indyhall.test"} {
			if of, _ := tx.MembershipsOf(a); len(of) != 0 {
				t.Errorf("%s became a member: %+v", a, of)
			}
		}
		if _, ok, _ := tx.Member("indyhall", "adam@indyhall.test"); !ok {
			t.Error("adam was removed")
		}
		if spaces, _ := tx.ManagedSpaces(w.eve); len(spaces) != 0 {
			t.Errorf("eve became a manager of %v", spaces)
		}
		return nil
	})
}

// TestWipeNeedsConfirmation: a roster that has been there for a month,
// deactivated by a manager in two messages of 15: the second waits for
// confirm TOKEN, which the manager then sends in a reply.
func TestWipeNeedsConfirmation(t *testing.T) {
	w := newWorld("bulk")
	store := filepath.Join(t.TempDir(), "visa.db")
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	month := time.Now().AddDate(0, -1, 0)
	err = db.Update(func(tx *storage.Tx) error {
		if err := tx.PutSpace(storage.Space{ID: "indyhall", Name: "Indy Hall", Created: month}); err != nil {
			return err
		}
		if err := tx.AddManager(storage.Manager{Email: w.alex, Space: "indyhall", Added: month}); err != nil {
			return err
		}
		for i := range 30 {
			if err := tx.PutMember(storage.Member{Space: "indyhall", Email: fmt.Sprintf("m%02d@indyhall.test", i),
				Status: storage.StatusActive, Added: month, Updated: month}); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := startBot(t, w, store, stack.SMTPAddr)
	lines := func(from, to int) string {
		var s strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&s, "update member m%02d@indyhall.test status=inactive\n", i)
		}
		return s.String()
	}
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "leavers"}, lines(0, 15)))
	// The space has been there for a month: alex gets the digest the
	// bot missed too (see TestDigestAfterDowntime).
	first := waitSubject(t, w.alex, "Re: leavers")
	mustContain(t, first, "15 commands: 15 OK.")
	mustNotContain(t, first, "confirm")
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "more leavers"}, lines(15, 30)))
	second := waitSubject(t, w.alex, "Re: more leavers")
	mustContain(t, second, "and 15 were made in the last 24 hours", "reply with the line: confirm ")
	tok := second.Text[strings.Index(second.Text, "reply with the line: confirm ")+len("reply with the line: confirm "):]
	tok = strings.Fields(tok)[0]
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "Re: more leavers (confirmed)",
		InReplyTo: strings.Trim(second.Header.Get("Message-Id"), "<>")}, "confirm "+tok))
	mustContain(t, waitSubject(t, w.alex, "Re: more leavers (confirmed)"), "OK: made 15 changes as you confirmed")
	b.stop()
	db, err = storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *storage.Tx) error {
		ms, _ := tx.Members("indyhall")
		for _, m := range ms {
			if m.Status != storage.StatusInactive {
				t.Errorf("%s is still %s", m.Email, m.Status)
			}
		}
		return nil
	})
}

// TestMicrosoft365SetupEndToEnd: the bot set up as the README says for
// Microsoft 365 (own DKIM check, no authserv_id) believes no
// Authentication-Results at all, whatever id it carries, and authenticates
// signed mail itself, with the keys the real DNS server publishes.
func TestMicrosoft365SetupEndToEnd(t *testing.T) {
	w := newWorld("m365")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBotWith(t, w, store, stack.SMTPAddr, func(c *config.Config) {
		c.Auth.AuthservID, c.Auth.VerifyDKIM, c.Auth.DNSServer = "", true, milters.DNS.Addr
	})
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "setup"},
		"add space indyhall name=\"Indy Hall\"\nadd manager "+w.alex+" space=indyhall"))
	mustContain(t, waitMail(t, w.admin, "INBOX", 1)[0], "2 commands: 2 OK.")
	welcomed(t, w.alex)
	// Unsigned, with results that say pass under every id a forger might
	// guess (M365's own carry none).
	forged := thunderbird(envelope{From: w.alex, To: w.bot, Subject: "forged", AuthResults: []string{
		"spf=pass smtp.mailfrom=indyhall.test; dkim=pass header.d=indyhall.test; dmarc=pass action=none header.from=indyhall.test",
		"any-name; dkim=pass header.d=indyhall.test; dmarc=pass header.from=indyhall.test",
	}}, "add member forged@evil.test")
	sendAsIs(t, w.alex, w.bot, forged)
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "real"}, "add member real@indyhall.test"))
	mustContain(t, waitMail(t, w.alex, "INBOX", 1)[0], "OK: added real@indyhall.test")
	aside := waitMail(t, w.bot, "Rejected", 1)
	if len(aside) != 1 || aside[0].Header.Get("Subject") != "forged" {
		t.Errorf("set aside: %d messages", len(aside))
	}
	b.stop()
	if !strings.Contains(b.log.String(), "own DKIM check") {
		t.Errorf("the log does not say the own DKIM check refused the forgery")
	}
}
