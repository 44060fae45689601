package itest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
)

// The loop tests run real automatic responders against the bot: Dovecot's
// Sieve (Pigeonhole) at delivery on the managers' mailboxes, and Postfix's
// own bounces. Whatever the responder does, each message a person sent gets
// at most one reply, and the responder's mail is set aside unanswered.

// startLoopBot starts a bot that requires no authentication, as if every
// responder's mail passed DMARC at the bot's MX (a provider's vacation
// notice does): only the bot's defences against automatic mail stand
// between a responder and a loop.
func startLoopBot(t *testing.T, w world) *bot {
	t.Helper()
	store := filepath.Join(t.TempDir(), "visa.db")
	return startBotConfig(t, writeBotConfig(t, botConfig{bot: w.bot, admin: w.admin, store: store, adjust: func(c *config.Config) {
		// See above: no authentication, so that only the defences
		// against automatic mail stand.
		c.Auth.Require = "none"
	}}))
}

// loopQuiet is how long the tests watch for a ping-pong after the last
// automatic message arrived.
const loopQuiet = 3 * time.Second

// vacationScript is a manager's out-of-office notice, as a webmail's
// "vacation" setting writes it.
const vacationScript = `require ["vacation"];
vacation :days 1 :subject "Out of office" "I am away until Monday. For urgent matters call the front desk.";
`

func TestVacationResponder(t *testing.T) {
	w := world{bot: "visa-loop@visa.test", admin: "admin-loop@visa.test", alex: "away-loop@indyhall.test"}
	addUsers(t, w.bot, w.admin, w.alex)
	if err := stack.SetSieve(w.alex, vacationScript); err != nil {
		t.Fatal(err)
	}
	b := startLoopBot(t, w)
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "setup"},
		"add space indyhall name=\"Indy Hall\"\nadd manager "+w.alex+" space=indyhall"))
	mustContain(t, waitMail(t, w.admin, "INBOX", 1)[0], "2 commands: 2 OK.")
	welcomed(t, w.alex) // automatic (Auto-Submitted): the vacation does not answer it

	// The manager, on vacation, still sends a command (from a phone, or a
	// colleague from the same account). The bot answers once; the reply
	// says it is automatic, so a conforming responder stays silent.
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "add", MessageID: "vac-1@indyhall.test"},
		"add member vac@indyhall.test"))
	first := waitMail(t, w.alex, "INBOX", 1)[0]
	mustContain(t, first, "OK: added vac@indyhall.test")
	time.Sleep(loopQuiet)
	if n := len(messagesIn(t, w.bot, "INBOX")) + len(messagesIn(t, w.bot, "Rejected")); n != 0 {
		t.Fatalf("the vacation answered the bot's reply, which says it is automatic: %d messages came back", n)
	}

	// A relay that strips the RFC 3834 markers (a forwarding service, a
	// transport rule) hands the same reply to the manager's mailbox again,
	// from the bot's envelope address: now the vacation answers, to the bot.
	copyRaw := stripAutoMarkers(first.Raw)
	copyRaw = append([]byte("X-Test: stripped copy\r\n"), copyRaw...)
	if err := stack.Send(ctxT(t), w.bot, []string{w.alex}, copyRaw); err != nil {
		t.Fatal(err)
	}
	waitHandled(t, w.bot, 3) // setup, the command, the notice
	time.Sleep(loopQuiet)

	// The exchange stopped: one reply to the one command, the notice set
	// aside unanswered, nothing else anywhere.
	aside := messagesIn(t, w.bot, "Rejected")
	if len(aside) != 1 || aside[0].Header.Get("Subject") != "Out of office" {
		t.Errorf("%d messages set aside, want the vacation notice alone", len(aside))
	} else if got := aside[0].Header.Get("Return-Path"); got != "<>" {
		t.Errorf("vacation notice Return-Path = %q, want the null sender", got)
	}
	inbox := messagesIn(t, w.alex, "INBOX")
	replies := 0
	for _, r := range inbox {
		if r.Header.Get("X-Test") == "" {
			replies++
		}
	}
	if replies != 1 || len(inbox) != 2 {
		t.Errorf("the manager has %d bot replies (%d messages), want 1 reply and the stripped copy", replies, len(inbox))
	}
	if n := len(messagesIn(t, w.bot, "INBOX")); n != 0 {
		t.Errorf("%d messages left in the bot's inbox", n)
	}
	b.stop()
	if !strings.Contains(b.log.String(), "automatic mail") {
		t.Errorf("the log does not say why the notice was set aside:\n%s", b.log.String())
	}
}

// TestRedirectingResponder: a manager's Sieve sends a copy of everything it
// receives back to the bot (a forwarding rule gone wrong). The bot's own reply
// comes back to it and is set aside unanswered.
func TestRedirectingResponder(t *testing.T) {
	w := world{bot: "visa-fwd@visa.test", admin: "admin-fwd@visa.test", alex: "fwd-loop@indyhall.test"}
	addUsers(t, w.bot, w.admin, w.alex)
	if err := stack.SetSieve(w.alex, fmt.Sprintf("require [\"copy\"];\nredirect :copy %q;\n", w.bot)); err != nil {
		t.Fatal(err)
	}
	b := startLoopBot(t, w)
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "setup"},
		"add space indyhall name=\"Indy Hall\"\nadd manager "+w.alex+" space=indyhall"))
	mustContain(t, waitMail(t, w.admin, "INBOX", 1)[0], "2 commands: 2 OK.")
	welcomed(t, w.alex) // its copy comes back to the bot too, and is set aside

	send(t, w.alex, w.bot, gmail(envelope{From: w.alex, To: w.bot, Subject: "roster", MessageID: "fwd-1@indyhall.test"},
		"add member fwd@indyhall.test"))
	mustContain(t, waitMail(t, w.alex, "INBOX", 1)[0], "OK: added fwd@indyhall.test")
	waitHandled(t, w.bot, 4) // setup, the welcome come back, the command, the reply come back
	time.Sleep(loopQuiet)
	aside := messagesIn(t, w.bot, "Rejected")
	if len(aside) != 2 || !isWelcome(aside[0].Raw) || aside[1].Header.Get("In-Reply-To") != "<fwd-1@indyhall.test>" {
		t.Errorf("%d messages set aside, want the welcome and the bot's own reply come back, alone", len(aside))
	}
	if n := len(messagesIn(t, w.alex, "INBOX")); n != 1 {
		t.Errorf("the manager has %d replies, want 1", n)
	}
	b.stop()
}

