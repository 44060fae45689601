package mailbot

import (
	"context"
	"slices"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// What the daemon does for privacy besides the commands: retention
// (privacy.retention), in the hourly prune, and the compaction of the
// store after someone was forgotten.

// pruneVisa removes the verifications, visits and used days older than
// the retention, and pseudonymises, in the audit records older than it,
// the addresses of people on no roster any more (the admins keep theirs:
// the config names them anyway). The audit is read in a read-only
// transaction first, so that intake is held up only while there is
// something to rewrite.
func (d *Daemon) pruneVisa(now time.Time) {
	if d.retention <= 0 {
		return
	}
	before := now.Add(-d.retention)
	var names map[string]string
	err := d.DB.View(func(tx *storage.Tx) (err error) {
		names, err = tx.OffRoster(before, func(a string) bool { return slices.Contains(d.Bot.set.Admins, a) })
		return err
	})
	var pruned, pseudonymised int
	if err == nil {
		err = d.DB.Update(func(tx *storage.Tx) (err error) {
			if pruned, err = tx.PruneVisa(before); err != nil {
				return err
			}
			pseudonymised, err = tx.PseudonymiseAudit(names, before)
			return err
		})
	}
	if err != nil {
		d.log.Error("pruning records past privacy.retention", "error", err)
		return
	}
	if pruned+pseudonymised > 0 {
		d.log.Info("pruned records past privacy.retention", "visa_records", pruned, "audit_pseudonymised", pseudonymised,
			"retention", d.retention.String())
	}
}

// compactCheckEvery is how often the daemon looks whether the store is to
// be compacted (a cheap read of one record).
const compactCheckEvery = 5 * time.Second

// compactGap is the least time between two compactions: a crowd of
// erasures (each stranger may ask once a day) rewrites a large store at
// most this often, and each compaction covers every erasure before it.
const compactGap = 10 * time.Minute

// compactWhenDue compacts the store after someone was forgotten, once
// every message queued until then has left the outbox (a reply to them,
// the managers' notices): then no byte of their address is left in the
// file, free pages included. Transactions wait while it runs.
func (d *Daemon) compactWhenDue(ctx context.Context) error {
	t := time.NewTicker(compactCheckEvery)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !last.IsZero() && time.Since(last) < compactGap {
			continue
		}
		var asked, ready bool
		err := d.DB.View(func(tx *storage.Tx) (err error) {
			asked, ready, err = tx.CompactionDue()
			return err
		})
		if err != nil || !asked || !ready {
			continue
		}
		start := time.Now()
		last = start
		res, err := d.DB.Compact()
		if err != nil {
			d.log.Error("compacting the store after an erasure", "error", err)
			continue
		}
		d.log.Info("store compacted after an erasure", "bytes_before", res.Before, "bytes_after", res.After,
			"took", time.Since(start).Round(time.Millisecond).String())
	}
}
