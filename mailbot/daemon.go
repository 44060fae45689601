package mailbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/control"
	"github.com/coworkingvisa/mailbot/mailbot/digest"
	"github.com/coworkingvisa/mailbot/mailbot/directory"
	"github.com/coworkingvisa/mailbot/mailbot/health"
	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/lmtp"
	"github.com/coworkingvisa/mailbot/mailbot/message"
	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/mailbot/oauth"
	"github.com/coworkingvisa/mailbot/mailbot/outbox"
	"github.com/coworkingvisa/mailbot/mailbot/smtpsend"
	"github.com/coworkingvisa/mailbot/mailbot/trust"
	"github.com/coworkingvisa/mailbot/mailbot/web"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// inboxHandler adapts the Bot to the inbox watcher.
type inboxHandler struct{ bot *Bot }

func (h inboxHandler) Handle(ctx context.Context, m inbox.Message) inbox.Disposition {
	return h.bot.Handle(ctx, m.Raw)
}

// HandleBatch commits a fetched batch together (group.go).
func (h inboxHandler) HandleBatch(ctx context.Context, ms []inbox.Message) []inbox.Disposition {
	raws := make([][]byte, len(ms))
	for i, m := range ms {
		raws[i] = m.Raw
	}
	return h.bot.HandleBatch(ctx, raws)
}

// SettingsFrom takes the pipeline's settings out of a loaded configuration.
func SettingsFrom(cfg *config.Config) Settings {
	set := Settings{
		BotAddress: cfg.Bot.Address,
		BotName:    cfg.Bot.Name,
		Aliases:    cfg.Bot.Aliases,
		Admins:     cfg.Admins,
		Trust:      trustPolicy(cfg),
		Limits: Limits{
			RepliesPerSenderPerHour:        cfg.Limits.RepliesPerSenderPerHour,
			RepliesPerMinute:               cfg.Limits.RepliesPerMinute,
			StrangerRepliesPerDomainPerDay: cfg.Limits.StrangerRepliesPerDomainPerDay,
			StrangerRepliesPerHour:         cfg.Limits.StrangerRepliesPerHour,
		},
		Message: message.Limits{
			MaxBytes: int(cfg.Limits.MaxMessageBytes),
			MaxLines: cfg.Limits.MaxLines,
		},
		MaxCommands: cfg.Limits.MaxCommands,
		Commands: commands.Limits{
			MaxImportBytes:  cfg.Limits.ImportMaxBytes,
			MaxImportRows:   cfg.Limits.ImportMaxRows,
			ConfirmRemovals: cfg.Limits.ConfirmRemovals,
		},
		MaxMessageAge:     cfg.Limits.MaxMessageAge,
		MaxReplyBytes:     cfg.Limits.MaxReplyBytes,
		MaxAttempts:       cfg.Limits.MaxAttempts,
		QuarantineMailbox: cfg.IMAP.QuarantineMailbox,
		RejectedMailbox:   cfg.IMAP.RejectedMailbox,
		Language:          cfg.Bot.Language,
		DefaultTZ:         defaultZone(cfg),
		RosterConfirmDays: cfg.Digest.RosterConfirmDays,
		Contact:           cfg.Bot.ContactOrAdmin(cfg.Admins),
		DigestDay:         cfg.Digest.Weekday,
		DigestTime:        cfg.Digest.Time,
	}
	if !cfg.UsesIMAP() && cfg.LMTP.Listen != "" {
		// Over LMTP alone, quarantined mail is kept in files (intake.go),
		// and the admins' notice names their directory.
		set.QuarantineMailbox, set.QuarantineKept = QuarantineDir(cfg), true
	}
	return set
}

// defaultZone is the zone of spaces that name none (digest.timezone,
// which the config's validation loaded once already).
func defaultZone(cfg *config.Config) *time.Location {
	if sch, err := cfg.Digest.Schedule(); err == nil {
		return sch.Location
	}
	return time.UTC
}

// trustPolicy is the configured trust, with the bot's own DKIM check when
// auth.verify_dkim asks for it.
func trustPolicy(cfg *config.Config) trust.Policy {
	p := trust.Policy{Require: cfg.Auth.Require, AuthservID: cfg.Auth.AuthservID, BotAddress: cfg.Bot.Address}
	if cfg.Auth.VerifyDKIM {
		p.DKIM = trust.NewDKIMVerifier(cfg.Auth.DNSServer, cfg.Auth.DNSTimeout)
	}
	return p
}

// classify tells the outbox what an SMTP error means.
func classify(err error) outbox.Failure {
	switch {
	case smtpsend.IsPermanent(err):
		return outbox.Permanent
	case smtpsend.IsSessionFailure(err):
		return outbox.Unreachable
	}
	return outbox.Temporary
}

