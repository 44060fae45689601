// Package inbox watches the bot's IMAP mailbox and hands each unhandled
// message, one at a time and in UID order, to a Handler; afterwards it marks
// the message handled and, if configured, moves it aside.
//
// "Unhandled" is a server-side fact: a message without the $MailbotHandled
// keyword and without \Deleted (UID SEARCH UNKEYWORD $MailbotHandled
// UNDELETED, RFC 3501 §6.4.4, RFC 9051 §6.4.4). Marking happens only after the
// handler returned, and a failed mark is only logged: the handler keeps its
// own exactly-once record, so seeing a message twice is harmless, while
// marking one that was never handled would lose it.
//
// A message flagged but not moved (the process died between the two, or the
// move failed) is handed again on the first sweep of each connection, where
// handled mail is meant to leave the mailbox: the handler recognises it and
// it goes where it was going.
//
// The Watcher waits with IDLE (RFC 2177) where the server has it, polls
// otherwise, and reconnects after any failure. go-imap v2 beta.8 has no read
// deadline while a command waits for its answer, so every command runs under
// a watchdog that closes the connection when no answer comes.
package inbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Keywords the bot stores on messages (RFC 3501 §2.3.2 flag keywords).
const (
	// KeywordHandled marks a message whose handler has returned Handled or SetAside.
	KeywordHandled = "$MailbotHandled"
	// KeywordRejected additionally marks a message that was set aside.
	KeywordRejected = "$MailbotRejected"
)

