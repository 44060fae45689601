package mailstack_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
)

// crlf turns a message written with \n into the CRLF form that SMTP carries
// and IMAP returns.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// thunderbirdMessage is a command email as Thunderbird writes it, as it
// reaches a mailbox behind an MX that checked it: a folded DKIM-Signature, an
// Authentication-Results header, an 8bit UTF-8 text part and a CSV
// attachment.
func thunderbirdMessage(messageID string) []byte {
	csv := base64.StdEncoding.EncodeToString([]byte("email,name,status,until\r\nzoe@example.org,Zoë Müller,active,2026-12-31\r\n"))
	return crlf(`Authentication-Results: mx.coworking.test;
	dkim=pass header.d=indyhall.test header.s=sel1 header.b=QmFzZTY0;
	spf=pass smtp.mailfrom=alice@indyhall.test;
	dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=indyhall.test
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=indyhall.test;
	s=sel1; t=1772525647; h=from:to:subject:date:message-id;
	bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
	b=QmFzZTY0U2lnbmF0dXJlVGhhdElzTm90UmVhbGx5QVNpZ25hdHVyZQ==
Message-ID: ` + messageID + `
Date: Tue, 3 Mar 2026 09:14:07 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Language: en-US
From: Alice Manager <alice@indyhall.test>
To: Coworking Visa <mgr@coworking.test>
Subject: =?UTF-8?Q?add_member_Zo=C3=AB?=
Auto-Submitted: no
Content-Type: multipart/mixed; boundary="------------0Xb9zQ1rT2hYc8WmKpLs3dEf"

This is a multi-part message in MIME format.
--------------0Xb9zQ1rT2hYc8WmKpLs3dEf
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Hello,

add member zoe@example.org name="Zoë Müller" until=2026-12-31
import members

thanks
-- 
Alice, Indy Hall

--------------0Xb9zQ1rT2hYc8WmKpLs3dEf
Content-Type: text/csv; charset=UTF-8; name="members.csv"
Content-Disposition: attachment; filename="members.csv"
Content-Transfer-Encoding: base64

` + csv + `

--------------0Xb9zQ1rT2hYc8WmKpLs3dEf--
`)
}

// bigMessage is a message with an attachment of about 12 MB once encoded:
// above Postfix's default message_size_limit of 10 MB.
func bigMessage(messageID string) []byte {
	var b strings.Builder
	b.WriteString(`Message-ID: ` + messageID + `
Date: Tue, 3 Mar 2026 10:00:00 +0100
MIME-Version: 1.0
From: Alice Manager <alice@indyhall.test>
To: mgr@coworking.test
Subject: the whole roster as a spreadsheet
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

See attachment.
--b1
Content-Type: application/octet-stream; name="roster.bin"
Content-Disposition: attachment; filename="roster.bin"
Content-Transfer-Encoding: base64

`)
	chunk := make([]byte, 57) // 76 base64 characters a line
	for i := range 165_000 {
		for j := range chunk {
			chunk[j] = byte(i*7 + j)
		}
		b.WriteString(base64.StdEncoding.EncodeToString(chunk))
		b.WriteString("\n")
	}
	b.WriteString("--b1--\n")
	return crlf(b.String())
}

// Users of the stack that TestStack shares between its subtests.
var users = map[string]string{
	"alice@indyhall.test": "alice-pw",
	"mgr@coworking.test":  "correct horse battery staple",
	"visa@coworking.test": "visa-pw",
	"idle@coworking.test": "idle-pw",
}

