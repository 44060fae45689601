package oauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/sasl"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/idp"
	"github.com/coworkingvisa/mailbot/storage"
)

const account = "visa@example.org"

// logBuffer collects a source's log for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count counts the log lines that contain s.
func (l *logBuffer) count(s string) int {
	return strings.Count(l.String(), s)
}

// noTokens fails the test if the log holds a token the provider issued
// (all of them start with at- or rt-).
func (l *logBuffer) noTokens(t *testing.T) {
	t.Helper()
	if out := l.String(); strings.Contains(out, "at-") || strings.Contains(out, "rt-") {
		t.Errorf("the log shows a token:\n%s", out)
	}
}

// testConfig is config.Default() with IMAP on OAuth2 through p, a custom
// provider.
func testConfig(p *idp.Provider) *config.Config {
	c := config.Default()
	c.IMAP.Auth, c.IMAP.Username = "oauth2", account
	c.OAuth2.Provider, c.OAuth2.ClientID = "custom", "mailbot-test"
	c.OAuth2.TokenURL, c.OAuth2.AuthURL, c.OAuth2.DeviceAuthURL = p.TokenURL(), p.AuthURL(), p.DeviceAuthURL()
	return c
}

func openStore(t *testing.T) (*storage.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "visa.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func newSource(t *testing.T, cfg *config.Config, db *storage.DB) (*TokenSource, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s := New(cfg, db, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return s, logs
}