// Config says where the inbox is and how to watch it. Zero durations and
// sizes take the defaults documented on each field.
type Config struct {
	Addr string // host:port
	// TLS is "implicit" (the default), "starttls" or "none" (loopback only).
	TLS string
	// TLSConfig is optional; its ServerName defaults to the host of Addr.
	TLSConfig          *tls.Config
	Username, Password string
	// OAuth2, when set, logs in as Username with an access token from it
	// (SASL OAUTHBEARER or XOAUTH2, whichever the server offers) instead
	// of the Password.
	OAuth2 TokenSource
	// Mailbox is the watched mailbox, "INBOX" by default.
	Mailbox string
	// ProcessedMailbox receives handled mail after it is marked; "" leaves
	// it in place, flagged. Created if missing.
	ProcessedMailbox string
	// PollInterval is the safety-net sweep even with IDLE, and the only
	// wake-up without it (default 60s).
	PollInterval time.Duration
	// IdleRestart re-issues IDLE at least this often (default 5m, at most
	// 10m: some servers drop clients idle for longer, RFC 2177 §3).
	IdleRestart time.Duration
	// CommandTimeout is the watchdog: a command (ending IDLE included) not
	// answered within it closes the connection and the watcher reconnects
	// (default 60s).
	CommandTimeout time.Duration
	// FastPoll cuts the wait behind the server's notice of new mail:
	// for FastPollFor after new mail was last handed over, the watcher
	// polls with NOOP every FastPoll instead of waiting in IDLE (Dovecot
	// tells an idling client of new mail only 500 ms after it arrived; a
	// NOOP sees it at once). 0 always waits in IDLE.
	FastPoll    time.Duration
	FastPollFor time.Duration
	// BatchSize is the number of UIDs fetched per UID FETCH (default 50).
	BatchSize int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// TokenSource gives the access tokens of OAuth2 logins; package oauth has
// the bot's (oauth.Login).
type TokenSource interface {
	// AccessToken returns a token to log in with now.
	AccessToken(ctx context.Context) (string, error)
	// LoginDone reports how a login with token went: nil when the server
	// took it, else the server's refusal.
	LoginDone(token string, err error)
}

// errOAuth2 marks a failed OAuth2 login. The token source logs each change
// of the logins' state once, so the watcher does not repeat it at every
// retry.
var errOAuth2 = errors.New("oauth2 login")

// repeatWarn is how often the same connection failure is logged again at
// Warn while it lasts.
const repeatWarn = 10 * time.Minute

// maxIdleRestart is the longest IDLE we allow: servers may log out clients
// idle for 30 minutes (RFC 3501 §5.4) and some do so after about 10.
const maxIdleRestart = 10 * time.Minute

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Addr == "" {
		return cfg, errors.New("inbox: no server address")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return cfg, fmt.Errorf("inbox: server address %q: %w", cfg.Addr, err)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = "implicit"
	case "implicit", "starttls", "none":
	default:
		return cfg, fmt.Errorf("inbox: unknown TLS mode %q (want implicit, starttls or none)", cfg.TLS)
	}
	if cfg.OAuth2 != nil && cfg.Username == "" {
		return cfg, errors.New("inbox: an OAuth2 login needs the user name")
	}
	if cfg.Mailbox == "" {
		cfg.Mailbox = "INBOX"
	}
	if cfg.ProcessedMailbox == cfg.Mailbox {
		return cfg, fmt.Errorf("inbox: processed mailbox %q is the watched mailbox", cfg.Mailbox)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 60 * time.Second
	}
	if cfg.IdleRestart <= 0 {
		cfg.IdleRestart = 5 * time.Minute
	}
	if cfg.IdleRestart > maxIdleRestart {
		return cfg, fmt.Errorf("inbox: IDLE restart %v exceeds %v", cfg.IdleRestart, maxIdleRestart)
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 60 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 50
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// Message is one unhandled message, fetched with BODY.PEEK[] so reading never
// sets \Seen.
type Message struct {
	UID         uint32
	UIDValidity uint32 // UIDs name the same message only under the same UIDVALIDITY
	Raw         []byte // the whole RFC 5322 message
	Mailbox     string
}

// Action is what the inbox does with a message once its handler returned.
type Action int

const (
	// Leave does nothing: the message is handed again on the next wake-up
	// (poll, poke, new mail, reconnect). Meant for transient internal errors.
	// It is the zero value, so a forgotten disposition never marks mail.
	Leave Action = iota
	// Handled flags the message and moves it to Config.ProcessedMailbox.
	Handled
	// SetAside flags it as handled and rejected and moves it to
	// Disposition.Mailbox (left in place if that is empty).
	SetAside
	// Quarantine moves it to Disposition.Mailbox without any keyword of
	// the bot's, for a message whose handling kept failing (nothing was
	// committed for it): a person who moves it back into the watched
	// mailbox, once the cause is fixed, has it handled again.
	Quarantine
)

// String names the action for logs.
func (a Action) String() string {
	switch a {
	case Leave:
		return "leave"
	case Handled:
		return "handled"
	case SetAside:
		return "set-aside"
	case Quarantine:
		return "quarantine"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Disposition tells the inbox what to do with a message after the handler
// committed its effects.
type Disposition struct {
	Action  Action
	Mailbox string // for SetAside: target mailbox, created if missing
	Reason  string // logged with the message
}

// Handler handles one message. Its effects must be committed when it
// returns: the inbox marks the message afterwards and may hand it again if
// marking fails. The context is not cancelled while a message is in hand.
type Handler interface {
	Handle(ctx context.Context, m Message) Disposition
}

// BatchHandler is a Handler that may take a fetched batch at once, to
// commit the messages together: it returns one disposition per message,
// in order, each message's effects committed when it returns, as with
// Handle. The watcher uses HandleBatch where the handler has it.
type BatchHandler interface {
	Handler
	HandleBatch(ctx context.Context, msgs []Message) []Disposition
}

// Watcher connects to the server, watches the mailbox and feeds the handler.
type Watcher struct {
	cfg   Config
	h     Handler
	poke  chan struct{}
	ready chan struct{}

	readyOnce sync.Once
	running   atomic.Bool

	backoffMin, backoffMax time.Duration

	// State carried across connections, used only by Run's goroutine.
	budget           int64 // bytes asked for in one UID FETCH (slowlink.go); 0 = maxFetchBytes
	lastUIDValidity  uint32
	newestUID        uint32    // the highest UID handed over, under newestValidity
	newestValidity   uint32    // the UIDVALIDITY newestUID belongs to
	lastMail         time.Time // when a message newer than any before was handed over (FastPoll)
	warnedNoKeywords bool
	warnedNoExpunge  bool

	status statusBox // what Status reports

	now func() time.Time // the clock of FastPollFor; time.Now but in tests
}

// fetchBudget is the bytes one UID FETCH may ask for now.
func (w *Watcher) fetchBudget() int64 {
	if w.budget == 0 {
		w.budget = maxFetchBytes
	}
	return w.budget
}

// shrinkFetch halves the fetch budget after a fetch fell silent, and
// returns the new one.
func (w *Watcher) shrinkFetch() int64 {
	w.budget = max(w.fetchBudget()/2, minFetchBytes)
	return w.budget
}

// growFetch doubles the fetch budget again after a fetch that worked, up
// to its bound: a link that was slow for a while gets its big batches back.
func (w *Watcher) growFetch() {
	w.budget = min(w.fetchBudget()*2, maxFetchBytes)
}

// New returns a Watcher for cfg that hands messages to h. Configuration
// errors are reported by Run.
func New(cfg Config, h Handler) *Watcher {
	return &Watcher{
		cfg:        cfg,
		h:          h,
		poke:       make(chan struct{}, 1),
		ready:      make(chan struct{}),
		backoffMin: time.Second,
		backoffMax: time.Minute,
		now:        time.Now,
	}
}

// sawNew records that messages up to UID newest were handed over: when
// one is newer than any before, mail is coming in, and the watcher polls
// fast for a while (Config.FastPoll).
func (w *Watcher) sawNew(uidValidity, newest uint32) {
	if uidValidity != w.newestValidity {
		w.newestValidity, w.newestUID = uidValidity, 0
	}
	if newest > w.newestUID {
		w.newestUID, w.lastMail = newest, w.now()
	}
}

// Poke wakes the watcher up for a sweep now, e.g. after an external signal
// that mail arrived. It never blocks; pokes during a sweep cause one more.
func (w *Watcher) Poke() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// Ready is closed once the first login and the first sweep succeeded, so
// tests and the demo know the watcher is live.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run watches the mailbox until ctx is done, reconnecting after failures with
// capped exponential backoff (1s to 60s, with jitter). It returns nil when ctx
// is cancelled, after finishing the message in hand and logging out, and an
// error only for an invalid configuration or a second concurrent Run.
func (w *Watcher) Run(ctx context.Context) error {
	cfg, err := w.cfg.withDefaults()
	if err != nil {
		return err
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("inbox: Run is already running")
	}
	defer w.running.Store(false)
	log := cfg.Logger.With("imap", cfg.Addr, "mailbox", cfg.Mailbox)

	backoff := w.backoffMin
	var said string      // the failure last logged at Warn
	var saidAt time.Time // when
	for failures := 1; ; failures++ {
		healthy, err := w.session(ctx, &cfg, log)
		w.status.update(func(s *Status) {
			s.Connected, s.Waiting = false, false
			if err != nil {
				s.LastError = err.Error()
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			backoff, failures = w.backoffMin, 1
		}
		// Equal jitter: half fixed, half random, so that several bots
		// restarted together do not reconnect in lockstep.
		delay := backoff/2 + rand.N(backoff/2+1)
		// The same failure again and again (a deleted mailbox, a server
		// down for hours) is said once, then every repeatWarn; the retries
		// in between are debug lines.
		level := slog.LevelWarn
		switch {
		case errors.Is(err, errOAuth2):
			level = slog.LevelDebug // the token source says it, once per state
		case err != nil && err.Error() == said && time.Since(saidAt) < repeatWarn:
			level = slog.LevelDebug
		case err != nil:
			said, saidAt = err.Error(), time.Now()
		}
		log.Log(ctx, level, "imap connection failed", "error", err, "failures", failures, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-w.poke:
			// Something was fixed (a new OAuth2 login): try now.
			t.Stop()
		}
		backoff = min(2*backoff, w.backoffMax)
	}
}

// session runs one connection until it fails or ctx is done. healthy reports
// whether it got as far as a completed first sweep (which resets the backoff).
func (w *Watcher) session(ctx context.Context, cfg *Config, log *slog.Logger) (healthy bool, err error) {
	s, err := dial(ctx, w, cfg, log)
	if err != nil {
		return false, err
	}
	defer s.raw.Close()
	if err := s.open(ctx); err != nil {
		return false, err
	}
	w.status.update(func(st *Status) { st.Connected = true })
	if err := s.round(ctx); err != nil {
		return false, err
	}
	w.readyOnce.Do(func() { close(w.ready) })

	for ctx.Err() == nil {
		w.status.update(func(st *Status) { st.Waiting = true })
		err := s.wait(ctx)
		w.status.update(func(st *Status) { st.Waiting = false })
		if err != nil {
			return true, err
		}
		if ctx.Err() != nil {
			break
		}
		if err := s.round(ctx); err != nil {
			return true, err
		}
	}
	s.logout(ctx)
	return true, nil
}
