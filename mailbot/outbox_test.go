package mailbot

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// fakeSender fails with the errors it is given, in turn, then succeeds.
type fakeSender struct {
	mu      sync.Mutex
	fail    []error
	sent    [][]byte
	onSend  func()
	closeCh chan struct{}
}

func (f *fakeSender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onSend != nil {
		f.onSend()
	}
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return err
	}
	f.sent = append(f.sent, append([]byte(nil), raw...))
	return nil
}

func (f *fakeSender) Close() error { return nil }

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

var errPermanent = errors.New("550 no such user")

func isPerm(err error) bool { return errors.Is(err, errPermanent) }

func newOutboxDB(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func enqueue(t *testing.T, db *storage.DB, raw string, created time.Time) uint64 {
	t.Helper()
	var id uint64
	err := db.Update(func(tx *storage.Tx) (err error) {
		id, err = tx.Enqueue(storage.OutboxItem{From: testBot, To: []string{"a@x.test"}, Raw: []byte(raw), Created: created})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestBackoffDoubles(t *testing.T) {
	b := Backoff{Initial: 7*time.Minute + 30*time.Second, Max: time.Hour}
	want := []time.Duration{450 * time.Second, 15 * time.Minute, 30 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := b.after(i + 1); got != w {
			t.Errorf("after(%d) = %v, want %v", i+1, got, w)
		}
	}
}

// The attempt is recorded before the send, the bytes are sent as stored,
// and a temporary failure is retried after the backoff.
func TestOutboxRetriesThenDelivers(t *testing.T) {
	db := newOutboxDB(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	id := enqueue(t, db, "Message-ID: <x@y>\r\n\r\nhello\r\n", now)
	s := &fakeSender{fail: []error{errors.New("451 try later")}}
	s.onSend = func() {
		db.View(func(tx *storage.Tx) error {
			it, _, _ := tx.OutboxItem(id)
			if it.Attempts == 0 {
				t.Error("send started before the attempt was recorded")
			}
			return nil
		})
	}
	o := NewOutbox(db, []Sender{s}, Backoff{Initial: time.Minute, Max: time.Hour}, isPerm, quiet, clock)
	if err := o.Flush(context.Background()); err == nil {
		t.Fatal("first attempt should fail")
	}
	db.View(func(tx *storage.Tx) error {
		it, ok, _ := tx.OutboxItem(id)
		if !ok || it.Attempts != 1 || !it.NextAttempt.Equal(now.Add(time.Minute)) || it.LastError == "" {
			t.Errorf("after a temporary failure: %+v", it)
		}
		return nil
	})
	// Not due yet: nothing is sent.
	o.Flush(context.Background())
	if s.count() != 0 {
		t.Fatal("sent before the backoff ended")
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if err := o.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.count() != 1 || string(s.sent[0]) != "Message-ID: <x@y>\r\n\r\nhello\r\n" {
		t.Errorf("sent %q", s.sent)
	}
	db.View(func(tx *storage.Tx) error {
		if _, ok, _ := tx.OutboxItem(id); ok {
			t.Error("a sent item is still queued")
		}
		return nil
	})
}

func TestOutboxDropsPermanentAndExpired(t *testing.T) {
	db := newOutboxDB(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	enqueue(t, db, "a", now)
	enqueue(t, db, "b", now.Add(-5*24*time.Hour))
	s := &fakeSender{fail: []error{errPermanent, errors.New("451 later")}}
	o := NewOutbox(db, []Sender{s}, Backoff{Initial: time.Minute, Max: time.Hour, GiveUpAfter: 4 * 24 * time.Hour}, isPerm, quiet,
		func() time.Time { return now })
	o.Flush(context.Background())
	n := 0
	db.View(func(tx *storage.Tx) error { return tx.Outbox(func(storage.OutboxItem) bool { n++; return true }) })
	if n != 0 {
		t.Errorf("%d items left; a permanent refusal and an expired item must be dropped", n)
	}
}

// Run drains the queue with several senders, each item once, and returns
// when its context ends.
func TestOutboxRunSendsEachOnce(t *testing.T) {
	db := newOutboxDB(t)
	senders := []*fakeSender{{}, {}, {}}
	o := NewOutbox(db, []Sender{senders[0], senders[1], senders[2]}, Backoff{Initial: time.Second, Max: time.Second}, isPerm, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- o.Run(ctx) }()
	for i := 0; i < 50; i++ {
		enqueue(t, db, "m", time.Now())
		o.Wake()
	}
	deadline := time.Now().Add(20 * time.Second)
	total := func() int { return senders[0].count() + senders[1].count() + senders[2].count() }
	for total() < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := total(); got != 50 {
		t.Errorf("sent %d, want exactly 50", got)
	}
}
