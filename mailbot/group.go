package mailbot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/storage"
)

// Group commit: the transactions of several messages in one.
//
// Each message's effects, audit records, reply and handled mark are one
// unit (apply). Messages that arrive together (a fetched batch of the
// inbox, LMTP deliveries at the same moment) are applied one after the
// other, in order, inside one store transaction, so that a burst costs one
// commit per batch instead of one per message. Each message is still
// recorded exactly once: the batch commits as a whole or not at all, and
// when one message fails, the transaction is rolled back and every message
// of the batch is applied again in a transaction of its own, so that the
// failure is that message's alone and the others' effects are not lost.
// What follows a commit (the log line, the counters, the outbox's kick,
// the inbox's marks) happens only after it, for each message.

// ready is a message that passed admission and the checks before its
// transaction.
type ready struct {
	in   incoming
	role role
	now  time.Time
}

// applied is what one message's transaction did.
type applied struct {
	dup      bool // handled before: nothing done
	over     bool // a stranger over a budget: nothing written
	answered bool
	outcome  string
	counted  tally
}

// prepare runs the checks of a message before its transaction: handled
// already? who is the sender, and may they be answered now? It returns the
// message ready for its transaction, or nil and what the inbox should do.
func (b *Bot) prepare(in incoming) (*ready, inbox.Disposition) {
	now := b.now()
	var role role
	var done, over bool
	err := b.db.View(func(tx *storage.Tx) (err error) {
		if done, err = handledAny(tx, append(in.keys, in.legacy...)); done || err != nil {
			return err
		}
		if role, err = b.roleOf(tx, in.sender); err != nil || role.known() {
			return err
		}
		over, err = b.limiter.StrangerOverBudget(tx, in.sender, now)
		return err
	})
	switch {
	case err != nil:
		return nil, b.failed(in.keys[0], err)
	case done:
		b.log.Info("message already handled", "message_id", in.msg.MessageID, "from", in.sender)
		b.set.Metrics.Message(metrics.Handled, metrics.Duplicate)
		return nil, inbox.Disposition{Action: inbox.Handled}
	case over:
		return nil, b.setAside(metrics.StrangerBudget, "a stranger over the daily or hourly budget of answers: not answered", in.msg)
	case role.known() && !b.breakerAllows():
		// (Within a batch the breaker may let its few messages more
		// through: it is there against loops, not to count exactly.)
		b.set.Metrics.Message(metrics.Deferred, metrics.Breaker)
		return nil, inbox.Disposition{Action: inbox.Leave, Reason: "circuit breaker: too many replies this minute; the message waits"}
	}
	b.readBody(&in)
	return &ready{in: in, role: role, now: now}, inbox.Disposition{}
}

// apply is one message's part of a transaction: handled mark + limits +
// commands + reply. It writes nothing for a message handled meanwhile (a
// second delivery in the same batch) or over a stranger's budget.
func (b *Bot) apply(tx *storage.Tx, r *ready) (a applied, err error) {
	a.counted = tally{reason: metrics.RateLimited}
	if done, err := handledAny(tx, append(r.in.keys, r.in.legacy...)); done || err != nil {
		return applied{dup: done}, err
	}
	verdict, err := b.limiter.Admit(tx, r.in.sender, r.role.known(), r.now)
	if err != nil {
		return a, err
	}
	switch verdict {
	case OverBudget:
		return applied{over: true}, nil
	case Silence:
		a.outcome = "rate limited: not acted on, no reply"
	case Notice:
		if err := b.queueRateNotice(tx, r.in, r.now); err != nil {
			return a, err
		}
		a.answered, a.outcome = true, "rate limited: not acted on, notice sent"
	default:
		if a.answered, a.outcome, err = b.act(tx, r.in, r.role, r.now, &a.counted); err != nil {
			return a, err
		}
	}
	for _, k := range r.in.keys {
		if err := tx.MarkHandled(k, storage.HandledMessage{At: r.now, Outcome: a.outcome}); err != nil {
			return a, err
		}
	}
	return a, nil
}

// finish does what follows a message's commit: its log line, its counts,
// the breaker's count, and the disposition. It reports whether a reply
// was queued.
func (b *Bot) finish(r *ready, a applied) (inbox.Disposition, bool) {
	switch {
	case a.over:
		return b.setAside(metrics.StrangerBudget, "a stranger over the daily or hourly budget of answers: not answered", r.in.msg), false
	case a.dup:
		b.log.Info("message already handled", "message_id", r.in.msg.MessageID, "from", r.in.sender)
		b.set.Metrics.Message(metrics.Handled, metrics.Duplicate)
		return inbox.Disposition{Action: inbox.Handled}, false
	}
	b.failures.clear(r.in.keys[0])
	b.failures.clear(rawKey(r.in.raw))
	b.log.Info("message handled", "message_id", r.in.msg.MessageID, "from", r.in.sender, "role", r.role.name(), "outcome", a.outcome)
	b.count(a.counted)
	if a.answered && r.role.known() {
		b.limiter.CountReply(r.now)
	}
	return inbox.Disposition{Action: inbox.Handled}, a.answered
}