// TestBounceLoop: the bot answers an authenticated sender whose mailbox does
// not exist; Postfix bounces the reply back to the bot from MAILER-DAEMON
// with the null sender. The bounce is set aside, and nothing answers it.
func TestBounceLoop(t *testing.T) {
	w := world{bot: "visa-bounce@visa.test", admin: "admin-bounce@visa.test"}
	ghost := "ghost-bounce@indyhall.test" // no mailbox
	addUsers(t, w.bot, w.admin)
	b := startLoopBot(t, w)
	send(t, ghost, w.bot, thunderbird(envelope{From: ghost, To: w.bot, Subject: "hello", MessageID: "ghost-1@indyhall.test"},
		"verify someone@indyhall.test"))
	waitHandled(t, w.bot, 2) // the command, the bounce
	time.Sleep(loopQuiet)
	aside := messagesIn(t, w.bot, "Rejected")
	if len(aside) != 1 {
		t.Fatalf("%d messages set aside, want the one bounce", len(aside))
	}
	bounce := aside[0]
	if got := bounce.Header.Get("Return-Path"); got != "<>" {
		t.Errorf("bounce Return-Path = %q, want the null sender", got)
	}
	if from := bounce.Header.Get("From"); !strings.Contains(strings.ToUpper(from), "MAILER-DAEMON") {
		t.Errorf("set aside: From %q, want the bounce", from)
	}
	if !bytes.Contains(bounce.Raw, []byte(ghost)) {
		t.Errorf("the bounce does not name %s", ghost)
	}
	b.stop()
	// Postfix's log has one line per delivery attempt: the bot wrote to
	// the ghost once, and never to MAILER-DAEMON or postmaster.
	plog, err := os.ReadFile(filepath.Join(stack.Dir, "postfix", "postfix.log"))
	if err != nil {
		t.Fatal(err)
	}
	toGhost, toDaemon := 0, 0
	for _, l := range strings.Split(string(plog), "\n") {
		if strings.Contains(l, "to=<"+ghost+">") && strings.Contains(l, "status=") {
			toGhost++
		}
		ll := strings.ToLower(l)
		if strings.Contains(ll, "to=<mailer-daemon@") || strings.Contains(ll, "to=<postmaster@") {
			toDaemon++
		}
	}
	if toGhost != 1 || toDaemon != 0 {
		t.Errorf("Postfix delivered %d replies to %s and %d messages to MAILER-DAEMON or postmaster; want 1 and 0", toGhost, ghost, toDaemon)
	}
	if !strings.Contains(b.log.String(), "automatic mail") {
		t.Errorf("the log does not say why the bounce was set aside:\n%s", b.log.String())
	}
}

// stripAutoMarkers removes the header fields that tell responders a message
// is automatic, as a careless relay might, and the trace fields of the first
// delivery.
func stripAutoMarkers(raw []byte) []byte {
	drop := map[string]bool{"auto-submitted": true, "precedence": true, "x-auto-response-suppress": true,
		"x-loop": true, "return-path": true, "delivered-to": true, "received": true}
	var out bytes.Buffer
	inHeader, skipping := true, false
	for _, l := range bytes.SplitAfter(raw, []byte("\n")) {
		if inHeader {
			switch {
			case len(bytes.TrimRight(l, "\r\n")) == 0:
				inHeader = false
			case l[0] == ' ' || l[0] == '\t':
				if skipping {
					continue
				}
			default:
				name, _, _ := bytes.Cut(l, []byte(":"))
				skipping = drop[strings.ToLower(string(name))]
				if skipping {
					continue
				}
			}
		}
		out.Write(l)
	}
	return out.Bytes()
}

// waitHandled waits until the bot has moved n messages out of its inbox,
// to Processed or Rejected, whichever they went to.
func waitHandled(t *testing.T, bot string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := 0
		for _, mb := range []string{"Processed", "Rejected"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			raws, err := stack.WaitForMessages(ctx, bot, password, mb, 0)
			cancel()
			if err == nil {
				got += len(raws)
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot handled %d messages within 60 s, want %d", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// messagesIn returns what a mailbox holds now; a mailbox that does not
// exist (the bot creates Rejected when it first sets mail aside) is empty.
func messagesIn(t *testing.T, user, mailbox string) []reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raws, err := stack.WaitForMessages(ctx, user, password, mailbox, 0)
	if err != nil {
		if strings.Contains(err.Error(), "EXAMINE") && strings.Contains(err.Error(), "exist") {
			return nil
		}
		t.Fatalf("reading %s of %s: %v", mailbox, user, err)
	}
	out := make([]reply, len(raws))
	for i, r := range raws {
		out[i] = parseReply(t, r)
	}
	return out
}
