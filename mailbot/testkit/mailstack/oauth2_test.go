package mailstack_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/coworkingvisa/mailbot/mailbot/sasl"
	"github.com/coworkingvisa/mailbot/mailbot/smtpsend"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/idp"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
)

// staticTokens is a token source that always hands out one token.
type staticTokens struct {
	token string
	done  chan error
}

func (s staticTokens) AccessToken(context.Context) (string, error) { return s.token, nil }
func (s staticTokens) LoginDone(_ string, err error)               { s.done <- err }

// TestOAuth2 checks the stack's OAuth2 option against the real servers:
// Dovecot's oauth2 passdb takes XOAUTH2 and OAUTHBEARER logins with the
// access tokens the test provider's introspection endpoint vouches for,
// refuses the others with the JSON challenge of RFC 7628, and still takes
// passwords; Postfix's submission port requires SMTP AUTH, checked by
// Dovecot, with tokens and passwords alike.
func TestOAuth2(t *testing.T) {
	p := idp.Start(t, idp.Options{})
	const bot, other, pw = "bot@oauth.test", "other@oauth.test", "pw-1"
	s := mailstack.StartForTestWith(t, mailstack.Options{
		Users:                  map[string]string{bot: pw, other: pw},
		OAuth2IntrospectionURL: p.IntrospectionURL(),
		Submission:             true,
	})
	if s.SubmissionAddr == "" || s.SubmissionAddr == s.SMTPAddr {
		t.Fatalf("SubmissionAddr = %q (SMTP %s)", s.SubmissionAddr, s.SMTPAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	good := p.IssueAccess(bot, time.Hour)

	dial := func(t *testing.T) *imapclient.Client {
		t.Helper()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", s.IMAPAddr)
		if err != nil {
			t.Fatal(err)
		}
		c := imapclient.New(conn, nil)
		t.Cleanup(func() { c.Close() })
		if err := c.WaitGreeting(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	authenticate := func(t *testing.T, mech, user, token string) error {
		t.Helper()
		c := dial(t)
		caps, err := c.Capability().Wait()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(caps.AuthMechanisms(), mech) {
			t.Fatalf("Dovecot offers %q, not %s", caps.AuthMechanisms(), mech)
		}
		client, err := sasl.New(mech, user, token)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Authenticate(client); err != nil {
			return err
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("SELECT after %s: %v", mech, err)
		}
		return nil
	}

	for _, mech := range []string{sasl.XOAuth2, sasl.OAuthBearer} {
		t.Run("IMAP "+mech, func(t *testing.T) {
			if err := authenticate(t, mech, bot, good); err != nil {
				t.Fatalf("a valid token: %v", err)
			}
			for _, bad := range []struct{ name, user, token string }{
				{"expired", bot, p.IssueAccess(bot, -time.Second)},
				{"unknown", bot, "at-made-up"},
				{"another account's", bot, p.IssueAccess(other, time.Hour)},
			} {
				err := authenticate(t, mech, bad.user, bad.token)
				var re *sasl.RefusedError
				t.Logf("%s token: %v", bad.name, err)
				if !errors.As(err, &re) || re.Mechanism != mech {
					t.Errorf("%s token: %v, want a RefusedError", bad.name, err)
				}
			}
			if in := p.Introspected(); !slices.Contains(in, good) {
				t.Errorf("Dovecot never asked the provider about the good token (asked about %d)", len(in))
			}
		})
	}
	t.Run("IMAP password", func(t *testing.T) {
		if err := dial(t).Login(bot, pw).Wait(); err != nil {
			t.Fatalf("LOGIN with the password: %v", err)
		}
	})

	host, port := splitAddr(t, s.SubmissionAddr)
	send := func(t *testing.T, cfg smtpsend.Config, subject string) error {
		t.Helper()
		cfg.Host, cfg.Port, cfg.TLS = host, port, "none"
		snd := smtpsend.New(cfg)
		defer snd.Close()
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@oauth.test>\r\n\r\nbody\r\n", bot, other, subject, subject)
		return snd.Send(ctx, bot, []string{other}, []byte(msg))
	}
	t.Run("submission OAuth2", func(t *testing.T) {
		tokens := staticTokens{token: good, done: make(chan error, 1)}
		if err := send(t, smtpsend.Config{Username: bot, OAuth2: tokens}, "by-oauth2"); err != nil {
			t.Fatalf("send with a token: %v", err)
		}
		if err := <-tokens.done; err != nil {
			t.Errorf("LoginDone(%v)", err)
		}
		bad := staticTokens{token: p.IssueAccess(bot, -time.Second), done: make(chan error, 1)}
		err := send(t, smtpsend.Config{Username: bot, OAuth2: bad}, "expired")
		var re *sasl.RefusedError
		if !errors.As(err, &re) {
			t.Errorf("send with an expired token: %v, want a RefusedError", err)
		}
		if err := <-bad.done; err == nil {
			t.Error("the refusal was not reported")
		}
	})
	t.Run("submission password", func(t *testing.T) {
		if err := send(t, smtpsend.Config{Username: bot, Password: pw}, "by-password"); err != nil {
			t.Fatalf("send with the password: %v", err)
		}
	})
	t.Run("submission without AUTH", func(t *testing.T) {
		c, err := smtp.Dial(s.SubmissionAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.SendMail(bot, []string{other}, strings.NewReader("Subject: no auth\r\n\r\nx\r\n"))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code/100 != 5 {
			t.Errorf("send without AUTH: %v, want a 5xx refusal", err)
		}
	})
	got, err := s.WaitForMessages(ctx, other, pw, "INBOX", 2)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range got {
		for _, line := range strings.Split(string(m), "\r\n") {
			if v, ok := strings.CutPrefix(line, "Subject: "); ok {
				subjects = append(subjects, v)
			}
		}
	}
	slices.Sort(subjects)
	if !slices.Equal(subjects, []string{"by-oauth2", "by-password"}) {
		t.Errorf("delivered: %q", subjects)
	}
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}
