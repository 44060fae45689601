package verifier_test

// What the real verifier says, end to end: messages signed by
// mailbot/testkit/signer go through the real Postfix, whose milters are the
// real OpenDKIM and OpenDMARC asking the real dnsmasq, into the real
// Dovecot; the tests read the Authentication-Results of the delivered
// message over IMAP.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/signer"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/verifier"
)

const password = "pw"

// field is one header field of a delivered message.
type field struct{ key, value string }

// mailboxes receive one message each.
var mailboxes = []string{"signed", "unsigned", "unaligned", "prepended-Subject", "prepended-Message-ID", "forged", "concurrent"}

// deliver sends raw through Postfix and the milters to mailbox (one of
// mailboxes) and returns the delivered header, topmost field first, with
// folding undone.
func deliver(t *testing.T, s *mailstack.Stack, mailbox string, raw []byte) []field {
	t.Helper()
	mailbox += "@visa.test"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Send(ctx, "alex@indyhall.test", []string{mailbox}, raw); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs, err := s.WaitForMessages(ctx, mailbox, password, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msgs[0])))
	if err != nil {
		t.Fatal(err)
	}
	var out []field
	for f := h.Fields(); f.Next(); {
		v := strings.Join(strings.Fields(f.Value()), " ")
		out = append(out, field{strings.ToLower(f.Key()), v})
	}
	return out
}

// results are the Authentication-Results values of the delivered header,
// topmost first.
func results(h []field) []string {
	var out []string
	for _, f := range h {
		if f.key == "authentication-results" {
			out = append(out, f.value)
		}
	}
	return out
}

func values(h []field, key string) []string {
	var out []string
	for _, f := range h {
		if f.key == key {
			out = append(out, f.value)
		}
	}
	return out
}

// message is a plain message from alex@indyhall.test.
func message(id, subject string) []byte {
	return []byte(strings.ReplaceAll("From: Alex <alex@indyhall.test>\nTo: bot@visa.test\nSubject: "+subject+
		"\nDate: Mon, 3 Feb 2025 15:12:34 +0100\nMessage-ID: <"+id+">\nMIME-Version: 1.0\n"+
		"Content-Type: text/plain; charset=utf-8\n\nverify someone@indyhall.test\n", "\n", "\r\n"))
}

// What OpenDMARC and OpenDKIM write, as seen on this machine (OpenDKIM 2.11,
// OpenDMARC 1.4.2): OpenDMARC's field on top, OpenDKIM's below it, both
// above Postfix's Received.
const (
	dmarcPass  = verifier.AuthservID + "; dmarc=pass (p=reject dis=none) header.from=indyhall.test"
	dmarcFail  = verifier.AuthservID + "; dmarc=fail (p=reject dis=none) header.from=indyhall.test"
	dkimPass   = verifier.AuthservID + "; dkim=pass (2048-bit key; unprotected) header.d=indyhall.test header.i=@indyhall.test header.a=rsa-sha256 header.s=" + signer.Selector + " header.b="
	dkimNone   = verifier.AuthservID + "; dkim=none; dkim-atps=neutral"
	forgedPass = verifier.AuthservID + "; dmarc=pass header.from=indyhall.test"
)

