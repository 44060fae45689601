// Package oauth gets the access tokens the bot logs in to its own mailbox
// with, where the config says auth: oauth2 (Microsoft 365 accepts nothing
// else; Google prefers it to app passwords).
//
// A TokenSource gets them from the provider's token endpoint with the
// refresh token that `mailbot oauth login` stored (see Login, DeviceLogin
// and BrowserLogin), through golang.org/x/oauth2; a refresh token the
// provider rotates (Microsoft sends a new one with every access token and
// the old one stops working) is stored at once. Or it runs
// oauth2.token_command, an operator's own helper, for each login.
//
// The source also keeps the state of the OAuth2 logins, from its own
// fetches and from what the IMAP and SMTP clients report (Login.LoginDone):
// it logs each change once (never a token), Healthy tells health checks,
// and Watch tells the admins when logins have failed for too long.
package oauth

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
)

// fetcher gets a new access token.
type fetcher interface {
	fetch(ctx context.Context) (*oauth2.Token, error)
}

// TokenSource hands out access tokens and keeps the state of the logins
// made with them. Its methods are safe for concurrent use.
type TokenSource struct {
	fetcher fetcher
	// reuse: a token is kept until it expires or a server refuses it
	// (the provider's); token_command is run for each login instead.
	reuse bool
	// refresher is the fetcher when tokens come from the provider, for
	// Login; nil with token_command.
	refresher *refresher
	log       *slog.Logger
	now       func() time.Time

	fetchMu sync.Mutex // one fetch at a time: logins waiting on it share its token

	// fetched, if set, is told of every fetch of a new access token and
	// its error (nil when it worked): for the daemon's metrics.
	fetched func(error)

	mu      sync.Mutex
	token   *oauth2.Token
	refused string            // an access token a server refused: never offered again
	faults  map[string]*fault // what fails now, by part: partToken, or a server ("imap", "smtp")
	since   time.Time         // when the logins began to fail; zero while they work
	changed chan struct{}     // closed at each change of the state, then replaced
}

// partToken is the fault of getting tokens, as opposed to a server's.
const partToken = "token"

type fault struct {
	err   *Error
	since time.Time
}

// New returns the token source of cfg's oauth2 section: oauth2.token_command
// if set, else the provider's token endpoint with the refresh token stored
// in db for the OAuth2 account (config.OAuth2Account).
func New(cfg *config.Config, db *storage.DB, log *slog.Logger) *TokenSource {
	if log == nil {
		log = slog.Default()
	}
	s := &TokenSource{log: log, now: time.Now, faults: map[string]*fault{}, changed: make(chan struct{})}
	if cfg.OAuth2.TokenCommand != "" {
		s.fetcher = command{line: cfg.OAuth2.TokenCommand}
		return s
	}
	s.refresher = &refresher{
		conf: Config(cfg.OAuth2), db: db, key: storage.OAuthKey(cfg.OAuth2.ClientID, cfg.OAuth2Account()),
		account: cfg.OAuth2Account(), log: log, now: s.now,
	}
	s.fetcher, s.reuse = s.refresher, true
	return s
}

// AccessToken returns an access token to log in with now: the one in hand
// while it is valid and no server refused it, else a new one.
func (s *TokenSource) AccessToken(ctx context.Context) (string, error) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	s.mu.Lock()
	tok := s.token
	if s.reuse && tok.Valid() && tok.AccessToken != s.refused {
		s.mu.Unlock()
		return tok.AccessToken, nil
	}
	s.mu.Unlock()

	tok, err := s.fetcher.fetch(ctx)
	if err == nil && tok.AccessToken == "" {
		err = errors.New("the token endpoint answered without an access token")
	}
	if s.fetched != nil && ctx.Err() == nil {
		s.fetched(err)
	}
	if err != nil {
		e := explainFetch(err)
		if ctx.Err() == nil {
			// (A fetch cut short by shutdown says nothing of the login.)
			s.setFault(partToken, e)
		}
		return "", e
	}
	s.mu.Lock()
	s.token = tok
	s.mu.Unlock()
	s.clearFault(partToken)
	return tok.AccessToken, nil
}