// Daemon is the running bot: store, inbox watcher and outbox.
type Daemon struct {
	DB      *storage.DB
	Bot     *Bot
	Outbox  *outbox.Queue
	Watcher *inbox.Watcher // nil when the bot reads no IMAP mailbox
	// LMTP takes deliveries from the mail server (lmtp.listen); nil
	// without (intake.go).
	LMTP   *lmtp.Server
	Digest *digest.Scheduler
	log    *slog.Logger
	// keep is how long the exactly-once records stay: as long as a
	// message is accepted at all, and a day more.
	keep time.Duration
	// storePath locates the control socket next to the store, through
	// which operator commands reach the running daemon.
	storePath string
	// retention is privacy.retention: how long visa records are kept.
	retention time.Duration

	// Metrics, Health and Web are what an operator watches (observe.go):
	// other parts add health checks and routes to them in Open. Web
	// listens on httpListen, when set.
	Metrics    *metrics.Metrics
	Health     *health.Checks
	Web        *web.Server
	httpListen string
	// OAuth is the source of the access tokens where imap or smtp logs in
	// with OAuth2, nil otherwise. OAuth.Healthy tells whether those logins
	// work, for health checks.
	OAuth      *oauth.TokenSource
	oauthAlert func(oauth.Alert)
	oauthAfter time.Duration

	lmtpReady chan struct{} // closed once LMTP serves (intake.go)
}

// Open opens the store and builds the daemon from cfg without starting it.
func Open(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	db, err := storage.Open(cfg.Store.Path)
	if err != nil {
		return nil, err
	}
	tmpl, err := templates.New(cfg.Templates.Dir)
	if err == nil && !tmpl.Supports(cfg.Bot.Language) {
		err = fmt.Errorf("bot.language: no catalog for %q (the bot speaks %v)", cfg.Bot.Language, tmpl.Languages())
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	// One OAuth2 login serves imap and smtp, where they use it.
	var tokens *oauth.TokenSource
	if cfg.UsesOAuth2() {
		tokens = oauth.New(cfg, db, log)
	}
	m := metrics.New()
	newSender := func() outbox.Sender {
		sc := smtpsend.Config{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, TLS: cfg.SMTP.TLS,
			Username: cfg.SMTP.Username, Password: cfg.SMTP.Password,
			InsecureSkipVerify: cfg.SMTP.InsecureSkipVerify,
		}
		if cfg.SMTP.Auth == "oauth2" {
			sc.OAuth2 = tokens.For("smtp")
		}
		return smtpsend.New(sc)
	}
	senders := make([]outbox.Sender, max(cfg.SMTP.Connections, 1))
	for i := range senders {
		senders[i] = newSender()
	}
	var bot *Bot
	out := outbox.New(db, senders, outbox.Config{
		Backoff: outbox.Backoff{Initial: cfg.Outbox.RetryInitial, Max: cfg.Outbox.RetryMax, GiveUpAfter: cfg.Outbox.GiveUpAfter},
		// More connections beside stalled sends, up to the most a polite
		// client opens (the validation's bound of smtp.connections).
		Extra:          newSender,
		MaxConnections: config.MaxConnections,
		Classify:       classify,
		OnHeld:         func(it storage.OutboxItem) { bot.NotifyHeld(it) },
		OnDropped:      func(it storage.OutboxItem, err error) { bot.NotifyDropped(it, err) },
		Metrics:        m,
		Log:            log,
	})
	set := SettingsFrom(cfg)
	set.Metrics = m
	bot = NewBot(set, db, tmpl, log, nil, out.Kick)
	// A notice that must not need the store (it may be the store that
	// fails) goes out over a connection of its own.
	bot.SetDirect(func(to string, raw []byte) error {
		s := newSender()
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), outbox.DefaultSendTimeout)
		defer cancel()
		return s.Send(ctx, cfg.Bot.Address, []string{to}, raw)
	})
	w := newWatcher(cfg, bot, tokens, log)
	dset, err := digest.SettingsFrom(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	dset.Metrics = m
	sched := digest.New(db, tmpl, dset, log, nil, out.Kick)
	d := &Daemon{DB: db, Bot: bot, Outbox: out, Watcher: w, Digest: sched, log: log, storePath: cfg.Store.Path,
		keep: cfg.Limits.MaxMessageAge + 24*time.Hour, Metrics: m, retention: time.Duration(cfg.Privacy.Retention)}
	// When the store can be written again after a full disk, the waiting
	// mail is read at once, not at the next poll.
	bot.SetResumed(d.poke)
	d.openLMTP(cfg)
	if tokens != nil {
		account, smtpToo := cfg.OAuth2Account(), cfg.SMTP.Auth == "oauth2"
		d.OAuth, d.oauthAfter = tokens, cfg.OAuth2.NotifyAdminsAfter
		d.oauthAlert = func(a oauth.Alert) { bot.NotifyOAuth(account, smtpToo, a) }
	}
	d.observe(cfg)
	dir, err := directory.New(db, tmpl, directory.Options{BotAddress: cfg.Bot.Address, Language: cfg.Bot.Language, Log: log})
	if err != nil {
		db.Close()
		return nil, err
	}
	dir.Register(d.Web)
	if tokens != nil {
		d.Health.Add("oauth2", tokens.Healthy)
		tokens.OnFetch(m.TokenRefreshed)
	}
	return d, nil
}

