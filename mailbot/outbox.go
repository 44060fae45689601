package mailbot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Sender submits one rendered message. smtpsend.Sender is the real one;
// tests use a fake.
type Sender interface {
	Send(ctx context.Context, from string, to []string, raw []byte) error
	Close() error
}

// Backoff is the retry schedule for replies that could not be sent.
type Backoff struct {
	Initial     time.Duration // wait after the first failed attempt (mox: 7.5 min)
	Max         time.Duration // the wait doubles up to this
	GiveUpAfter time.Duration // an item older than this is dropped (and logged)
}

func (b Backoff) after(attempts int) time.Duration {
	d := b.Initial
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	return d
}

// Outbox sends queued messages with a pool of senders (one SMTP connection
// each), retrying failures with backoff. The queue lives in the store, so
// nothing is lost across restarts.
type Outbox struct {
	db        *storage.DB
	senders   []Sender
	backoff   Backoff
	permanent func(error) bool
	log       *slog.Logger
	now       func() time.Time
	wake      chan struct{}
}

// NewOutbox makes an outbox over the store. permanent tells a failure that
// will never succeed (a 5xx reply) from one worth retrying.
func NewOutbox(db *storage.DB, senders []Sender, backoff Backoff, permanent func(error) bool, log *slog.Logger, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{db: db, senders: senders, backoff: backoff, permanent: permanent, log: log, now: now,
		wake: make(chan struct{}, 1)}
}

// Wake tells the outbox that something was queued. It never blocks.
func (o *Outbox) Wake() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run sends due messages until ctx is done, then finishes the sends in hand
// and closes the senders.
func (o *Outbox) Run(ctx context.Context) error {
	jobs := make(chan storage.OutboxItem)
	finished := make(chan uint64, len(o.senders))
	var wg sync.WaitGroup
	for _, s := range o.senders {
		wg.Add(1)
		go func(s Sender) {
			defer wg.Done()
			defer s.Close()
			for it := range jobs {
				_ = o.deliver(s, it) // logged; the item stays queued on failure
				finished <- it.ID
			}
		}(s)
	}
	inFlight := map[uint64]bool{}
	defer func() {
		close(jobs)
		for range inFlight {
			<-finished
		}
		wg.Wait()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		due, next, err := o.scan(inFlight)
		if err != nil {
			o.log.Error("outbox scan failed", "error", err)
			next = o.now().Add(5 * time.Second)
		}
		for len(due) > 0 {
			select {
			case jobs <- due[0]:
				inFlight[due[0].ID] = true
				due = due[1:]
			case id := <-finished:
				delete(inFlight, id)
			case <-ctx.Done():
				return nil
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(o.now()), 10*time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-o.wake:
		case id := <-finished:
			delete(inFlight, id)
		case <-timer.C:
		}
	}
}

// scan returns the items due now that are not being sent, and the time the
// next one falls due.
func (o *Outbox) scan(inFlight map[uint64]bool) (due []storage.OutboxItem, next time.Time, err error) {
	now := o.now()
	err = o.db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool {
			if inFlight[it.ID] {
				return true
			}
			if !it.NextAttempt.After(now) {
				due = append(due, it)
			} else if next.IsZero() || it.NextAttempt.Before(next) {
				next = it.NextAttempt
			}
			return len(due) < 1000
		})
	})
	return due, next, err
}

// deliver makes one attempt at one item. The attempt is recorded before
// the send (as mox's queue does), so a crash during the send cannot make
// the bot retry in a hot loop; a send that succeeded but whose removal was
// lost is sent again with the same bytes, which the recipient's client
// recognises by Message-ID.
func (o *Outbox) deliver(s Sender, it storage.OutboxItem) error {
	var raw []byte
	err := o.db.Update(func(tx *storage.Tx) error {
		cur, ok, err := tx.OutboxItem(it.ID)
		if err != nil || !ok {
			return err
		}
		it = cur
		it.Attempts++
		it.NextAttempt = o.now().Add(o.backoff.after(it.Attempts))
		raw = tx.OutboxRaw(it.ID)
		return tx.PutOutboxItem(it)
	})
	if err != nil {
		o.log.Error("outbox: record attempt", "id", it.ID, "error", err)
		return err
	}
	if raw == nil {
		return nil // sent and removed meanwhile
	}
	// Finish a send in hand even during shutdown, within a bound.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	sendErr := s.Send(ctx, it.From, it.To, raw)
	cancel()
	err = o.db.Update(func(tx *storage.Tx) error {
		switch {
		case sendErr == nil:
			return tx.DeleteOutboxItem(it.ID)
		case o.permanent(sendErr):
			o.log.Error("outbox: message refused, dropped", "id", it.ID, "to", it.To, "message_id", it.MessageID, "error", sendErr)
			return tx.DeleteOutboxItem(it.ID)
		case o.backoff.GiveUpAfter > 0 && o.now().Sub(it.Created) > o.backoff.GiveUpAfter:
			o.log.Error("outbox: giving up", "id", it.ID, "to", it.To, "attempts", it.Attempts, "error", sendErr)
			return tx.DeleteOutboxItem(it.ID)
		default:
			it.LastError = sendErr.Error()
			o.log.Warn("outbox: send failed, will retry", "id", it.ID, "to", it.To,
				"attempts", it.Attempts, "next", it.NextAttempt.Format(time.RFC3339), "error", sendErr)
			return tx.PutOutboxItem(it)
		}
	})
	if err != nil {
		err = fmt.Errorf("outbox: record result of %d: %w", it.ID, err)
		o.log.Error(err.Error())
		return err
	}
	if sendErr == nil {
		o.log.Info("reply sent", "id", it.ID, "to", it.To, "message_id", it.MessageID)
	}
	return sendErr
}

// Flush makes one attempt at every item due now, with the first sender,
// and returns the first failure. For one-shot use (mailbot process).
func (o *Outbox) Flush(ctx context.Context) error {
	due, _, err := o.scan(nil)
	if err != nil {
		return err
	}
	var first error
	for _, it := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := o.deliver(o.senders[0], it); err != nil && first == nil {
			first = err
		}
	}
	o.senders[0].Close()
	return first
}
