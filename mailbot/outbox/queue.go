package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
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

// outcome is what one attempt at one item came to.
type outcome struct {
	id      uint64
	sent    bool
	failure Failure // when not sent
}

// batchDone is what one batch reports to the loop.
type batchDone struct {
	b        *running
	outcomes []outcome
	// storeFailed: the store could not record an attempt or its
	// outcome (a full disk): the queue waits before it tries again.
	storeFailed bool
}

// storeRetry is how long the queue waits after the store failed to
// record a send, so that a full disk does not make it spin.
const storeRetry = 5 * time.Second

// maxBatch bounds the messages to one recipient handed to a sender at
// once: sent in order over its connection, their attempts recorded in one
// transaction before the first send.
const maxBatch = 32

// outcomesEvery: the outcomes of a batch are recorded after this many
// sends and at its end, so that a crash sends again at most this many
// messages that were sent already.
const outcomesEvery = 8

// running is a batch in hand: messages to one recipient, sent in turn by
// one sender.
type running struct {
	rcpt, domain string // the recipient and its domain
	items        []storage.OutboxItem
	sender       Sender
	current      atomic.Int64 // when the send in hand began (Unix ns)
}

// Run sends due messages until ctx is done, then finishes the sends in
// hand and closes the senders. It first takes care of the sends the
// process died in (see Recover).
//
// Sends to different recipients do not wait on each other. Each batch has
// a sender (an SMTP connection) of its own; the Config's senders are the
// usual pool. A recipient has one batch in hand at most, its messages
// sent in queue order, so replies to one person go out in order; a
// recipient with many waiting (a front desk in a rush) gets them in
// batches of up to maxBatch, whose bookkeeping costs a few transactions
// per batch rather than two per message. A send running longer than
// SlowAfter counts as stalled (a recipient whose server does not answer,
// checked by the submission server while it waits): it frees room for one
// more connection, from Extra, so that the front desk is never behind a
// stalled stranger; and no other message to the stalled recipient's
// domain is started until it ends.
func (q *Queue) Run(ctx context.Context) error {
	if err := q.Recover(); err != nil {
		q.cfg.Log.Error("outbox: recovering sends in flight", "error", err)
	}
	p := &pool{idle: append([]Sender(nil), q.senders...), base: len(q.senders), extra: q.cfg.Extra}
	finished := make(chan batchDone)
	batches := map[*running]bool{}
	inFlight := map[uint64]bool{}
	// Sends in hand are finished (each within SendTimeout); a batch stops
	// after its send in hand, the rest of it left due.
	stop, cancelStop := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		cancelStop()
		for range batches {
			p.put((<-finished).b.sender)
		}
		p.closeAll()
	}()
	go func() {
		<-ctx.Done()
		cancelStop()
	}()

	// The server is presumed down while messages wait on an earlier
	// failure: the first of them is tried at once, as a probe.
	var down bool
	var lastTry, storeBack time.Time
	// A message that failed waits by its schedule, which only a look at
	// the whole queue finds again.
	done := func(bd batchDone) (failed bool) {
		delete(batches, bd.b)
		for _, it := range bd.b.items {
			delete(inFlight, it.ID)
		}
		p.put(bd.b.sender)
		if bd.storeFailed {
			storeBack = q.cfg.Now().Add(storeRetry)
		}
		for _, o := range bd.outcomes {
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
			failed = failed || !o.sent
		}
		return failed
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var pending []storage.OutboxItem // due, not yet handed to a sender, in id order
	var s scanned
	// A kick means items were added: only those are read (after the last
	// id seen), not the whole queue again.
	var fresh bool
	full, first := true, true
	for {
		now := q.cfg.Now()
		switch {
		case full || len(pending) == 0:
			var err error
			if s, err = q.scan(inFlight, 0, maxDue, now); err != nil {
				q.cfg.Log.Error("outbox: reading the queue", "error", err)
				s.next = now.Add(5 * time.Second)
			}
			pending, full, fresh = s.due, false, false
			if first {
				down, first = s.waiting != nil, false
			}
			if down && s.waiting != nil && len(batches) == 0 && !now.Before(lastTry.Add(q.cfg.Probe)) {
				pending = append(pending, *s.waiting) // a probe
				lastTry = now
			}
		case fresh && len(pending) < maxDue:
			more, err := q.scan(inFlight, s.last, maxDue-len(pending), now)
			if err != nil {
				q.cfg.Log.Error("outbox: reading the queue", "error", err)
				full = true
				continue
			}
			pending = append(pending, more.due...)
			s.last, fresh = max(s.last, more.last), false
			if !more.next.IsZero() && (s.next.IsZero() || more.next.Before(s.next)) {
				s.next = more.next
			}
		}

		// Hand out what there is room for, a batch per recipient,
		// skipping the domains of stalled sends.
		if !now.Before(storeBack) {
			pending = q.handOut(pending, batches, inFlight, p, now, stop, finished)
		}

		_, _, nextStall := q.stalls(batches, now)
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
			fresh = true
		case bd := <-finished:
			full = done(bd) || full
		case <-timer.C:
			full = true
		}
	}
}