// OnFetch sets f to be told of every fetch of a new access token and its
// error (nil when it worked). Call it before the token source is used.
func (s *TokenSource) OnFetch(f func(error)) { s.fetched = f }

// For returns the token source as one server's logins use it: what they
// report is kept and logged under part ("imap", "smtp").
func (s *TokenSource) For(part string) *Login { return &Login{s: s, part: part} }

// Login is a TokenSource as one server's logins use it (see For). It is
// what inbox.Config and smtpsend.Config take.
type Login struct {
	s    *TokenSource
	part string
}

// AccessToken is TokenSource.AccessToken.
func (l *Login) AccessToken(ctx context.Context) (string, error) { return l.s.AccessToken(ctx) }

// LoginDone records how a login with token went: err nil when the server
// took it, else the server's refusal (a sasl.RefusedError, a NO, a 535),
// after which the token is never offered again. Failures to reach the
// server are not reported: they say nothing about the token.
func (l *Login) LoginDone(token string, err error) {
	if err == nil {
		l.s.clearFault(l.part)
		return
	}
	l.s.mu.Lock()
	l.s.refused = token
	l.s.mu.Unlock()
	l.s.setFault(l.part, explainRefusal(l.part, err))
}

// Healthy reports whether the OAuth2 logins work: false while getting an
// access token fails or a server refuses the last one, with a one-line
// reason (never a token) saying what fails and what to do. It is true
// before the first login. For health checks (/healthz): it never blocks
// on the network.
func (s *TokenSource) Healthy() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return true, ""
	}
	return false, s.reasonLocked()
}

// reasonLocked lists the faults, getting tokens first, then by server.
func (s *TokenSource) reasonLocked() string {
	parts := make([]string, 0, len(s.faults))
	for p := range s.faults {
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == partToken:
			return -1
		case b == partToken:
			return 1
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.faults[p].err.Error())
	}
	return b.String()
}

// Login stores refreshToken, from a new `mailbot oauth login`, in place of
// the one in use, and starts afresh: the next login gets an access token
// with it. The daemon calls it when the login comes through its control
// socket.
func (s *TokenSource) Login(refreshToken string) error {
	if s.refresher == nil {
		return errors.New("oauth2: this bot gets its access tokens from oauth2.token_command, not from a stored login")
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if err := s.refresher.store(refreshToken, "login"); err != nil {
		return err
	}
	s.refresher.refresh = refreshToken
	s.mu.Lock()
	s.token, s.refused = nil, ""
	s.mu.Unlock()
	s.log.Info("oauth2: a new login was stored; logging in with it", "account", s.refresher.account)
	return nil
}

// setFault records that part fails with e. A fault of a new kind is logged,
// one of the kind already recorded is not: a retry that fails the same way
// is no news.
func (s *TokenSource) setFault(part string, e *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	old := s.faults[part]
	if old != nil && old.err.Kind == e.Kind {
		old.err = e
		return
	}
	f := &fault{err: e, since: now}
	if old != nil {
		f.since = old.since
	}
	s.faults[part] = f
	if s.since.IsZero() {
		s.since = now
	}
	if part == partToken {
		s.log.Error("oauth2: cannot get an access token; retrying", "kind", e.Kind, "error", e.Error())
	} else {
		s.log.Error("oauth2: the server refuses the login; retrying", "server", part, "kind", e.Kind, "error", e.Error())
	}
	s.signalLocked()
}

// clearFault records that part works; the end of a fault is logged.
func (s *TokenSource) clearFault(part string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[part]
	if f == nil {
		return
	}
	delete(s.faults, part)
	down := s.now().Sub(f.since).Round(time.Second)
	if part == partToken {
		s.log.Info("oauth2: access tokens are issued again", "after", down)
	} else {
		s.log.Info("oauth2: the server takes the login again", "server", part, "after", down)
	}
	if len(s.faults) == 0 {
		s.since = time.Time{}
	}
	s.signalLocked()
}

func (s *TokenSource) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// state is a snapshot for Watch.
func (s *TokenSource) state() (since time.Time, reason string, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) > 0 {
		reason = s.reasonLocked()
	}
	return s.since, reason, s.changed
}
