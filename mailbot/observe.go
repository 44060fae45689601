package mailbot

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/health"
	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/outbox"
	"github.com/coworkingvisa/mailbot/mailbot/web"
	"github.com/coworkingvisa/mailbot/storage"
)

// observe sets up what an operator watches: the health checks of the
// store, the inbox and the outbox, the gauges read at each scrape, and the
// web listener's /healthz and /metrics. Other parts add their own checks
// (d.Health.Add) and routes (d.Web.Handle) after it.
func (d *Daemon) observe(cfg *config.Config) {
	d.Health = &health.Checks{}
	d.Web = web.New(web.Options{MetricsPublic: cfg.HTTP.MetricsPublic, Log: d.log})
	d.httpListen = cfg.HTTP.Listen
	started := time.Now()
	waiting := &outboxView{db: d.DB}

	d.Health.Add("store", d.storeOpen)
	if d.Watcher != nil {
		d.Health.Add("inbox", inboxReached(d.Watcher.Status, started, cfg.Health.InboxStaleAfter))
	}
	d.Health.Add("outbox", repliesGoOut(waiting, cfg.Health.OutboxStaleAfter))
	d.Health.Add("store writes", d.Bot.StoreWritable)

	m := d.Metrics
	if d.Watcher != nil {
		m.Gauge("mailbot_imap_connected", func() float64 {
			if d.Watcher.Status().Connected {
				return 1
			}
			return 0
		})
		m.Gauge("mailbot_imap_last_reached_timestamp_seconds", func() float64 {
			return unixSeconds(d.Watcher.Status().Reached(time.Now()))
		})
		m.Gauge("mailbot_imap_last_sweep_timestamp_seconds", func() float64 {
			return unixSeconds(d.Watcher.Status().LastSweep)
		})
	}
	kinds := []string{outbox.KindReply, outbox.KindNotice, outbox.KindDigest}
	m.OutboxKinds(kinds...)
	for _, kind := range kinds {
		m.Gauge("mailbot_outbox_depth", func() float64 {
			w, _ := waiting.get()
			return float64(w.Depth[kind])
		}, "kind", kind)
		m.Gauge("mailbot_outbox_oldest_age_seconds", func() float64 {
			w, _ := waiting.get()
			if t, ok := w.Oldest[kind]; ok {
				return max(time.Since(t).Seconds(), 0)
			}
			return 0
		}, "kind", kind)
	}
	m.Gauge("mailbot_store_writable", func() float64 {
		if ok, _ := d.Bot.StoreWritable(); ok {
			return 1
		}
		return 0
	})
	m.Gauge("mailbot_outbox_held_messages", func() float64 {
		w, _ := waiting.get()
		return float64(w.Held)
	})

	d.Web.HandleLocal("GET /healthz", d.Health)
	d.Web.HandleLocal("GET /metrics", d.Metrics)
}

// listenWeb opens http.listen, when set, and returns the part of Run that
// serves it; nil when there is none.
func (d *Daemon) listenWeb() (func(context.Context) error, error) {
	if d.httpListen == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", d.httpListen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	d.log.Info("http listening", "addr", l.Addr().String())
	return func(ctx context.Context) error { return d.Web.Serve(ctx, l) }, nil
}

// storeOpen is the store's health: it answers a read.
func (d *Daemon) storeOpen() (bool, string) {
	if err := d.DB.View(func(*storage.Tx) error { return nil }); err != nil {
		return false, "the store is not open: " + err.Error()
	}
	return true, ""
}

// inboxReached is the inbox's health: reached within limit (see
// inbox.Status.Reached), counting from the daemon's start.
func inboxReached(status func() inbox.Status, started time.Time, limit time.Duration) health.Check {
	return func() (bool, string) {
		now := time.Now()
		st := status()
		reached := st.Reached(now)
		if reached.Before(started) {
			reached = started
		}
		silent := now.Sub(reached)
		if silent <= limit {
			return true, ""
		}
		why := fmt.Sprintf("not reached for %v (limit %v, health.inbox_stale_after)", roughly(silent), limit)
		if !st.Connected {
			why += "; not connected"
		}
		if st.LastError != "" {
			why += "; last error: " + st.LastError
		}
		return false, why
	}
}

// repliesGoOut is the outbox's health: no reply has waited longer than
// limit. Digests may rightly queue a while at a big network's digest hour;
// held messages wait for an operator, who was told.
func repliesGoOut(waiting *outboxView, limit time.Duration) health.Check {
	return func() (bool, string) {
		w, err := waiting.get()
		if err != nil {
			return false, "cannot read the outbox: " + err.Error()
		}
		oldest, ok := w.Oldest[outbox.KindReply]
		if !ok {
			return true, ""
		}
		age := time.Since(oldest)
		if age <= limit {
			return true, ""
		}
		why := fmt.Sprintf("the oldest reply has waited %v (limit %v, health.outbox_stale_after); %d replies waiting",
			roughly(age), limit, w.Depth[outbox.KindReply])
		if e := w.OldestError[outbox.KindReply]; e != "" {
			why += "; last error: " + e
		}
		return false, why
	}
}

// roughly rounds a duration for a person: to the second, or to a tenth of
// one under a minute (so that 3.2s past a 3s limit does not read "3s").
func roughly(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// outboxView reads outbox.Stats at most once a second: a scrape reads
// several gauges of it, and /healthz may be polled as well.
type outboxView struct {
	db *storage.DB

	mu   sync.Mutex
	at   time.Time
	last outbox.Waiting
	err  error
}

func (v *outboxView) get() (outbox.Waiting, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if time.Since(v.at) >= time.Second {
		v.last, v.err = outbox.Stats(v.db)
		v.at = time.Now()
	}
	return v.last, v.err
}

// unixSeconds is t as Unix time in seconds, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