// handOut starts a batch for each recipient with due messages that may be
// sent to now, while there is room, and returns what is left, in order.
func (q *Queue) handOut(pending []storage.OutboxItem, batches map[*running]bool, inFlight map[uint64]bool, p *pool,
	now time.Time, ctx context.Context, finished chan<- batchDone) []storage.OutboxItem {
	stalled, stalledDomains, _ := q.stalls(batches, now)
	room := min(p.base+stalled, max(q.cfg.MaxConnections, p.base))
	busy := make(map[string]bool, len(batches))
	for b := range batches {
		busy[b.rcpt] = true
	}
	taken := map[uint64]bool{}
	for i := 0; i < len(pending) && len(batches) < room; i++ {
		it := pending[i]
		rcpt, d := recipientOf(it)
		if busy[rcpt] || stalledDomains[d] {
			continue
		}
		// This recipient's due messages, in order, up to maxBatch. A
		// message the process died sending goes alone, so that one that
		// kills it is held without taking others with it.
		items := []storage.OutboxItem{it}
		for j := i + 1; j < len(pending) && len(items) < maxBatch && it.Crashes == 0; j++ {
			if r, _ := recipientOf(pending[j]); r == rcpt {
				if pending[j].Crashes > 0 {
					break
				}
				items = append(items, pending[j])
			}
		}
		sender := p.get()
		if sender == nil {
			break
		}
		b := &running{rcpt: rcpt, domain: d, items: items, sender: sender}
		b.current.Store(now.UnixNano())
		batches[b] = true
		busy[rcpt] = true
		for _, it := range items {
			inFlight[it.ID], taken[it.ID] = true, true
		}
		go func() { finished <- q.deliver(ctx, b) }()
	}
	if len(taken) == 0 {
		return pending
	}
	left := pending[:0:0]
	for _, it := range pending {
		if !taken[it.ID] {
			left = append(left, it)
		}
	}
	return left
}