func stored(t *testing.T, db *storage.DB, cfg *config.Config) storage.OAuthToken {
	t.Helper()
	var tok storage.OAuthToken
	err := db.View(func(tx *storage.Tx) error {
		var ok bool
		var err error
		tok, ok, err = tx.OAuthToken(storage.OAuthKey(cfg.OAuth2.ClientID, account))
		if !ok && err == nil {
			err = errors.New("no token stored")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func refreshes(p *idp.Provider) []idp.Grant {
	var out []idp.Grant
	for _, g := range p.Grants() {
		if g.Type == "refresh_token" {
			out = append(out, g)
		}
	}
	return out
}

// TestRotationPersisted: a provider that rotates refresh tokens (as
// Microsoft does) gets the new one stored at once, so that a restarted bot
// logs in with it, the old one being dead.
func TestRotationPersisted(t *testing.T) {
	p := idp.Start(t, idp.Options{Rotate: true, ClientID: "mailbot-test"})
	cfg := testConfig(p)
	db, _ := openStore(t)
	first := p.Issue(account)
	if err := Store(db, cfg.OAuth2, account, first, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, logs := newSource(t, cfg, db)
	ctx := t.Context()
	tok, err := s.AccessToken(ctx)
	if err != nil {
		t.Fatalf("AccessToken: %v", err)
	}
	if !p.Valid(tok) {
		t.Error("the token handed out is not one the provider accepts")
	}
	rotated := stored(t, db, cfg)
	if rotated.RefreshToken == first || rotated.Source != "rotated" || !p.RefreshValid(rotated.RefreshToken) {
		t.Fatalf("stored after the refresh: %+v; want the provider's new refresh token", rotated)
	}
	if p.RefreshValid(first) {
		t.Fatal("the test provider did not rotate")
	}
	// A valid token is handed out again without asking the provider.
	again, err := s.AccessToken(ctx)
	if err != nil || again != tok || len(refreshes(p)) != 1 {
		t.Errorf("second AccessToken = %v (same: %v), %d refreshes; want the same token, 1 refresh", err, again == tok, len(refreshes(p)))
	}
	// A server refusing it makes the next call fetch a new one, with the
	// rotated refresh token.
	s.For("imap").LoginDone(tok, &sasl.RefusedError{Mechanism: "XOAUTH2", Status: "401"})
	third, err := s.AccessToken(ctx)
	if err != nil || third == tok {
		t.Fatalf("after a refusal AccessToken = %v (same token: %v); want a new token", err, third == tok)
	}
	if g := refreshes(p); len(g) != 2 || g[1].Refresh != rotated.RefreshToken {
		t.Errorf("refreshes %+v; want a second one with the rotated token", g)
	}

	// A restart: a new source on the same store logs in with the latest.
	latest := stored(t, db, cfg)
	s2, logs2 := newSource(t, cfg, db)
	if _, err := s2.AccessToken(ctx); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if g := refreshes(p); g[len(g)-1].Refresh != latest.RefreshToken || g[len(g)-1].Error != "" {
		t.Errorf("the restarted source used %+v; want the stored %s…", g[len(g)-1], latest.RefreshToken[:6])
	}
	logs.noTokens(t)
	logs2.noTokens(t)
}

// TestExpiredTokenRefreshed: a token the provider says is short-lived is
// replaced before it expires (x/oauth2 keeps a 10 s margin): each login gets
// a fresh one.
func TestExpiredTokenRefreshed(t *testing.T) {
	// Tokens of 5 s fall within the margin, so each call refreshes: the
	// test sees expiry without waiting for it.
	p := idp.Start(t, idp.Options{Lifetime: 5 * time.Second})
	cfg := testConfig(p)
	db, _ := openStore(t)
	if err := Store(db, cfg.OAuth2, account, p.Issue(account), time.Now()); err != nil {
		t.Fatal(err)
	}
	s, logs := newSource(t, cfg, db)
	a, err1 := s.AccessToken(t.Context())
	b, err2 := s.AccessToken(t.Context())
	if err1 != nil || err2 != nil || a == b || !p.Valid(b) {
		t.Fatalf("AccessToken twice = %v, %v, same: %v; want two valid tokens", err1, err2, a == b)
	}
	if n := len(refreshes(p)); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
	// Google sends no new refresh token: the stored one stays.
	if got := stored(t, db, cfg); got.Source != "login" {
		t.Errorf("stored %+v; want the login's token untouched", got)
	}
	logs.noTokens(t)
}

// TestRevokedThenNewLogin: a revoked refresh token is reported once, however
// often the login is retried, with what to do; Healthy says so; a new login
// through TokenSource.Login (the daemon's control socket) brings it back,
// which is logged once too.
func TestRevokedThenNewLogin(t *testing.T) {
	p := idp.Start(t, idp.Options{Rotate: true})
	cfg := testConfig(p)
	db, _ := openStore(t)
	if err := Store(db, cfg.OAuth2, account, p.Issue(account), time.Now()); err != nil {
		t.Fatal(err)
	}
	s, logs := newSource(t, cfg, db)
	imap := s.For("imap")
	tok, err := imap.AccessToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	imap.LoginDone(tok, nil)
	if ok, why := s.Healthy(); !ok {
		t.Fatalf("Healthy after a login = false, %q", why)
	}

	p.Revoke(account)
	imap.LoginDone(tok, &sasl.RefusedError{Mechanism: "OAUTHBEARER", Status: "invalid_token"})
	for range 3 {
		_, err = imap.AccessToken(t.Context())
		var e *Error
		if !errors.As(err, &e) || e.Kind != Revoked {
			t.Fatalf("AccessToken after a revocation = %v, want a Revoked Error", err)
		}
	}
	if !strings.Contains(err.Error(), "mailbot oauth login") || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("the error does not say what happened and what to do: %v", err)
	}
	if n := logs.count("cannot get an access token"); n != 1 {
		t.Errorf("the failure was logged %d times over 3 tries, want once:\n%s", n, logs)
	}
	if n := logs.count("the server refuses the login"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
	ok, why := s.Healthy()
	if ok || !strings.Contains(why, "revoked") || !strings.Contains(why, "imap login") {
		t.Errorf("Healthy() = %v, %q; want false, naming the revocation and the refusal", ok, why)
	}

	if err := s.Login(p.Issue(account)); err != nil {
		t.Fatal(err)
	}
	tok, err = imap.AccessToken(t.Context())
	if err != nil {
		t.Fatalf("after a new login: %v", err)
	}
	imap.LoginDone(tok, nil)
	if ok, why := s.Healthy(); !ok {
		t.Errorf("Healthy after the new login = false, %q", why)
	}
	if logs.count("access tokens are issued again") != 1 || logs.count("the server takes the login again") != 1 {
		t.Errorf("the recovery is not logged once each:\n%s", logs)
	}
	if got := stored(t, db, cfg); got.Source != "rotated" || !p.RefreshValid(got.RefreshToken) {
		t.Errorf("stored %+v after the new login's first refresh", got)
	}
	logs.noTokens(t)
}

// TestFailureKinds: what the token endpoint answers is told apart, in words
// that say what to do.
func TestFailureKinds(t *testing.T) {
	tests := []struct {
		code, desc string
		status     int
		kind       Kind
		says       string
	}{
		{"invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.", 0, Revoked, "expired or was revoked"},
		{"invalid_grant", "AADSTS65001: The user or administrator has not consented to use the application.", 0, NoConsent, "permissions were not granted"},
		{"consent_required", "", 0, NoConsent, "permissions were not granted"},
		{"invalid_scope", "AADSTS70011: The provided value for the input parameter 'scope' is not valid.", 0, BadScope, "oauth2.scopes"},
		{"invalid_grant", "AADSTS70000: The request was denied because one or more scopes requested are unauthorized or expired.", 0, BadScope, "oauth2.scopes"},
		{"invalid_client", "AADSTS7000215: Invalid client secret provided.", 401, BadClient, "oauth2.client_id"},
		{"", "", 503, Unavailable, "retrying"},
		{"temporarily_unavailable", "", 400, ProviderRefused, "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.code+" "+string(tt.kind), func(t *testing.T) {
			p := idp.Start(t, idp.Options{})
			cfg := testConfig(p)
			db, _ := openStore(t)
			if err := Store(db, cfg.OAuth2, account, p.Issue(account), time.Now()); err != nil {
				t.Fatal(err)
			}
			s, logs := newSource(t, cfg, db)
			p.FailNext(tt.code, tt.desc, tt.status)
			_, err := s.AccessToken(t.Context())
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind {
				t.Fatalf("AccessToken = %v, want kind %s", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%q does not say %q", err, tt.says)
			}
			logs.noTokens(t)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		p := idp.New(idp.Options{})
		cfg := testConfig(p)
		p.Close()
		db, _ := openStore(t)
		if err := Store(db, cfg.OAuth2, account, "rt-x", time.Now()); err != nil {
			t.Fatal(err)
		}
		s, _ := newSource(t, cfg, db)
		_, err := s.AccessToken(t.Context())
		var e *Error
		if !errors.As(err, &e) || e.Kind != Unavailable {
			t.Fatalf("AccessToken = %v, want Unavailable", err)
		}
	})
	t.Run("no login", func(t *testing.T) {
		p := idp.Start(t, idp.Options{})
		db, _ := openStore(t)
		s, _ := newSource(t, testConfig(p), db)
		_, err := s.AccessToken(t.Context())
		var e *Error
		if !errors.As(err, &e) || e.Kind != NoLogin || !strings.Contains(err.Error(), "mailbot oauth login") {
			t.Fatalf("AccessToken = %v, want NoLogin saying to log in", err)
		}
		if len(p.Grants()) != 0 {
			t.Error("the provider was asked without a refresh token")
		}
	})
}

// TestTokenCommand: the command runs for each login (a helper keeps its
// own cache), its first line is the token, and a failure says the helper's
// own words but never what it printed on standard output.
func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	if err := os.WriteFile(counter, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgWith := func(line string) *config.Config {
		c := config.Default()
		c.IMAP.Auth, c.IMAP.Username = "oauth2", account
		c.OAuth2.TokenCommand = line
		return c
	}
	s, logs := newSource(t, cfgWith(fmt.Sprintf(`n=$(cat %[1]s); n=$((n+1)); echo $n > %[1]s; printf 'tok-%%s\nsecond line\n' $n`, counter)), nil)
	for i := 1; i <= 2; i++ {
		tok, err := s.AccessToken(t.Context())
		if err != nil || tok != fmt.Sprintf("tok-%d", i) {
			t.Errorf("run %d: AccessToken = %q, %v", i, tok, err)
		}
	}
	if err := s.Login("rt-new"); err == nil {
		t.Error("Login accepted a refresh token for a token_command source")
	}

	for _, tt := range []struct{ line, says string }{
		{"echo tok-leaked; echo 'helper: refresh failed' >&2; exit 3", "exit status 3: helper: refresh failed"},
		{"true", "printed no access token"},
		{"/nonexistent/helper", "exit status 127"},
	} {
		s, _ := newSource(t, cfgWith(tt.line), nil)
		_, err := s.AccessToken(t.Context())
		var e *Error
		if !errors.As(err, &e) || e.Kind != CommandFailed || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: AccessToken = %v, want a CommandFailed saying %q", tt.line, err, tt.says)
		}
		if err != nil && strings.Contains(err.Error(), "tok-leaked") {
			t.Errorf("the error shows the command's output: %v", err)
		}
	}
	logs.noTokens(t)
}

// TestWatch: the admins hear of a failure that lasts, once, and of its end.
func TestWatch(t *testing.T) {
	p := idp.Start(t, idp.Options{})
	db, _ := openStore(t)
	s, _ := newSource(t, testConfig(p), db)
	alerts := make(chan Alert, 4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	// 50 ms stands for notify_admins_after: short, so the test need not
	// wait for the default 30 minutes.
	go func() { s.Watch(ctx, 50*time.Millisecond, func(a Alert) { alerts <- a }); close(done) }()

	_, err := s.AccessToken(t.Context()) // no login stored: failing
	if err == nil {
		t.Fatal("AccessToken without a login succeeded")
	}
	a := <-alerts
	if !a.Failing || !strings.Contains(a.Reason, "no OAuth2 login is stored") || a.Since.IsZero() {
		t.Fatalf("first alert %+v; want the failure with its reason", a)
	}
	// More failures of the same kind: no second alert; then it works.
	s.AccessToken(t.Context())
	if err := Store(db, testConfig(p).OAuth2, account, p.Issue(account), time.Now()); err != nil {
		t.Fatal(err)
	}
	s2 := s // the same source: its refresher reads the store while it has no token
	if _, err := s2.AccessToken(t.Context()); err != nil {
		t.Fatal(err)
	}
	a = <-alerts
	if a.Failing {
		t.Fatalf("second alert %+v; want the recovery", a)
	}
	cancel()
	<-done
	select {
	case a := <-alerts:
		t.Errorf("an extra alert: %+v", a)
	default:
	}
}

// TestShortFailureNotAlerted: a failure that ends before the set time is
// not told to the admins.
func TestShortFailureNotAlerted(t *testing.T) {
	p := idp.Start(t, idp.Options{})
	db, _ := openStore(t)
	cfg := testConfig(p)
	s, _ := newSource(t, cfg, db)
	var calls int
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Watch(ctx, time.Hour, func(Alert) { calls++ }); close(done) }()
	s.AccessToken(t.Context())
	if err := Store(db, cfg.OAuth2, account, p.Issue(account), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessToken(t.Context()); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if calls != 0 {
		t.Errorf("%d alerts for a failure shorter than the set time", calls)
	}
}
