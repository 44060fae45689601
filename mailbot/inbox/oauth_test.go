package inbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	gosasl "github.com/emersion/go-sasl"

	"github.com/coworkingvisa/mailbot/mailbot/sasl"
)

// oauthAuth is the OAuth2 side of a test server: the mechanisms it offers
// and the tokens it takes.
type oauthAuth struct {
	mechs []string

	mu     sync.Mutex
	good   map[string]bool // tokens accepted
	logins []string        // "MECH token" per AUTHENTICATE, accepted or not
}

func (a *oauthAuth) accept(mech, user, token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logins = append(a.logins, mech+" "+token)
	return user == testUser && a.good[token]
}

func (a *oauthAuth) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.logins...)
}

// oauthSession is a test session that logs in by OAUTHBEARER (go-sasl's
// server) or XOAUTH2 (written here) instead of LOGIN.
type oauthSession struct {
	*testSession
	auth *oauthAuth
}

var _ imapserver.SessionSASL = (*oauthSession)(nil)

func (s *oauthSession) AuthenticateMechanisms() []string { return s.auth.mechs }

func (s *oauthSession) Authenticate(mech string) (gosasl.Server, error) {
	login := func() { s.UserSession = imapmemserver.NewUserSession(s.srv.user) }
	switch mech {
	case sasl.OAuthBearer:
		return gosasl.NewOAuthBearerServer(func(o gosasl.OAuthBearerOptions) *gosasl.OAuthBearerError {
			if !s.auth.accept(mech, o.Username, o.Token) {
				return &gosasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: "mail"}
			}
			login()
			return nil
		}), nil
	case sasl.XOAuth2:
		return &xoauth2Server{accept: func(user, token string) bool {
			if !s.auth.accept(mech, user, token) {
				return false
			}
			login()
			return true
		}}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "unknown mechanism"}
}

// xoauth2Server is the server side of XOAUTH2, as Google describes it: a
// refused token gets a JSON challenge, then the exchange fails.
type xoauth2Server struct {
	accept  func(user, token string) bool
	refused bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.refused {
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "refused"}
	}
	if resp == nil {
		return []byte{}, false, nil
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
	challenge, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "https://mail.example/"})
	return challenge, false, nil
}

// fakeTokens is a TokenSource double: it hands out its tokens in order and
// records what the watcher reports.
type fakeTokens struct {
	mu     sync.Mutex
	tokens []string // the next tokens; an empty one is an error
	calls  int
	done   []string // "token ok" or "token refused: ..."
	report chan string
}

func newFakeTokens(tokens ...string) *fakeTokens {
	return &fakeTokens{tokens: tokens, report: make(chan string, 10)}
}

func (f *fakeTokens) AccessToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.tokens) == 0 {
		return "", errors.New("no more tokens")
	}
	tok := f.tokens[0]
	if len(f.tokens) > 1 {
		f.tokens = f.tokens[1:]
	}
	if tok == "" {
		return "", errors.New("the provider is down")
	}
	return tok, nil
}

func (f *fakeTokens) LoginDone(token string, err error) {
	r := token + " ok"
	if err != nil {
		r = token + " refused: " + err.Error()
	}
	f.report <- r
}

func oauthConfig(ts *testServer, logs *logBuffer, tokens TokenSource) Config {
	cfg := ts.config(logs)
	cfg.Password, cfg.OAuth2 = "", tokens
	return cfg
}

// TestOAuth2Login logs in with the mechanism each kind of server offers
// and handles mail as with a password.
func TestOAuth2Login(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mechs []string
		want  string
	}{
		{"Microsoft 365: XOAUTH2 only", []string{"XOAUTH2"}, "XOAUTH2"},
		{"Gmail and Dovecot: both", []string{"XOAUTH2", "OAUTHBEARER"}, "OAUTHBEARER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := &oauthAuth{mechs: tc.mechs, good: map[string]bool{"good-token": true}}
			ts := newTestServer(t, serverOptions{oauth: auth})
			uid := ts.appendMsg(t, "INBOX", testMessage(1))
			tokens := newFakeTokens("good-token")
			h := newTestHandler(t, nil)
			start(t, oauthConfig(ts, newLogBuffer(t), tokens), h, true)
			wantCall(t, h, ts, uid, testMessage(1))
			if got := recv(t, tokens.report, "LoginDone"); got != "good-token ok" {
				t.Errorf("LoginDone: %s", got)
			}
			if got := auth.seen(); len(got) != 1 || got[0] != tc.want+" good-token" {
				t.Errorf("the server saw %q, want one %s login", got, tc.want)
			}
		})
	}
}

// TestOAuth2Refused: a refused token is reported (so the source gets a new
// one), the connection is dropped and dialled again, and the next token
// logs in. The refusal is not logged by the watcher at every retry: the
// token source logs changes.
func TestOAuth2Refused(t *testing.T) {
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			auth := &oauthAuth{mechs: []string{mech}, good: map[string]bool{"fresh": true}}
			ts := newTestServer(t, serverOptions{oauth: auth})
			tokens := newFakeTokens("stale", "fresh")
			logs := newLogBuffer(t)
			ts.proxy.drainAccepts()
			start(t, oauthConfig(ts, logs, tokens), newTestHandler(t, nil), false)
			got := recv(t, tokens.report, "LoginDone of the stale token")
			if !strings.HasPrefix(got, "stale refused: AUTHENTICATE "+mech+": the server refused the access token ("+mech) {
				t.Errorf("LoginDone: %s", got)
			}
			if got := recv(t, tokens.report, "LoginDone of the fresh token"); got != "fresh ok" {
				t.Errorf("LoginDone: %s", got)
			}
			if n := len(ts.proxy.accepts); n < 2 {
				t.Errorf("%d connections, want a new one after the refusal", n)
			}
			if strings.Contains(logs.String(), "level=WARN msg=\"imap connection failed\"") {
				t.Errorf("the refusal was logged as a warning by the watcher:\n%s", logs)
			}
		})
	}
}

// TestOAuth2NoToken: while the source has no token, nothing is sent to the
// server and the watcher retries.
func TestOAuth2NoToken(t *testing.T) {
	auth := &oauthAuth{mechs: []string{"XOAUTH2"}, good: map[string]bool{"late": true}}
	ts := newTestServer(t, serverOptions{oauth: auth})
	tokens := newFakeTokens("", "late")
	r := start(t, oauthConfig(ts, newLogBuffer(t), tokens), newTestHandler(t, nil), false)
	r.w.Poke() // cuts the wait after the failure short
	recv(t, r.w.Ready(), "Ready")
	if got := auth.seen(); len(got) != 1 || got[0] != "XOAUTH2 late" {
		t.Errorf("the server saw %q, want only the login with the late token", got)
	}
}

// TestOAuth2NoMechanism: a server without OAuth2 mechanisms is reported as
// refusing the login, with what is missing.
func TestOAuth2NoMechanism(t *testing.T) {
	auth := &oauthAuth{mechs: []string{"PLAIN"}}
	ts := newTestServer(t, serverOptions{oauth: auth})
	tokens := newFakeTokens("token")
	start(t, oauthConfig(ts, newLogBuffer(t), tokens), newTestHandler(t, nil), false)
	if got := recv(t, tokens.report, "LoginDone"); !strings.Contains(got, "neither OAUTHBEARER nor XOAUTH2") {
		t.Errorf("LoginDone: %s", got)
	}
	if len(auth.seen()) != 0 {
		t.Error("AUTHENTICATE was sent to a server without OAuth2")
	}
}
