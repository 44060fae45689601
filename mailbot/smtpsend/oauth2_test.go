package smtpsend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/wneessen/go-mail/smtp"

	"github.com/coworkingvisa/mailbot/mailbot/sasl"
)

// oauthBackend makes the test server take OAuth2 logins for user "visa".
type oauthBackend struct {
	mechs []string
	good  map[string]bool

	mu     sync.Mutex
	logins []string // "MECH token" per AUTH
}

func (o *oauthBackend) accept(mech, user, token string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logins = append(o.logins, mech+" "+token)
	return user == "visa" && o.good[token]
}

func (o *oauthBackend) seen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.logins...)
}

func (o *oauthBackend) server(s *session, mech string) (gosasl.Server, error) {
	switch mech {
	case sasl.OAuthBearer:
		return gosasl.NewOAuthBearerServer(func(opts gosasl.OAuthBearerOptions) *gosasl.OAuthBearerError {
			if !o.accept(mech, opts.Username, opts.Token) {
				return &gosasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			s.user = opts.Username
			return nil
		}), nil
	case sasl.XOAuth2:
		return &xoauth2Server{accept: func(user, token string) bool {
			if !o.accept(mech, user, token) {
				return false
			}
			s.user = user
			return true
		}}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

// xoauth2Server is the server side of XOAUTH2 as Google describes it.
type xoauth2Server struct {
	accept  func(user, token string) bool
	refused bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.refused {
		return nil, true, gosmtp.ErrAuthFailed
	}
	var user, token string
	for _, f := range bytes.Split(resp, []byte{1}) {
		if v, ok := bytes.CutPrefix(f, []byte("user=")); ok {
			user = string(v)
		}
		if v, ok := bytes.CutPrefix(f, []byte("auth=Bearer ")); ok {
			token = string(v)
		}
	}
	if x.accept(user, token) {
		return nil, true, nil
	}
	x.refused = true
	challenge, _ := json.Marshal(map[string]string{"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"})
	return challenge, false, nil
}

// fakeTokens hands out its tokens in order and records LoginDone.
type fakeTokens struct {
	mu     sync.Mutex
	tokens []string
	done   []string
}

func (f *fakeTokens) AccessToken(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokens) == 0 {
		return "", errors.New("the provider is down")
	}
	tok := f.tokens[0]
	f.tokens = f.tokens[1:]
	return tok, nil
}

func (f *fakeTokens) LoginDone(token string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := token + " ok"
	if err != nil {
		r = token + " refused"
	}
	f.done = append(f.done, r)
}

func (f *fakeTokens) reports() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.done, ", ")
}

func oauthSender(t *testing.T, ts *testServer, tokens TokenSource) *Sender {
	cfg := ts.plainConfig()
	cfg.Username, cfg.OAuth2 = "visa", tokens
	return newSender(t, cfg)
}

func TestSendOAuth2(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mechs []string
		want  string
	}{
		{"Microsoft 365: XOAUTH2 only", []string{"XOAUTH2"}, "XOAUTH2"},
		{"Gmail and Postfix with Dovecot: both", []string{"XOAUTH2", "OAUTHBEARER"}, "OAUTHBEARER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &backend{oauth: &oauthBackend{mechs: tc.mechs, good: map[string]bool{"good": true}}}
			ts := startServer(t, be, serverOpts{})
			tokens := &fakeTokens{tokens: []string{"good"}}
			s := oauthSender(t, ts, tokens)
			if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := be.last().user; got != "visa" {
				t.Errorf("sent as %q", got)
			}
			if got := be.oauth.seen(); len(got) != 1 || got[0] != tc.want+" good" {
				t.Errorf("the server saw %q, want one %s login", got, tc.want)
			}
			if got := tokens.reports(); got != "good ok" {
				t.Errorf("LoginDone: %s", got)
			}
		})
	}
}

// TestSendOAuth2Refused: a refused token is reported, the message waits (a
// session failure, never a permanent one), and the next send logs in with
// a new token on a new connection.
func TestSendOAuth2Refused(t *testing.T) {
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			be := &backend{oauth: &oauthBackend{mechs: []string{mech}, good: map[string]bool{"fresh": true}}}
			ts := startServer(t, be, serverOpts{})
			tokens := &fakeTokens{tokens: []string{"stale", "fresh"}}
			s := oauthSender(t, ts, tokens)
			err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t))
			if err == nil {
				t.Fatal("Send with a refused token succeeded")
			}
			if IsPermanent(err) || !IsSessionFailure(err) {
				t.Errorf("IsPermanent = %v, IsSessionFailure = %v for %v; want a session failure", IsPermanent(err), IsSessionFailure(err), err)
			}
			if err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t)); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			if got := tokens.reports(); got != "stale refused, fresh ok" {
				t.Errorf("LoginDone: %s", got)
			}
			if sessions, msgs := be.counts(); sessions != 2 || msgs != 1 {
				t.Errorf("%d sessions, %d messages; want 2 and 1", sessions, msgs)
			}
		})
	}
}

// TestSendOAuth2NoToken: without a token nothing is dialled and the
// message waits.
func TestSendOAuth2NoToken(t *testing.T) {
	be := &backend{oauth: &oauthBackend{mechs: []string{"XOAUTH2"}}}
	ts := startServer(t, be, serverOpts{})
	s := oauthSender(t, ts, &fakeTokens{})
	err := s.Send(context.Background(), "visa@example.org", []string{"a@space.example"}, reply(t))
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "the provider is down") {
		t.Errorf("Send = %v; want the token failure, not permanent", err)
	}
	if sessions, _ := be.counts(); sessions != 0 {
		t.Errorf("%d sessions opened without a token", sessions)
	}
}

// TestSendOAuth2NotInClear: a token is not sent in clear to a host that is
// not loopback, whatever the server offers.
func TestSendOAuth2NotInClear(t *testing.T) {
	a := &oauth2Auth{user: "visa", token: "secret-token", host: "smtp.example.org"}
	if _, ir, err := a.Start(&smtp.ServerInfo{Name: "smtp.example.org", Auth: []string{"XOAUTH2"}}); err == nil || ir != nil {
		t.Errorf("Start without TLS = %q, %v; want a refusal", ir, err)
	}
	if _, _, err := a.Start(&smtp.ServerInfo{Name: "smtp.example.org", TLS: true, Auth: []string{"XOAUTH2"}}); err != nil {
		t.Errorf("Start over TLS: %v", err)
	}
}