// commitGroup applies rs in one transaction, in order, and returns their
// dispositions. When the transaction fails, each message is applied again
// in one of its own (commitOne), unless the store itself cannot be
// written: then intake pauses and every message stays where it is.
func (b *Bot) commitGroup(rs []*ready) []inbox.Disposition {
	out := make([]inbox.Disposition, len(rs))
	if len(rs) == 1 {
		out[0] = b.commitOne(rs[0])
		return out
	}
	as := make([]applied, len(rs))
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return b.db.Update(func(tx *storage.Tx) error {
			for i, r := range rs {
				a, err := b.apply(tx, r)
				if err != nil {
					return fmt.Errorf("handle message %s: %w", r.in.msg.MessageID, err)
				}
				as[i] = a
			}
			return nil
		})
	}()
	switch {
	case err != nil && storeUnwritable(err):
		b.pauseIntake(err)
		for i := range out {
			out[i] = inbox.Disposition{Action: inbox.Leave, Reason: "the store cannot be written: intake paused"}
		}
		return out
	case err != nil:
		// One message failed: nothing of the batch was kept. Each goes
		// again alone, so that only the failing one counts a failure.
		b.log.Debug("group commit failed; each message of it again alone", "messages", len(rs), "error", err)
		for i, r := range rs {
			out[i] = b.commitOne(r)
		}
		return out
	}
	kick := false
	for i, r := range rs {
		var answered bool
		out[i], answered = b.finish(r, as[i])
		kick = kick || answered
	}
	if kick {
		b.kick()
	}
	return out
}

// commitOne applies one message in a transaction of its own. A panic is
// that message's failure.
func (b *Bot) commitOne(r *ready) (d inbox.Disposition) {
	defer func() {
		if p := recover(); p != nil {
			d = b.failed(r.in.keys[0], fmt.Errorf("panic: %v", p))
		}
	}()
	var a applied
	err := b.db.Update(func(tx *storage.Tx) (err error) {
		if a, err = b.apply(tx, r); err == nil && a.over {
			return errOverBudget // nothing to commit
		}
		return err
	})
	switch {
	case errors.Is(err, errOverBudget):
		a = applied{over: true}
	case err != nil && storeUnwritable(err):
		b.pauseIntake(err)
		return inbox.Disposition{Action: inbox.Leave, Reason: "the store cannot be written: intake paused"}
	case err != nil:
		return b.failed(r.in.keys[0], fmt.Errorf("handle message %s: %w", r.in.msg.MessageID, err))
	}
	d, answered := b.finish(r, a)
	if answered {
		b.kick()
	}
	return d
}

// admitted runs a message through the stages before its transaction
// (Handle's first steps, admit, prepare). It returns the message ready for
// its transaction, or nil and what the inbox should do with it.
func (b *Bot) admitted(ctx context.Context, raw []byte) (r *ready, d inbox.Disposition) {
	key := rawKey(raw)
	defer func() {
		if p := recover(); p != nil {
			r, d = nil, b.failed(key, fmt.Errorf("panic: %v", p))
		}
	}()
	if until, waiting := b.failures.waiting(key, b.now()); waiting {
		return nil, inbox.Disposition{Action: inbox.Leave, Reason: "waits until " + until.Format(time.RFC3339)}
	}
	if b.intakePaused() {
		return nil, inbox.Disposition{Action: inbox.Leave, Reason: "the store cannot be written: intake paused"}
	}
	in, d, ok := b.admit(ctx, raw, key)
	if !ok {
		return nil, d
	}
	return b.prepare(in)
}

// HandleBatch handles messages that arrived together (a batch the inbox
// fetched), in order, committing them together (see commitGroup), and
// returns what the inbox should do with each.
func (b *Bot) HandleBatch(ctx context.Context, raws [][]byte) []inbox.Disposition {
	start := time.Now()
	defer func() {
		for range raws {
			b.set.Metrics.HandlingTime(time.Since(start) / time.Duration(len(raws)))
		}
	}()
	out := make([]inbox.Disposition, len(raws))
	var rs []*ready
	var at []int // rs[j] is message at[j]
	for i, raw := range raws {
		r, d := b.admitted(ctx, raw)
		if r == nil {
			out[i] = d
			continue
		}
		rs, at = append(rs, r), append(at, i)
	}
	for j, d := range b.commitGroup(rs) {
		out[at[j]] = d
	}
	return out
}

// maxGroup bounds the messages committed in one transaction.
const maxGroup = 64

// Grouper gathers messages handed over at the same moment from many
// goroutines (LMTP deliveries over several connections) and commits them
// together: each caller runs the stages before the transaction itself, in
// parallel; while one group commits, the next gathers. A caller alone
// waits for no one.
type Grouper struct {
	b *Bot

	mu      sync.Mutex
	queue   []groupRequest
	working bool
}

type groupRequest struct {
	r    *ready
	done chan inbox.Disposition
}

// Grouper returns a Grouper over the bot.
func (b *Bot) Grouper() *Grouper { return &Grouper{b: b} }

// Handle handles one message as Bot.Handle does, its transaction shared
// with those of the messages handed over meanwhile.
func (g *Grouper) Handle(ctx context.Context, raw []byte) inbox.Disposition {
	defer func(start time.Time) { g.b.set.Metrics.HandlingTime(time.Since(start)) }(time.Now())
	r, d := g.b.admitted(ctx, raw)
	if r == nil {
		return d
	}
	req := groupRequest{r: r, done: make(chan inbox.Disposition, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	if !g.working {
		g.working = true
		go g.work()
	}
	g.mu.Unlock()
	return <-req.done
}

// work commits what is queued, a group at a time, until nothing is.
func (g *Grouper) work() {
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.working = false
			g.mu.Unlock()
			return
		}
		reqs := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		rs := make([]*ready, n)
		for i, q := range reqs {
			rs[i] = q.r
		}
		for i, d := range g.b.commitGroup(rs) {
			reqs[i].done <- d
		}
	}
}
