package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// submit sends a message through the demo's SMTP server as a mail client
// does: AUTH PLAIN as login, then the message.
func submit(t *testing.T, addr, login, from, body string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", login, Password)); err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: front desk\r\nMessage-ID: <%d@demo.test>\r\n\r\n%s\r\n",
		from, BotAddress, time.Now().UnixNano(), body)
	if err := c.SendMail(from, []string{BotAddress}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
}

// mailbox waits until user's mailbox holds at least n messages and returns
// their bodies.
func mailbox(t *testing.T, addr, user, name string, n int) []string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, Password).Wait(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.Select(name, nil).Wait(); err == nil {
			data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if uids := data.AllUIDs(); len(uids) >= n {
				msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
					BodySection: []*imap.FetchItemBodySection{{Peek: true}},
				}).Collect()
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, m := range msgs {
					for _, b := range m.BodySection {
						out = append(out, string(b.Bytes))
					}
				}
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s did not get %d messages", name, user, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *Demo, 1)
	done := make(chan error, 1)
	var out strings.Builder
	go func() {
		done <- Run(ctx, Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0", Out: &out, Log: quiet,
			Started: func(d *Demo) { started <- d }})
	}()
	var d *Demo
	select {
	case d = <-started:
	case err := <-done:
		t.Fatalf("demo ended at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not start")
	}
	smtpAddr, imapAddr := d.Mail.SMTPAddr(), d.Mail.IMAPAddr()
	for _, want := range []string{smtpAddr, imapAddr, BotAddress, "alex@indyhall.test", "swaks"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's instructions lack %q:\n%s", want, out.String())
		}
	}

	submit(t, smtpAddr, "alex@indyhall.test", "alex@indyhall.test", "verify jonas@betahaus.test\nverify carl@indyhall.test")
	got := mailbox(t, imapAddr, "alex@indyhall.test", "INBOX", 1)[0]
	for _, want := range []string{"VERIFIED: jonas@betahaus.test is Jonas M", "NOT VERIFIED: carl@indyhall.test"} {
		if !strings.Contains(strings.ReplaceAll(got, "=\r\n", ""), want) {
			t.Errorf("reply lacks %q:\n%s", want, got)
		}
	}

	// Logged in as alex but writing as madeleine: the demo's SMTP server
	// stamps dmarc=fail and the bot sets the message aside, unanswered.
	submit(t, smtpAddr, "alex@indyhall.test", "madeleine@betahaus.test", "remove member jonas@betahaus.test")
	mailbox(t, imapAddr, BotAddress, "Rejected", 1)
	submit(t, smtpAddr, "madeleine@betahaus.test", "madeleine@betahaus.test", "verify jonas@betahaus.test")
	got = mailbox(t, imapAddr, "madeleine@betahaus.test", "INBOX", 1)[0]
	if !strings.Contains(got, "VERIFIED: jonas@betahaus.test") || strings.Contains(got, "remove") {
		t.Errorf("the forged removal had an effect or an answer:\n%s", got)
	}
	if n := len(mailbox(t, imapAddr, "madeleine@betahaus.test", "INBOX", 1)); n != 1 {
		t.Errorf("madeleine has %d messages, want 1", n)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo returned %v on shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop")
	}
}
