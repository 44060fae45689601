package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/storage"
)

// Sender submits one rendered message. smtpsend.Sender is the real one
// (one SMTP connection each); tests use a fake.
type Sender interface {
	Send(ctx context.Context, from string, to []string, raw []byte) error
	Close() error
}

// Failure is what a failed send means for the message.
type Failure int

const (
	// Temporary: worth another try later, by the Backoff schedule (a 4xx
	// reply to the message, a timeout in the middle of it).
	Temporary Failure = iota
	// Permanent: the message will never be accepted (a 5xx reply); it is
	// dropped and logged.
	Permanent
	// Unreachable: the submission server could not be reached or refused
	// the session. Every message waits on it alike, so the queue probes it
	// at least every Config.Probe and sends the rest as soon as it answers.
	Unreachable
)

// Defaults of Config.
const (
	DefaultProbe          = 30 * time.Second
	DefaultMaxCrashes     = 3
	DefaultSendTimeout    = 2 * time.Minute
	DefaultSlowAfter      = 5 * time.Second
	DefaultMaxConnections = 16
)

// Config tunes a Queue. Zero fields take the defaults above.
type Config struct {
	Backoff Backoff
	// Probe is the longest wait between two attempts while the server is
	// unreachable.
	Probe time.Duration
	// MaxCrashes is how many sends of one message in a row the process may
	// die in before the message is held, so that a message that kills the
	// process cannot keep it in a crash loop.
	MaxCrashes int
	// SendTimeout bounds one send, also one finished during shutdown.
	SendTimeout time.Duration
	// SlowAfter: a send running longer than this is stalled; it makes room
	// for one more connection (see Run).
	SlowAfter time.Duration
	// Extra makes one more sender, for room beside stalled sends; nil
	// means only the senders given to New are used.
	Extra func() Sender
	// MaxConnections bounds the senders open at once, extra ones included.
	MaxConnections int
	// Classify tells what a send error means; nil treats all as Temporary.
	Classify func(error) Failure
	// OnHeld is called after an item was held, OnDropped after one was
	// dropped (refused for good, or given up on), outside any transaction:
	// to tell the admins. Either may be nil.
	OnHeld    func(storage.OutboxItem)
	OnDropped func(it storage.OutboxItem, err error)
	// Metrics counts sends, failures, drops and holds; nil counts nothing.
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Queue sends what is due in the store's outbox, with one goroutine per
// Sender, retrying failures by the Backoff schedule across restarts.
type Queue struct {
	db      *storage.DB
	senders []Sender
	cfg     Config
	kick    chan struct{}
}

// New makes a queue over the store's outbox that sends with senders.
func New(db *storage.DB, senders []Sender, cfg Config) *Queue {
	if cfg.Probe <= 0 {
		cfg.Probe = DefaultProbe
	}
	if cfg.MaxCrashes <= 0 {
		cfg.MaxCrashes = DefaultMaxCrashes
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.SlowAfter <= 0 {
		cfg.SlowAfter = DefaultSlowAfter
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.Classify == nil {
		cfg.Classify = func(error) Failure { return Temporary }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Queue{db: db, senders: senders, cfg: cfg, kick: make(chan struct{}, 1)}
}

// Kick tells the queue that something was added. It never blocks.
func (q *Queue) Kick() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// outcome is what one delivery reports to the loop.
type outcome struct {
	id      uint64
	sent    bool
	failure Failure // when not sent
	sender  Sender  // the sender it used, back to the pool
	// storeFailed: the store could not record the attempt or its
	// outcome (a full disk): the queue waits before it tries again.
	storeFailed bool
}

// storeRetry is how long the queue waits after the store failed to
// record a send, so that a full disk does not make it spin.
const storeRetry = 5 * time.Second

// running is a send in hand.
type running struct {
	rcpt, domain string    // the recipient and its domain
	start        time.Time // when it was handed to a sender
}

// Run sends due messages until ctx is done, then finishes the sends in
// hand and closes the senders. It first takes care of the sends the
// process died in (see Recover).
//
// Sends to different recipients do not wait on each other. Each send has a
// sender (an SMTP connection) of its own; the Config's senders are the
// usual pool. One recipient has one send in hand at most, so replies to
// one person go out in order. A send running longer than SlowAfter counts
// as stalled (a recipient whose server does not answer, checked by the
// submission server while it waits): it frees room for one more
// connection, from Extra, so that the front desk is never behind a stalled
// stranger; and no other message to the stalled recipient's domain is
// started until it ends.
func (q *Queue) Run(ctx context.Context) error {
	if err := q.Recover(); err != nil {
		q.cfg.Log.Error("outbox: recovering sends in flight", "error", err)
	}
	p := &pool{idle: append([]Sender(nil), q.senders...), base: len(q.senders), extra: q.cfg.Extra}
	finished := make(chan outcome)
	inFlight := map[uint64]running{}
	defer func() {
		for range inFlight {
			p.put((<-finished).sender)
		}
		p.closeAll()
	}()

	// The server is presumed down while messages wait on an earlier
	// failure: the first of them is tried at once, as a probe.
	var down bool
	var lastTry, storeBack time.Time
	done := func(o outcome) {
		delete(inFlight, o.id)
		p.put(o.sender)
		if o.storeFailed {
			storeBack = q.cfg.Now().Add(storeRetry)
		}
		switch {
		case o.sent && down:
			down = false
			if n, err := q.releaseWaiting(); err != nil {
				q.cfg.Log.Error("outbox: releasing waiting messages", "error", err)
			} else if n > 0 {
				q.cfg.Log.Info("outbox: the submission server answers again; sending the waiting messages", "waiting", n)
			}
		case !o.sent && o.failure == Unreachable:
			down, lastTry = true, q.cfg.Now()
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var pending []storage.OutboxItem // due, not yet handed to a sender
	var s scanned
	rescan, first := true, true
	for {
		now := q.cfg.Now()
		if rescan || len(pending) == 0 {
			var err error
			ids := make(map[uint64]bool, len(inFlight))
			for id := range inFlight {
				ids[id] = true
			}
			if s, err = q.scan(ids, now); err != nil {
				q.cfg.Log.Error("outbox: reading the queue", "error", err)
				s.next = now.Add(5 * time.Second)
			}
			pending, rescan = s.due, false
			if first {
				down, first = s.waiting != nil, false
			}
			if down && s.waiting != nil && len(inFlight) == 0 && !now.Before(lastTry.Add(q.cfg.Probe)) {
				pending = append(pending, *s.waiting) // a probe
				lastTry = now
			}
		}

		// Hand out what there is room for, skipping the domains of
		// stalled sends.
		stalled, stalledDomains, nextStall := q.stalls(inFlight, now)
		room := min(p.base+stalled, max(q.cfg.MaxConnections, p.base))
		busy := make(map[string]bool, len(inFlight))
		for _, r := range inFlight {
			busy[r.rcpt] = true
		}
		var left []storage.OutboxItem
		for _, it := range pending {
			rcpt, d := recipientOf(it)
			if now.Before(storeBack) || len(inFlight) >= room || stalledDomains[d] || busy[rcpt] {
				left = append(left, it)
				continue
			}
			sender := p.get()
			if sender == nil {
				left = append(left, it)
				continue
			}
			inFlight[it.ID] = running{rcpt: rcpt, domain: d, start: now}
			busy[rcpt] = true
			go func(it storage.OutboxItem) {
				o := q.deliver(sender, it)
				o.sender = sender
				finished <- o
			}(it)
		}
		pending = left

		wake := s.next
		if down && s.waiting != nil {
			if probe := lastTry.Add(q.cfg.Probe); wake.IsZero() || probe.Before(wake) {
				wake = probe
			}
		}
		if !nextStall.IsZero() && (wake.IsZero() || nextStall.Before(wake)) {
			wake = nextStall
		}
		if now.Before(storeBack) && len(pending) > 0 {
			wake = storeBack
		}
		wait := time.Hour
		if !wake.IsZero() {
			wait = max(wake.Sub(q.cfg.Now()), 10*time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-q.kick:
			rescan = true
		case o := <-finished:
			done(o)
		case <-timer.C:
			rescan = true
		}
	}
}

// stalls counts the sends in hand that run longer than SlowAfter, names
// their recipient domains, and says when the next one will count as
// stalled.
func (q *Queue) stalls(inFlight map[uint64]running, now time.Time) (n int, domains map[string]bool, next time.Time) {
	domains = map[string]bool{}
	for _, r := range inFlight {
		at := r.start.Add(q.cfg.SlowAfter)
		if !now.Before(at) {
			n++
			domains[r.domain] = true
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return n, domains, next
}

// recipientOf is an item's first recipient and its domain, lowercased.
func recipientOf(it storage.OutboxItem) (rcpt, domain string) {
	if len(it.To) == 0 {
		return "", ""
	}
	rcpt = strings.ToLower(it.To[0])
	return rcpt, rcpt[strings.LastIndexByte(rcpt, '@')+1:]
}

// pool keeps the senders that are not sending. Up to base of them are
// kept open between sends; extra ones, made while sends are stalled, are
// closed once they are idle again.
type pool struct {
	idle  []Sender
	base  int           // the configured connections
	open  int           // extra senders open now
	extra func() Sender // makes one more; nil: none
}

// get returns an idle sender, or a new extra one, or nil.
func (p *pool) get() Sender {
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return s
	}
	if p.extra == nil {
		return nil
	}
	p.open++
	return p.extra()
}

// put takes a sender back; an extra one beyond the base is closed.
func (p *pool) put(s Sender) {
	if s == nil {
		return
	}
	if len(p.idle) >= p.base && p.open > 0 {
		p.open--
		s.Close()
		return
	}
	p.idle = append(p.idle, s)
}

func (p *pool) closeAll() {
	for _, s := range p.idle {
		s.Close()
	}
	p.idle = nil
}

// scanned is one look at the queue.
type scanned struct {
	due     []storage.OutboxItem // due now and not in flight
	next    time.Time            // when the next waiting item falls due
	waiting *storage.OutboxItem  // the waiting item that is due first
}

// maxDue bounds the items handed to the senders per look at the queue.
const maxDue = 1000

func (q *Queue) scan(inFlight map[uint64]bool, now time.Time) (s scanned, err error) {
	err = q.db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool {
			if inFlight[it.ID] || it.Held {
				return true
			}
			if !it.NextAttempt.After(now) {
				s.due = append(s.due, it)
			} else if s.next.IsZero() || it.NextAttempt.Before(s.next) {
				s.next = it.NextAttempt
				s.waiting = &it
			}
			return len(s.due) < maxDue
		})
	})
	return s, err
}

// releaseWaiting makes every message waiting on a failure due now, once
// the server has answered again.
func (q *Queue) releaseWaiting() (int, error) {
	now := q.cfg.Now()
	n := 0
	err := q.db.Update(func(tx *storage.Tx) error {
		var waiting []storage.OutboxItem
		if err := tx.Outbox(func(it storage.OutboxItem) bool {
			if !it.Held && it.Sending.IsZero() && it.NextAttempt.After(now) {
				waiting = append(waiting, it)
			}
			return true
		}); err != nil {
			return err
		}
		for _, it := range waiting {
			it.NextAttempt = now
			if err := tx.PutOutboxItem(it); err != nil {
				return err
			}
		}
		n = len(waiting)
		return nil
	})
	return n, err
}

// Recover deals with the sends the process died in: each is due again at
// once, unless this was the MaxCrashes-th death in a row while sending it:
// then it is held (kept, logged, Config.OnHeld called), so that a message
// that kills the process cannot keep it in a crash loop. Run calls it
// first; a one-shot sender (Flush) too.
func (q *Queue) Recover() error {
	now := q.cfg.Now()
	var held []storage.OutboxItem
	err := q.db.Update(func(tx *storage.Tx) error {
		held = nil
		var crashed []storage.OutboxItem
		if err := tx.Outbox(func(it storage.OutboxItem) bool {
			if !it.Sending.IsZero() {
				crashed = append(crashed, it)
			}
			return true
		}); err != nil {
			return err
		}
		for _, it := range crashed {
			it.Sending = time.Time{}
			it.Crashes++
			it.NextAttempt = now
			if it.Crashes >= q.cfg.MaxCrashes {
				it.Held = true
				held = append(held, it)
			}
			if err := tx.PutOutboxItem(it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, it := range held {
		q.cfg.Log.Error("outbox: message held: the process died while sending it, several times in a row",
			"id", it.ID, "to", it.To, "kind", it.Kind, "answers", it.Answers, "crashes", it.Crashes)
		q.cfg.Metrics.Held(it.Kind)
		if q.cfg.OnHeld != nil {
			q.cfg.OnHeld(it)
		}
	}
	return nil
}

// deliver makes one attempt at one item. The attempt is recorded before the
// send (Sending set, Attempts counted), so that a death during the send is
// noticed by the next Recover; the outcome is recorded after it. A send that
// succeeded but whose outcome was lost is sent again with the same bytes,
// which the recipient's client recognises by Message-ID.
func (q *Queue) deliver(s Sender, it storage.OutboxItem) outcome {
	out := outcome{id: it.ID, failure: Temporary}
	var raw []byte
	err := q.db.Update(func(tx *storage.Tx) error {
		cur, ok, err := tx.OutboxItem(it.ID)
		if err != nil || !ok || cur.Held {
			raw = nil
			return err
		}
		it = cur
		it.Attempts++
		it.Sending = q.cfg.Now()
		raw = tx.OutboxRaw(it.ID)
		return tx.PutOutboxItem(it)
	})
	if err != nil {
		q.cfg.Log.Error("outbox: recording an attempt", "id", it.ID, "error", err)
		out.storeFailed = true
		return out
	}
	if raw == nil {
		return outcome{id: it.ID, sent: true} // sent or held meanwhile
	}
	q.cfg.Log.Debug("outbox: sending", "id", it.ID, "to", it.To, "attempt", it.Attempts, "kind", it.Kind)
	// Finish a send in hand even during shutdown, within a bound.
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.SendTimeout)
	sendErr := s.Send(ctx, it.From, it.To, raw)
	cancel()
	if sendErr != nil {
		out.failure = q.cfg.Classify(sendErr)
	}
	now := q.cfg.Now()
	var dropped bool
	err = q.db.Update(func(tx *storage.Tx) error {
		dropped = false
		it.Sending, it.Crashes = time.Time{}, 0
		switch {
		case sendErr == nil:
			return tx.DeleteOutboxItem(it.ID)
		case out.failure == Permanent:
			dropped = true
			return tx.DeleteOutboxItem(it.ID)
		case q.givesUp(it, now):
			dropped = true
			return tx.DeleteOutboxItem(it.ID)
		}
		it.LastError = sendErr.Error()
		it.NextAttempt = now.Add(q.cfg.Backoff.After(it.Attempts))
		return tx.PutOutboxItem(it)
	})
	if err != nil {
		q.cfg.Log.Error("outbox: recording the outcome of a send", "id", it.ID, "error", err)
		out.storeFailed = true
		return out
	}
	attrs := []any{"id", it.ID, "to", it.To, "kind", it.Kind, "message_id", it.MessageID}
	if it.Answers != "" {
		attrs = append(attrs, "answers", it.Answers)
	}
	switch {
	case sendErr == nil:
		q.cfg.Log.Info("outbox: sent", attrs...)
		q.cfg.Metrics.Sent(it.Kind)
		out.sent = true
	case dropped:
		why, drop := "refused for good", metrics.Rejected
		if out.failure != Permanent {
			why, drop = fmt.Sprintf("given up after %d attempts", it.Attempts), metrics.Expired
		}
		q.cfg.Metrics.Dropped(it.Kind, drop)
		q.cfg.Log.Error("outbox: message dropped, "+why, append(attrs, "error", sendErr)...)
		if q.cfg.OnDropped != nil {
			q.cfg.OnDropped(it, sendErr)
		}
	default:
		q.cfg.Log.Warn("outbox: send failed, will retry", append(attrs, "attempts", it.Attempts,
			"next", it.NextAttempt.Format(time.RFC3339), "error", sendErr)...)
		q.cfg.Metrics.SendFailed(it.Kind)
	}
	return out
}

// minAttemptsBeforeGiveUp: a message is never given up on before this many
// attempts, however old it looks, so that a clock that jumps forward by days
// does not drop the replies waiting on a first transient failure.
const minAttemptsBeforeGiveUp = 5

// givesUp reports whether a message that failed again is too old to try
// any more. A creation time in the future (the clock was ahead when it was
// queued, and was set back since) counts as now.
func (q *Queue) givesUp(it storage.OutboxItem, now time.Time) bool {
	if q.cfg.Backoff.GiveUpAfter <= 0 || it.Attempts < minAttemptsBeforeGiveUp {
		return false
	}
	created := it.Created
	if created.After(now) {
		q.cfg.Log.Warn("outbox: a message was queued in the future; the clock was set back", "id", it.ID, "created", created.Format(time.RFC3339))
		created = now
	}
	return now.Sub(created) > q.cfg.Backoff.GiveUpAfter
}

// Flush recovers, then makes one attempt at every message due now with the
// first sender, and returns the first failure. For one-shot use (`mailbot
// process`), while no daemon runs.
func (q *Queue) Flush(ctx context.Context) error {
	if err := q.Recover(); err != nil {
		return err
	}
	s, err := q.scan(nil, q.cfg.Now())
	if err != nil {
		return err
	}
	defer q.senders[0].Close()
	var first error
	for _, it := range s.due {
		if err := ctx.Err(); err != nil {
			return err
		}
		if o := q.deliver(q.senders[0], it); !o.sent && first == nil {
			first = fmt.Errorf("outbox: message %d not sent yet", it.ID)
		}
	}
	return first
}

// Release puts a held message back in the queue, due now, with its crash
// count reset: for an operator who fixed what made it crash the process.
func Release(db *storage.DB, id uint64, now time.Time) error {
	return db.Update(func(tx *storage.Tx) error {
		it, ok, err := tx.OutboxItem(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("outbox: no message %d", id)
		}
		it.Held, it.Crashes, it.NextAttempt = false, 0, now
		return tx.PutOutboxItem(it)
	})
}
