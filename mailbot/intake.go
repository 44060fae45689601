package mailbot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/lmtp"
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

// runLMTP serves LMTP until ctx is done.
func (d *Daemon) runLMTP(ctx context.Context) error {
	close(d.lmtpReady)
	return d.LMTP.Run(ctx)
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