// TestStack runs the checks that leave the servers up on one shared stack.
func TestStack(t *testing.T) {
	t.Parallel()
	s := mailstack.StartForTest(t)
	// Users added at once wait for the same second.
	var wg sync.WaitGroup
	for addr, pass := range users {
		wg.Go(func() {
			if err := s.AddUser(addr, pass); err != nil {
				t.Errorf("AddUser(%s): %v", addr, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Run("delivery", func(t *testing.T) { testDelivery(t, s) })
	t.Run("bounce", func(t *testing.T) { testBounce(t, s) })
	t.Run("IMAP extensions", func(t *testing.T) { testIMAPExtensions(t, s) })
	t.Run("WaitForMessages gives up", func(t *testing.T) { testWaitGivesUp(t, s) })
	t.Run("AddUser refuses", func(t *testing.T) {
		for _, u := range []struct{ addr, pass string }{
			{"Alice@IndyHall.test", "again"},   // exists already
			{"bob@indyhall.test", "pass:word"}, // cannot be stored
			{"bob smith@indyhall.test", "pw"},
		} {
			if err := s.AddUser(u.addr, u.pass); err == nil {
				t.Errorf("AddUser(%q, %q) succeeded", u.addr, u.pass)
			}
		}
	})
}

// testDelivery sends realistic messages through Postfix and reads them back
// over IMAP: they arrive byte for byte, under a Return-Path.
func testDelivery(t *testing.T, s *mailstack.Stack) {
	mgrPass := users["mgr@coworking.test"]
	tests := []struct {
		name       string
		from       string
		to         string
		raw        []byte
		returnPath string
	}{
		{"multipart from a mailbox", "alice@indyhall.test", "mgr@coworking.test",
			thunderbirdMessage("<4f1c2a9e-7b1d-4c55-9a0e-2b1f6f0d9c11@indyhall.test>"), "<alice@indyhall.test>"},
		{"null sender", "", "mgr@coworking.test",
			thunderbirdMessage("<null-sender@indyhall.test>"), "<>"},
		{"sender of a domain without mailboxes", "newsletter@bulk.example", "mgr@coworking.test",
			thunderbirdMessage("<unknown-sender@bulk.example>"), "<newsletter@bulk.example>"},
		{"recipient in another case", "alice@indyhall.test", "MGR@Coworking.TEST",
			thunderbirdMessage("<mixed-case@indyhall.test>"), "<alice@indyhall.test>"},
		{"12 MB", "alice@indyhall.test", "mgr@coworking.test",
			bigMessage("<big@indyhall.test>"), "<alice@indyhall.test>"},
		// As a receiving MX, Postfix makes up no Message-ID, Date or From.
		{"without Message-ID, Date and From", "alice@indyhall.test", "mgr@coworking.test",
			crlf("Subject: bare\n\nverify zoe@example.org\n"), "<alice@indyhall.test>"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Send(ctx, tt.from, []string{tt.to}, tt.raw); err != nil {
				t.Fatal(err)
			}
			msgs, err := s.WaitForMessages(ctx, "mgr@coworking.test", mgrPass, "INBOX", i+1)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != i+1 {
				t.Fatalf("INBOX holds %d messages, want %d", len(msgs), i+1)
			}
			got := msgs[i]
			// Header and body arrive byte for byte, under the trace
			// headers that Postfix and Dovecot prepend.
			if !bytes.HasSuffix(got, tt.raw) {
				t.Errorf("the message changed on its way; it arrived as:\n%.3000s", got)
			}
			wantFirst := "Return-Path: " + tt.returnPath + "\r\n"
			if !bytes.HasPrefix(got, []byte(wantFirst)) {
				t.Errorf("message starts with %.80q, want %q", got, wantFirst)
			}
			m, err := mail.ReadMessage(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			// Dovecot writes the recipient as the envelope spelled it.
			if got := m.Header.Get("Delivered-To"); got != tt.to {
				t.Errorf("Delivered-To = %q, want %q", got, tt.to)
			}
			want, err := mail.ReadMessage(bytes.NewReader(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"Message-Id", "Date", "From", "Authentication-Results", "Auto-Submitted", "Dkim-Signature"} {
				if !slices.Equal(m.Header[h], want.Header[h]) {
					t.Errorf("%s = %q, sent %q", h, m.Header[h], want.Header[h])
				}
			}
		})
	}
}

// testBounce sends to an address without a mailbox: Dovecot refuses it at
// LMTP RCPT time and Postfix returns a bounce to the sender.
func testBounce(t *testing.T, s *mailstack.Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const id = "<to-nobody@indyhall.test>"
	raw := crlf(`Message-ID: ` + id + `
Date: Tue, 3 Mar 2026 09:14:07 +0100
From: alice@indyhall.test
To: nobody@indyhall.test
Subject: verify zoe@example.org

verify zoe@example.org
`)
	if err := s.Send(ctx, "alice@indyhall.test", []string{"nobody@indyhall.test"}, raw); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.WaitForMessages(ctx, "alice@indyhall.test", "alice-pw", "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Return-Path"); got != "<>" {
		t.Errorf("Return-Path = %q, want <> (a bounce's null sender)", got)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || !strings.HasPrefix(strings.ToUpper(from[0].Address), "MAILER-DAEMON@") {
		t.Errorf("From = %q (%v), want MAILER-DAEMON", m.Header.Get("From"), err)
	}
	if got := m.Header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q, want auto-replied", got)
	}
	// RFC 3464: a multipart/report with a delivery-status part.
	if ct := m.Header.Get("Content-Type"); !strings.Contains(ct, "multipart/report") || !strings.Contains(ct, "delivery-status") {
		t.Errorf("Content-Type = %q, want a delivery status report", ct)
	}
	for _, want := range []string{"nobody@indyhall.test", "Status: 5.1.1", "Message-ID: " + id} {
		if !bytes.Contains(msgs[0], []byte(want)) {
			t.Errorf("bounce lacks %q:\n%s", want, msgs[0])
		}
	}
}

// testIMAPExtensions checks what the bot relies on: IDLE, MOVE, UIDPLUS and
// keywords, out of the box.
func testIMAPExtensions(t *testing.T, s *mailstack.Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw := thunderbirdMessage("<ext@indyhall.test>")
	if err := s.Send(ctx, "alice@indyhall.test", []string{"visa@coworking.test"}, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitForMessages(ctx, "visa@coworking.test", "visa-pw", "INBOX", 1); err != nil {
		t.Fatal(err)
	}

	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("visa@coworking.test", "visa-pw").Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range []imap.Cap{imap.CapIdle, imap.CapMove, imap.CapUIDPlus} {
		if !caps.Has(cp) {
			t.Errorf("no %s in capabilities %v", cp, caps)
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sel.PermanentFlags, imap.FlagWildcard) {
		t.Errorf("PERMANENTFLAGS %v lack \\*: keywords cannot be set", sel.PermanentFlags)
	}
	const keyword = "$MailbotHandled"
	uid := imap.UIDSetNum(1)
	if err := c.Store(uid, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{keyword}}, nil).Close(); err != nil {
		t.Fatalf("STORE keyword: %v", err)
	}
	msgs, err := c.Fetch(uid, &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 || !slices.Contains(msgs[0].Flags, imap.Flag(keyword)) {
		t.Fatalf("FETCH FLAGS = %v, %v; want %s", msgs, err, keyword)
	}
	if err := c.Create("Processed", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	moved, err := c.Move(uid, "Processed").Wait()
	if err != nil {
		t.Fatalf("MOVE: %v", err)
	}
	if moved.UIDValidity == 0 || moved.DestUIDs.String() != "1" {
		t.Errorf("MOVE returned COPYUID %+v, want UID 1 in Processed", moved)
	}
	if got, err := s.WaitForMessages(ctx, "visa@coworking.test", "visa-pw", "Processed", 1); err != nil || !bytes.HasSuffix(got[0], raw) {
		t.Errorf("Processed: %v", err)
	}
}

// TestOutage stops each server in turn: Postfix keeps mail queued while
// Dovecot is down and delivers it by itself when Dovecot is back.
func TestOutage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := mailstack.Start(ctx, mailstack.Options{
		Logf:       t.Logf,
		Users:      map[string]string{"mgr@coworking.test": "mgr-pw"},
		RetryDelay: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("kept %s\n%s", s.Dir, s.Logs())
		} else {
			removeAll(t, s.Dir)
		}
	}()

	t.Run("dovecot", func(t *testing.T) {
		if err := s.StopDovecot(ctx); err != nil {
			t.Fatal(err)
		}
		if conn, err := net.Dial("tcp", s.IMAPAddr); err == nil {
			conn.Close()
			t.Fatal("IMAP still answers after StopDovecot")
		}
		raw := thunderbirdMessage("<while-dovecot-was-down@indyhall.test>")
		if err := s.Send(ctx, "alice@indyhall.test", []string{"mgr@coworking.test"}, raw); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "Postfix to defer the message", func() bool { return strings.Contains(s.Logs(), "status=deferred") })
		if err := s.StartDovecot(ctx); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		msgs, err := s.WaitForMessages(ctx, "mgr@coworking.test", "mgr-pw", "INBOX", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("delivered %v after Dovecot came back", time.Since(back).Round(100*time.Millisecond))
		if !bytes.HasSuffix(msgs[0], raw) {
			t.Errorf("queued message changed:\n%.2000s", msgs[0])
		}
	})

	t.Run("postfix", func(t *testing.T) {
		if err := s.StopPostfix(ctx); err != nil {
			t.Fatal(err)
		}
		raw := thunderbirdMessage("<after-postfix-came-back@indyhall.test>")
		if err := s.Send(ctx, "alice@indyhall.test", []string{"mgr@coworking.test"}, raw); err == nil {
			t.Fatal("Send succeeded while Postfix was stopped")
		}
		if err := s.StopPostfix(ctx); err != nil {
			t.Fatalf("second StopPostfix: %v", err)
		}
		if err := s.StartPostfix(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, "alice@indyhall.test", []string{"mgr@coworking.test"}, raw); err != nil {
			t.Fatal(err)
		}
		msgs, err := s.WaitForMessages(ctx, "mgr@coworking.test", "mgr-pw", "INBOX", 2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(msgs[1], raw) {
			t.Errorf("message changed:\n%.2000s", msgs[1])
		}
	})
}

// testWaitGivesUp checks that the guard timeout ends the wait.
func testWaitGivesUp(t *testing.T, s *mailstack.Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := s.WaitForMessages(ctx, "idle@coworking.test", "idle-pw", "INBOX", 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForMessages on an empty INBOX = %v, want a timeout", err)
	}
	t.Logf("it says: %v", err) // "INBOX of idle@coworking.test holds 0 of 1 messages: …"

	msgs, err := s.WaitForMessages(context.Background(), "idle@coworking.test", "idle-pw", "INBOX", 0)
	if err != nil || len(msgs) != 0 {
		t.Errorf("WaitForMessages for 0 messages = %d messages, %v", len(msgs), err)
	}
	if _, err := s.WaitForMessages(context.Background(), "idle@coworking.test", "wrong", "INBOX", 0); err == nil {
		t.Error("WaitForMessages with a wrong password succeeded")
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func removeAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Error(fmt.Errorf("removing %s: %w", dir, err))
	}
}

// BenchmarkStartStop measures what a stack costs a test: start (until both
// servers greet) and stop (until no process is left).
func BenchmarkStartStop(b *testing.B) {
	var starting, stopping time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		t0 := time.Now()
		s, err := mailstack.Start(ctx, mailstack.Options{})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
		starting += t1.Sub(t0)
		stopping += time.Since(t1)
		os.RemoveAll(s.Dir)
	}
	b.ReportMetric(float64(starting.Milliseconds())/float64(b.N), "ms/start")
	b.ReportMetric(float64(stopping.Milliseconds())/float64(b.N), "ms/stop")
	b.ReportMetric(0, "ns/op")
}