// stalls counts the sends in hand that run longer than SlowAfter, names
// their recipient domains, and says when the next one will count as
// stalled.
func (q *Queue) stalls(batches map[*running]bool, now time.Time) (n int, domains map[string]bool, next time.Time) {
	domains = map[string]bool{}
	for b := range batches {
		at := time.Unix(0, b.current.Load()).Add(q.cfg.SlowAfter)
		if !now.Before(at) {
			n++
			domains[b.domain] = true
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
	last    uint64               // the last id looked at
}

// maxDue bounds the items handed to the senders per look at the queue.
const maxDue = 1000

// scan looks at the items after id `after`, up to limit due ones.
func (q *Queue) scan(inFlight map[uint64]bool, after uint64, limit int, now time.Time) (s scanned, err error) {
	s.last = after
	err = q.db.View(func(tx *storage.Tx) error {
		return tx.OutboxAfter(after, func(it storage.OutboxItem) bool {
			s.last = it.ID
			if inFlight[it.ID] || it.Held {
				return true
			}
			if !it.NextAttempt.After(now) {
				s.due = append(s.due, it)
			} else if s.next.IsZero() || it.NextAttempt.Before(s.next) {
				s.next = it.NextAttempt
				s.waiting = &it
			}
			return len(s.due) < limit
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

// deliver makes one attempt at each item of a batch, in order, over the
// batch's sender. The attempts are recorded before the first send
// (Sending set, Attempts counted, in one transaction), so that a death
// during a send is noticed by the next Recover; the outcomes are recorded
// after every outcomesEvery sends and at the end. A send that succeeded
// but whose outcome was lost is sent again with the same bytes, which the
// recipient's client recognises by Message-ID. Once ctx is done, the
// batch stops after the send in hand and leaves the rest due; an
// unreachable server stops it too, the rest waiting as the failed one
// does.
func (q *Queue) deliver(ctx context.Context, b *running) batchDone {
	bd := batchDone{b: b}
	items := make([]storage.OutboxItem, 0, len(b.items))
	raws := map[uint64][]byte{}
	err := q.db.Update(func(tx *storage.Tx) error {
		items, raws = items[:0], map[uint64][]byte{}
		for _, it := range b.items {
			cur, ok, err := tx.OutboxItem(it.ID)
			if err != nil {
				return err
			}
			if !ok || cur.Held {
				continue // sent or held meanwhile
			}
			cur.Attempts++
			cur.Sending = q.cfg.Now()
			if err := tx.PutOutboxItem(cur); err != nil {
				return err
			}
			items, raws[cur.ID] = append(items, cur), tx.OutboxRaw(cur.ID)
		}
		return nil
	})
	if err != nil {
		q.cfg.Log.Error("outbox: recording an attempt", "id", b.items[0].ID, "error", err)
		bd.storeFailed = true
		for _, it := range b.items {
			bd.outcomes = append(bd.outcomes, outcome{id: it.ID, failure: Temporary})
		}
		return bd
	}
	var results []result
	flush := func() bool {
		if len(results) == 0 {
			return true
		}
		if err := q.record(results); err != nil {
			q.cfg.Log.Error("outbox: recording the outcome of a send", "id", results[0].it.ID, "error", err)
			bd.storeFailed = true
			return false
		}
		for _, r := range results {
			bd.outcomes = append(bd.outcomes, q.report(r))
		}
		results = results[:0]
		return true
	}
	var unreachable error
	for i, it := range items {
		switch {
		case unreachable != nil:
			// Not tried: it waits as the failed one does.
			results = append(results, result{it: it, err: unreachable, failure: Unreachable, untried: true})
		case ctx.Err() != nil:
			results = append(results, result{it: it, untried: true, stopped: true})
		default:
			b.current.Store(q.cfg.Now().UnixNano())
			q.cfg.Log.Debug("outbox: sending", "id", it.ID, "to", it.To, "attempt", it.Attempts, "kind", it.Kind)
			// Finish a send in hand even during shutdown, within a bound.
			sctx, cancel := context.WithTimeout(context.Background(), q.cfg.SendTimeout)
			sendErr := b.sender.Send(sctx, it.From, it.To, raws[it.ID])
			cancel()
			r := result{it: it, err: sendErr, at: q.cfg.Now()}
			if sendErr != nil {
				r.failure = q.cfg.Classify(sendErr)
				if r.failure == Unreachable {
					unreachable = sendErr
				}
			}
			results = append(results, r)
		}
		if (i+1)%outcomesEvery == 0 && !flush() {
			break
		}
	}
	flush()
	return bd
}

// result is one item's attempt, to be recorded.
type result struct {
	it      storage.OutboxItem
	err     error     // the send's error; nil when sent
	failure Failure   // when err is set
	at      time.Time // when the send ended
	untried bool      // not sent: the attempt is taken back
	stopped bool      // not sent because the queue stops: due again at once
	dropped bool      // set by record: given up, or refused for good
}

// record writes the outcomes of some attempts in one transaction: a sent
// message leaves the queue, a refused or expired one is dropped, a failed
// one waits by the Backoff schedule; an untried one is due again (stopped)
// or waits with the failed one.
func (q *Queue) record(results []result) error {
	now := q.cfg.Now()
	return q.db.Update(func(tx *storage.Tx) error {
		for i := range results {
			r := &results[i]
			it := r.it
			r.dropped = false
			it.Sending, it.Crashes = time.Time{}, 0
			switch {
			case r.stopped:
				it.Attempts--
				if err := tx.PutOutboxItem(it); err != nil {
					return err
				}
				continue
			case r.err == nil:
				if err := tx.DeleteOutboxItem(it.ID); err != nil {
					return err
				}
				continue
			case !r.untried && r.failure == Permanent, !r.untried && q.givesUp(it, now):
				r.dropped = true
				if err := tx.DeleteOutboxItem(it.ID); err != nil {
					return err
				}
				continue
			}
			if r.untried {
				it.Attempts--
			}
			it.LastError = r.err.Error()
			it.NextAttempt = now.Add(q.cfg.Backoff.After(max(it.Attempts, 1)))
			if err := tx.PutOutboxItem(it); err != nil {
				return err
			}
		}
		return nil
	})
}

// report logs and counts one recorded attempt, and tells the loop.
func (q *Queue) report(r result) outcome {
	it := r.it
	o := outcome{id: it.ID, sent: r.err == nil && !r.stopped, failure: r.failure}
	if r.stopped {
		o.failure = Temporary
		return o
	}
	attrs := []any{"id", it.ID, "to", it.To, "kind", it.Kind, "message_id", it.MessageID}
	if it.Answers != "" {
		attrs = append(attrs, "answers", it.Answers)
	}
	switch {
	case r.err == nil:
		q.cfg.Log.Info("outbox: sent", attrs...)
		q.cfg.Metrics.Sent(it.Kind)
	case r.untried:
		q.cfg.Log.Debug("outbox: not tried, the server is unreachable", attrs...)
	case r.dropped:
		why, drop := "refused for good", metrics.Rejected
		if r.failure != Permanent {
			why, drop = fmt.Sprintf("given up after %d attempts", it.Attempts), metrics.Expired
		}
		q.cfg.Metrics.Dropped(it.Kind, drop)
		q.cfg.Log.Error("outbox: message dropped, "+why, append(attrs, "error", r.err)...)
		if q.cfg.OnDropped != nil {
			q.cfg.OnDropped(it, r.err)
		}
	default:
		q.cfg.Log.Warn("outbox: send failed, will retry", append(attrs, "attempts", it.Attempts,
			"next", r.at.Add(q.cfg.Backoff.After(it.Attempts)).Format(time.RFC3339), "error", r.err)...)
		q.cfg.Metrics.SendFailed(it.Kind)
	}
	return o
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
	s, err := q.scan(nil, 0, maxDue, q.cfg.Now())
	if err != nil {
		return err
	}
	defer q.senders[0].Close()
	var first error
	for _, it := range s.due {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := &running{items: []storage.OutboxItem{it}, sender: q.senders[0]}
		bd := q.deliver(context.Background(), b)
		if (len(bd.outcomes) == 0 || !bd.outcomes[0].sent) && first == nil && !bd.sentMeanwhile(it.ID) {
			first = fmt.Errorf("outbox: message %d not sent yet", it.ID)
		}
	}
	return first
}

// sentMeanwhile reports an item the batch found gone (sent or held by
// another) before its attempt.
func (bd batchDone) sentMeanwhile(id uint64) bool {
	for _, o := range bd.outcomes {
		if o.id == id {
			return false
		}
	}
	return true
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
