package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/coworkingvisa/mailbot/mailbot"
	"github.com/coworkingvisa/mailbot/mailbot/control"
)

// cmdDigest builds digests at once: through the running daemon when there
// is one, else with the store opened here, sending what it queued.
func cmdDigest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("digest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	now := fs.Bool("now", false, "build the digests now, whatever the schedule (required)")
	space := fs.String("space", "", "only this space's digest (default: every space and the network digest)")
	dryRun := fs.Bool("dry-run", false, "print the digests instead of sending them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*now {
		return errors.New("--now is required: weekly digests are sent by the daemon on schedule")
	}
	if *cfgPath == "" {
		return errors.New("--config FILE is required")
	}
	storePath, err := storePathFromConfig(*cfgPath)
	if err != nil {
		return err
	}
	if c, err := control.Dial(storePath); err == nil {
		defer c.Close()
		return c.Digest(ctx, *space, *dryRun, stdout)
	} else if !errors.Is(err, control.ErrNoDaemon) {
		return err
	}
	cfg, log, err := loadConfig("digest", []string{"--config", *cfgPath}, stderr)
	if err != nil {
		return err
	}
	d, err := mailbot.Open(cfg, log)
	if err != nil {
		return err
	}
	err = d.Digest.SendNow(*space, *dryRun, stdout)
	if err == nil && !*dryRun {
		// No daemon to send them: send now; what fails waits in the outbox.
		if ferr := d.Outbox.Flush(ctx); ferr != nil {
			log.Warn("digests queued but not all sent yet; the daemon will send them", "error", ferr)
		}
	}
	if cerr := d.DB.Close(); err == nil {
		err = cerr
	}
	return err
}