// Run serves until ctx is done: the message in hand is finished, the sends
// in hand complete, and the store is closed. Then it returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	// The control socket lets `mailbot backup/export/import` work while
	// the daemon holds the store (bbolt allows one process per file).
	ctl, err := control.ListenLog(d.storePath, d.log)
	if err != nil {
		d.DB.Close()
		return fmt.Errorf("mailbot: %w", err)
	}
	serveLMTP, err := d.listenLMTP()
	if err != nil {
		ctl.Close()
		d.DB.Close()
		return fmt.Errorf("mailbot: %w", err)
	}
	serveWeb, err := d.listenWeb()
	if err != nil {
		ctl.Close()
		d.DB.Close()
		return fmt.Errorf("mailbot: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hooks := control.Hooks{Digest: d.Digest.SendNow, Kick: d.Outbox.Kick}
	if d.OAuth != nil {
		hooks.OAuthLogin = d.oauthLogin
	}
	serveControl := func(ctx context.Context) error {
		return control.Serve(ctx, ctl, control.NewHandler(d.DB, hooks))
	}
	parts := []func(context.Context) error{d.Outbox.Run, d.Digest.Run, serveControl, d.maintain, d.compactWhenDue}
	if d.Watcher != nil {
		parts = append(parts, d.Watcher.Run)
	}
	if serveLMTP != nil {
		parts = append(parts, serveLMTP)
	}
	if serveWeb != nil {
		parts = append(parts, serveWeb)
	}
	if d.OAuth != nil {
		parts = append(parts, d.watchOAuth)
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, run := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One part failing stops the others: a daemon half running
			// is worse than one that exits and is restarted.
			if errs[i] = run(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	d.log.Info("mailbot running")
	wg.Wait()
	closeErr := d.DB.Close()
	d.log.Info("mailbot stopped")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mailbot: %w", err)
	}
	if closeErr != nil {
		return fmt.Errorf("mailbot: close store: %w", closeErr)
	}
	return nil
}

// watchOAuth tells the admins when the OAuth2 logins have failed for
// oauth2.notify_admins_after, and when they work again.
func (d *Daemon) watchOAuth(ctx context.Context) error {
	d.OAuth.Watch(ctx, d.oauthAfter, d.oauthAlert)
	return nil
}

// oauthLogin takes a new OAuth2 login from the control socket and logs in
// with it now.
func (d *Daemon) oauthLogin(refreshToken string) error {
	if err := d.OAuth.Login(refreshToken); err != nil {
		return err
	}
	d.poke()
	d.Outbox.Kick()
	return nil
}

// Ready is closed once the inbox is connected and the first sweep is done,
// or, without an inbox, once the LMTP listener serves.
func (d *Daemon) Ready() <-chan struct{} {
	if d.Watcher == nil {
		return d.lmtpReady
	}
	return d.Watcher.Ready()
}

// pruneEvery is how often the daemon removes records that have served.
const pruneEvery = time.Hour

// maintain prunes, at start and every hour, the records that serve for a
// while only: the exactly-once records older than keep (a message that old
// is refused by its Date anyway), reply counters of past windows, and the
// confirmations' leftovers (commands.Prune).
func (d *Daemon) maintain(ctx context.Context) error {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		d.prune(time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// prune removes what has served; a failure is logged and tried again at
// the next round.
func (d *Daemon) prune(now time.Time) {
	var handled, rates, confirmations int
	err := d.DB.Update(func(tx *storage.Tx) (err error) {
		if handled, err = tx.PruneHandled(now.Add(-d.keep)); err != nil {
			return err
		}
		// The longest reply-counting window is a day.
		if rates, err = tx.PruneRates(now.Add(-24 * time.Hour)); err != nil {
			return err
		}
		confirmations, err = commands.Prune(tx, now)
		return err
	})
	if err != nil {
		d.log.Error("pruning old records", "error", err)
		return
	}
	if handled+rates+confirmations > 0 {
		d.log.Info("pruned old records", "handled", handled, "rates", rates, "confirmations", confirmations)
	}
	d.pruneVisa(now)
}