func TestRealVerdicts(t *testing.T) {
	sg, err := signer.New(t.TempDir(), "indyhall.test", "evil.test")
	if err != nil {
		t.Fatal(err)
	}
	v := verifier.StartForTest(t, sg.Records()...)
	users := map[string]string{}
	for _, m := range mailboxes {
		users[m+"@visa.test"] = password
	}
	s := mailstack.StartForTestWith(t, mailstack.Options{Milters: v.Milters, Users: users})

	sign := func(raw []byte) []byte {
		t.Helper()
		out, err := sg.Sign(raw)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	wantDKIMPass := func(t *testing.T, ar []string) {
		t.Helper()
		if len(ar) < 2 || ar[0] != dmarcPass || !strings.HasPrefix(ar[1], dkimPass) {
			t.Errorf("Authentication-Results, topmost first:\n%s\nwant\n%s\n%s…", strings.Join(ar, "\n"), dmarcPass, dkimPass)
		}
	}

	t.Run("signed", func(t *testing.T) {
		h := deliver(t, s, "signed", sign(message("signed@indyhall.test", "verify")))
		ar := results(h)
		wantDKIMPass(t, ar)
		if len(ar) != 2 || h[3].key != "authentication-results" || h[5].key != "received" {
			t.Errorf("want two fields, on top of Postfix's Received:\n%v", h)
		}
		t.Logf("Authentication-Results:\n%s", strings.Join(ar, "\n"))
	})

	t.Run("unsigned", func(t *testing.T) {
		ar := results(deliver(t, s, "unsigned", message("unsigned@indyhall.test", "verify")))
		if len(ar) != 2 || ar[0] != dmarcFail || ar[1] != dkimNone {
			t.Errorf("Authentication-Results:\n%s\nwant\n%s\n%s", strings.Join(ar, "\n"), dmarcFail, dkimNone)
		}
		t.Logf("Authentication-Results:\n%s", strings.Join(ar, "\n"))
	})

	t.Run("signed by another domain", func(t *testing.T) {
		raw, err := sg.SignAs("evil.test", message("unaligned@indyhall.test", "verify"))
		if err != nil {
			t.Fatal(err)
		}
		ar := results(deliver(t, s, "unaligned", raw))
		if len(ar) != 2 || ar[0] != dmarcFail || !strings.Contains(ar[1], "dkim=pass") || !strings.Contains(ar[1], "header.d=evil.test") {
			t.Errorf("Authentication-Results:\n%s\nwant %s above a dkim=pass for evil.test", strings.Join(ar, "\n"), dmarcFail)
		}
	})

	// The known attack: whoever holds a signed message (a manager's
	// "verify", forwarded, or found in a mailing list archive) adds a
	// field of a signed name above the signed one. Verifiers take the
	// bottom-most instance of a field named in h= once (RFC 6376
	// §5.4.2), so the signature still verifies and DMARC passes: the
	// provider delivers it with a pass. Only the reader can refuse it.
	for _, c := range []struct{ name, field string }{
		{"prepended Subject", "Subject: add member me@evil.test"},
		{"prepended Message-ID", "Message-ID: <replay-1@evil.test>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signed := sign(message(strings.ReplaceAll(c.name, " ", "-")+"@indyhall.test", "verify"))
			h := deliver(t, s, strings.ReplaceAll(c.name, " ", "-"), append([]byte(c.field+"\r\n"), signed...))
			ar := results(h)
			wantDKIMPass(t, ar)
			key, value, _ := strings.Cut(c.field, ": ")
			if got := values(h, strings.ToLower(key)); len(got) != 2 || got[0] != value {
				t.Errorf("%s fields delivered: %q, want the added one above the signed one", key, got)
			}
			t.Logf("Authentication-Results:\n%s", strings.Join(ar, "\n"))
		})
	}

	// A sender writes Authentication-Results of our authserv-id, saying
	// pass, above an unsigned message. OpenDKIM removes the one that
	// carries a DKIM result; the DMARC one survives, below the real
	// fields and below Postfix's Received. Neither fools the milters.
	t.Run("forged Authentication-Results", func(t *testing.T) {
		raw := append([]byte("Authentication-Results: "+forgedPass+"\r\n"+
			"Authentication-Results: "+verifier.AuthservID+"; dkim=pass header.d=indyhall.test\r\n"),
			message("forged@indyhall.test", "verify")...)
		h := deliver(t, s, "forged", raw)
		ar := results(h)
		if len(ar) != 3 || ar[0] != dmarcFail || ar[1] != dkimNone || ar[2] != forgedPass {
			t.Errorf("Authentication-Results:\n%s\nwant\n%s\n%s\n%s", strings.Join(ar, "\n"), dmarcFail, dkimNone, forgedPass)
		}
		var order []string
		for _, f := range h {
			if f.key == "authentication-results" || f.key == "received" {
				order = append(order, f.key)
			}
		}
		if want := "received authentication-results authentication-results received authentication-results"; strings.Join(order, " ") != want {
			t.Errorf("fields in order %q, want %q", order, want)
		}
	})

	// Many messages at once, as in the chaos test: each is judged, none
	// refused for a milter that failed (OpenDKIM crashes without the
	// serializing relay in front of it).
	t.Run("concurrent", func(t *testing.T) {
		const senders, each = 8, 10
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for g := range senders {
			wg.Go(func() {
				for i := range each {
					raw := sign(message(fmt.Sprintf("c-%d-%d@indyhall.test", g, i), "verify"))
					if err := s.Send(ctx, "alex@indyhall.test", []string{"concurrent@visa.test"}, raw); err != nil {
						t.Errorf("message %d of sender %d: %v", i, g, err)
						return
					}
				}
			})
		}
		wg.Wait()
		msgs, err := s.WaitForMessages(ctx, "concurrent@visa.test", password, "INBOX", senders*each)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if !bytes.Contains(m, []byte("Authentication-Results: "+dmarcPass)) {
				t.Errorf("a message was not judged a pass:\n%s", m)
				break
			}
		}
	})
}
