package mailbot

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/lmtp"
	"github.com/coworkingvisa/mailbot/mailbot/oauth"
)

// The daemon takes mail from an IMAP mailbox (inbox.Watcher), from the
// mail server over LMTP (lmtp.Server, lmtp.listen), or both: the same
// pipeline (Bot.Handle) decides, and its exactly-once record makes a
// message that comes both ways, or twice, count once.

// openLMTP sets up the LMTP listener when lmtp.listen is set; Run opens it.
func (d *Daemon) openLMTP(cfg *config.Config) {
	d.lmtpReady = make(chan struct{})
	if cfg.LMTP.Listen == "" {
		return
	}
	dir := QuarantineDir(cfg)
	d.LMTP = lmtp.New(lmtp.Config{
		Listen:     cfg.LMTP.Listen,
		Recipients: lmtp.Recipients(cfg.Bot.Address, cfg.Bot.Aliases),
		// The pipeline reads the header alone of a message over its own
		// limit, and says so to the sender; larger still is refused.
		MaxMessageBytes: max(2*cfg.Limits.MaxMessageBytes, lmtp.DefaultMaxMessageBytes),
		Keep:            func(raw []byte) (string, error) { return keepQuarantined(dir, raw) },
		Logger:          d.log,
		// Deliveries over several connections at once share commits.
	}, d.Bot.Grouper())
}

// listenLMTP opens lmtp.listen, when set, and returns the part of Run that
// serves it; nil when there is none.
func (d *Daemon) listenLMTP() (func(context.Context) error, error) {
	if d.LMTP == nil {
		return nil, nil
	}
	if err := d.LMTP.Listen(); err != nil {
		return nil, fmt.Errorf("lmtp.listen: %w", err)
	}
	return func(ctx context.Context) error {
		close(d.lmtpReady)
		return d.LMTP.Run(ctx)
	}, nil
}

// newWatcher is the IMAP inbox watcher, nil when the config reads no
// mailbox (LMTP alone).
func newWatcher(cfg *config.Config, bot *Bot, tokens *oauth.TokenSource, log *slog.Logger) *inbox.Watcher {
	if !cfg.UsesIMAP() {
		return nil
	}
	var tlsConfig *tls.Config
	if cfg.IMAP.InsecureSkipVerify {
		tlsConfig = &tls.Config{InsecureSkipVerify: true, ServerName: cfg.IMAP.Host}
	}
	ic := inbox.Config{
		Addr: net.JoinHostPort(cfg.IMAP.Host, strconv.Itoa(cfg.IMAP.Port)), TLS: cfg.IMAP.TLS, TLSConfig: tlsConfig,
		Username: cfg.IMAP.Username, Password: cfg.IMAP.Password,
		Mailbox: cfg.IMAP.Mailbox, ProcessedMailbox: cfg.IMAP.ProcessedMailbox,
		PollInterval: cfg.PollInterval, IdleRestart: cfg.IMAP.IdleRestart, CommandTimeout: cfg.IMAP.CommandTimeout,
		FastPoll: cfg.IMAP.FastPoll.Every, FastPollFor: cfg.IMAP.FastPoll.For,
		Logger: log,
	}
	if cfg.IMAP.Auth == "oauth2" {
		ic.OAuth2 = tokens.For("imap")
	}
	return inbox.New(ic, inboxHandler{bot})
}

// poke has the inbox look for mail now (the store can be written again, a
// new OAuth2 login). Mail over LMTP needs no poke: the mail server retries
// it by itself.
func (d *Daemon) poke() {
	if d.Watcher != nil {
		d.Watcher.Poke()
	}
}

// QuarantineDir is where a message that came over LMTP and kept failing is
// kept, having no quarantine mailbox to go to: next to the store.
func QuarantineDir(cfg *config.Config) string { return cfg.Store.Path + ".quarantine" }

// keepQuarantined writes a quarantined message into dir, one file each
// (0600: it is someone's mail), synced before the mail server is told it
// was taken. To have it handled again once the cause is fixed, hand it to
// the mail server (sendmail -t < FILE) or drop it in the bot's mailbox.
func keepQuarantined(dir string, raw []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	name := filepath.Join(dir, fmt.Sprintf("%s-%s.eml", time.Now().UTC().Format("20060102T150405Z"), hex.EncodeToString(sum[:6])))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("keep %s: %w", name, err)
	}
	return name, nil
}
