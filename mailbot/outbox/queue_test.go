package outbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/storage"
)

// fakeSender fails with the errors it is given, in turn, then succeeds.
type fakeSender struct {
	mu     sync.Mutex
	fail   []error
	down   bool // refuse every send as an unreachable server does
	sent   [][]byte
	tries  int
	onSend func()
}

var (
	errPermanent   = errors.New("550 no such user")
	errUnreachable = errors.New("dial tcp: connection refused")
)

func classify(err error) Failure {
	switch {
	case errors.Is(err, errPermanent):
		return Permanent
	case errors.Is(err, errUnreachable):
		return Unreachable
	}
	return Temporary
}

func (f *fakeSender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.onSend != nil {
		f.onSend()
	}
	if f.down {
		return errUnreachable
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

func (f *fakeSender) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func newDB(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// add queues a small message to a@x.test created at the given time.
func add(t *testing.T, db *storage.DB, text string, created time.Time) uint64 {
	t.Helper()
	var a Added
	err := db.Update(func(tx *storage.Tx) (err error) {
		a, err = Add(tx, reply.Message{From: "visa@visa.test", FromName: "Visa", To: "a@x.test", Subject: "Re: x",
			Text: text, Date: created, InReplyTo: "cmd@x.test"}, KindReply, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func item(t *testing.T, db *storage.DB, id uint64) (storage.OutboxItem, bool) {
	t.Helper()
	var it storage.OutboxItem
	var ok bool
	db.View(func(tx *storage.Tx) (err error) {
		it, ok, err = tx.OutboxItem(id)
		return err
	})
	return it, ok
}

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: 5 * time.Second, Max: time.Hour}
	want := []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
		4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := b.After(i + 1); got != w {
			t.Errorf("After(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestAddRefusesTooLarge(t *testing.T) {
	db := newDB(t)
	err := db.Update(func(tx *storage.Tx) error {
		_, err := Add(tx, reply.Message{From: "visa@visa.test", To: "a@x.test", Text: string(make([]byte, 10000)), Date: time.Now()}, KindReply, 5000)
		return err
	})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add = %v, want ErrTooLarge", err)
	}
	db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool { t.Errorf("stored %+v", it); return true })
	})
}

// The attempt is recorded before the send, the bytes go out as stored, and
// a temporary failure is retried after the first wait of the schedule.
func TestRetriesThenDelivers(t *testing.T) {
	db := newDB(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	id := add(t, db, "hello", now)
	var stored []byte
	db.View(func(tx *storage.Tx) error { stored = tx.OutboxRaw(id); return nil })
	s := &fakeSender{fail: []error{errors.New("451 try later")}}
	s.onSend = func() {
		if it, _ := item(t, db, id); it.Attempts == 0 || it.Sending.IsZero() {
			t.Errorf("send started before the attempt was recorded: %+v", it)
		}
	}
	q := New(db, []Sender{s}, Config{Backoff: Backoff{Initial: 5 * time.Second, Max: time.Hour}, Classify: classify, Now: clock})
	if err := q.Flush(context.Background()); err == nil {
		t.Fatal("first attempt should fail")
	}
	it, ok := item(t, db, id)
	if !ok || it.Attempts != 1 || !it.NextAttempt.Equal(now.Add(5*time.Second)) || it.LastError == "" || !it.Sending.IsZero() {
		t.Errorf("after a temporary failure: %+v", it)
	}
	q.Flush(context.Background())
	if s.count() != 0 {
		t.Fatal("sent before the wait ended")
	}
	mu.Lock()
	now = now.Add(5 * time.Second)
	mu.Unlock()
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.count() != 1 || string(s.sent[0]) != string(stored) {
		t.Errorf("sent %q, want the stored bytes", s.sent)
	}
	if _, ok := item(t, db, id); ok {
		t.Error("a sent item is still queued")
	}
}

func TestDropsPermanentAndExpired(t *testing.T) {
	db := newDB(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	add(t, db, "a", now)
	old := add(t, db, "b", now.Add(-5*24*time.Hour))
	// The old one has been tried for days already.
	db.Update(func(tx *storage.Tx) error {
		it, _, _ := tx.OutboxItem(old)
		it.Attempts = 20
		return tx.PutOutboxItem(it)
	})
	s := &fakeSender{fail: []error{errPermanent, errors.New("451 later")}}
	var dropped []error
	q := New(db, []Sender{s}, Config{
		Backoff:   Backoff{Initial: time.Minute, Max: time.Hour, GiveUpAfter: 4 * 24 * time.Hour},
		Classify:  classify,
		OnDropped: func(it storage.OutboxItem, err error) { dropped = append(dropped, err) },
		Now:       func() time.Time { return now },
	})
	q.Flush(context.Background())
	n := 0
	db.View(func(tx *storage.Tx) error { return tx.Outbox(func(storage.OutboxItem) bool { n++; return true }) })
	if n != 0 || len(dropped) != 2 {
		t.Errorf("%d items left, %d dropped; a permanent refusal and an expired item must be dropped", n, len(dropped))
	}
}

// A clock that jumps days ahead does not drop a reply on its first
// transient failure: it is given up on only after several attempts.
func TestClockJumpDoesNotDropAtOnce(t *testing.T) {
	db := newDB(t)
	queued := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	id := add(t, db, "a", queued)
	jumped := queued.Add(30 * 24 * time.Hour)
	q := New(db, []Sender{&fakeSender{fail: []error{errors.New("451 later")}}}, Config{
		Backoff:  Backoff{Initial: time.Minute, Max: time.Hour, GiveUpAfter: 4 * 24 * time.Hour},
		Classify: classify,
		Now:      func() time.Time { return jumped },
	})
	q.Flush(context.Background())
	if it, ok := item(t, db, id); !ok || it.Attempts != 1 {
		t.Fatalf("after a clock jump and one failure: %+v, %v; want kept for another try", it, ok)
	}
}

// A send the process died in is due again at once after a restart; one
// that killed it MaxCrashes times in a row is held, the admins told, and
// not sent until released.
func TestRecoverAndHold(t *testing.T) {
	db := newDB(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	id := add(t, db, "x", now)
	die := func() { // the process dies in the middle of a send
		db.Update(func(tx *storage.Tx) error {
			it, _, _ := tx.OutboxItem(id)
			it.Attempts++
			it.Sending = now
			it.NextAttempt = now.Add(time.Hour) // as a schedule far ahead would say
			return tx.PutOutboxItem(it)
		})
	}
	var held []storage.OutboxItem
	q := New(db, []Sender{&fakeSender{}}, Config{Classify: classify, Now: func() time.Time { return now },
		OnHeld: func(it storage.OutboxItem) { held = append(held, it) }})
	for crash := 1; crash < DefaultMaxCrashes; crash++ {
		die()
		if err := q.Recover(); err != nil {
			t.Fatal(err)
		}
		it, _ := item(t, db, id)
		if it.Held || it.Crashes != crash || !it.NextAttempt.Equal(now) || !it.Sending.IsZero() {
			t.Fatalf("after crash %d: %+v, want due now", crash, it)
		}
	}
	die()
	q.Recover()
	if it, _ := item(t, db, id); !it.Held || len(held) != 1 {
		t.Fatalf("after %d crashes in a row: %+v, %d held notices; want held once", DefaultMaxCrashes, it, len(held))
	}
	s := &fakeSender{}
	q = New(db, []Sender{s}, Config{Classify: classify, Now: func() time.Time { return now }})
	q.Flush(context.Background())
	if s.tries != 0 {
		t.Fatal("a held message was sent")
	}
	if err := Release(db, id, now); err != nil {
		t.Fatal(err)
	}
	q.Flush(context.Background())
	if s.count() != 1 {
		t.Fatal("a released message was not sent")
	}
}

// A completed attempt resets the crash count: only crashes in a row hold
// a message.
func TestCrashesCountInARow(t *testing.T) {
	db := newDB(t)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	id := add(t, db, "x", now)
	db.Update(func(tx *storage.Tx) error {
		it, _, _ := tx.OutboxItem(id)
		it.Sending, it.Crashes = now, DefaultMaxCrashes-2
		return tx.PutOutboxItem(it)
	})
	s := &fakeSender{fail: []error{errors.New("451 later")}}
	q := New(db, []Sender{s}, Config{Classify: classify, Now: func() time.Time { return now }})
	q.Flush(context.Background()) // recovers (crash count +1), then fails normally
	if it, _ := item(t, db, id); it.Crashes != 0 || it.Held {
		t.Errorf("after a completed attempt: %+v, want no crashes counted", it)
	}
}

// Run drains the queue with several senders, each item once, and returns
// when its context ends.
func TestRunSendsEachOnce(t *testing.T) {
	db := newDB(t)
	senders := []*fakeSender{{}, {}, {}}
	q := New(db, []Sender{senders[0], senders[1], senders[2]}, Config{Backoff: Backoff{Initial: time.Second, Max: time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Run(ctx) }()
	for i := 0; i < 50; i++ {
		add(t, db, "m", time.Now())
		q.Kick()
	}
	total := func() int { return senders[0].count() + senders[1].count() + senders[2].count() }
	waitFor(t, "50 messages sent", func() bool { return total() >= 50 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := total(); got != 50 {
		t.Errorf("sent %d, want exactly 50", got)
	}
}

// While the submission server is unreachable the queue probes it every
// Probe, whatever the messages' own schedules say, and once it answers
// every waiting message goes out at once.
func TestProbeReleasesWaiting(t *testing.T) {
	db := newDB(t)
	s := &fakeSender{down: true}
	// Probe and Initial are shortened from their defaults (30 s, 5 s) so
	// that the test runs in a second; the schedule's long gaps are what
	// the probe must cut short.
	q := New(db, []Sender{s}, Config{
		Backoff: Backoff{Initial: time.Hour, Max: time.Hour}, Probe: 200 * time.Millisecond, Classify: classify,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- q.Run(ctx) }()
	for i := 0; i < 5; i++ {
		add(t, db, "m", time.Now())
	}
	q.Kick()
	waitFor(t, "the first attempts and a probe", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.tries >= 6 })
	s.setDown(false)
	waitFor(t, "every waiting message sent once the server answers", func() bool { return s.count() == 5 })
	cancel()
	<-done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockingSender holds every send to a recipient of slowDomain until
// release is closed; it counts what it started and sent.
type blockingSender struct {
	slowDomain string
	release    chan struct{}
	mu         *sync.Mutex
	started    map[string]int // by recipient
	sent       map[string]int
}

func (b blockingSender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	b.mu.Lock()
	b.started[to[0]]++
	b.mu.Unlock()
	if strings.HasSuffix(to[0], "@"+b.slowDomain) {
		select {
		case <-b.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.mu.Lock()
	b.sent[to[0]]++
	b.mu.Unlock()
	return nil
}

func (b blockingSender) Close() error { return nil }

// Two recipients whose servers stall do not hold up the front desk: the
// replies to others go out beside them, on extra connections, and no
// second message to a stalled domain is started meanwhile.
func TestStalledRecipientsDoNotBlockOthers(t *testing.T) {
	db := newDB(t)
	mu := &sync.Mutex{}
	bs := blockingSender{slowDomain: "slow.test", release: make(chan struct{}), mu: mu,
		started: map[string]int{}, sent: map[string]int{}}
	addTo := func(to string) {
		db.Update(func(tx *storage.Tx) error {
			_, err := Add(tx, reply.Message{From: "visa@visa.test", To: to, Subject: "Re: x", Text: "t", Date: time.Now()}, KindReply, 0)
			return err
		})
	}
	for _, to := range []string{"a@slow.test", "b@slow.test", "c@slow.test"} {
		addTo(to)
	}
	q := New(db, []Sender{bs, bs}, Config{
		// A send counts as stalled after 100 ms instead of 15 s, so that
		// the test runs in a second.
		SlowAfter: 100 * time.Millisecond,
		Extra:     func() Sender { return bs },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Run(ctx) }()
	waitFor(t, "the first slow send", func() bool { mu.Lock(); defer mu.Unlock(); return bs.started["a@slow.test"] == 1 })
	time.Sleep(200 * time.Millisecond) // past SlowAfter: the stall shows
	for i := range 10 {
		addTo(fmt.Sprintf("desk%d@fast.test", i))
	}
	q.Kick()
	waitFor(t, "ten replies to the fast domain beside the stalled one", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for to, c := range bs.sent {
			if strings.HasSuffix(to, "@fast.test") {
				n += c
			}
		}
		return n == 10
	})
	// Before the stall shows, the two connections may both have taken a
	// slow recipient; once it shows, the third waits.
	mu.Lock()
	slowStarted := bs.started["a@slow.test"] + bs.started["b@slow.test"] + bs.started["c@slow.test"]
	mu.Unlock()
	if slowStarted > 2 {
		t.Errorf("%d sends to the stalled domain started, want at most the 2 from before the stall showed", slowStarted)
	}
	close(bs.release)
	waitFor(t, "the slow replies once the server answers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return bs.sent["a@slow.test"]+bs.sent["b@slow.test"]+bs.sent["c@slow.test"] == 3
	})
	cancel()
	<-done
}

// orderSender records what it sends to each recipient, in order, and
// fails the test when two sends to one recipient overlap.
type orderSender struct {
	t      *testing.T
	mu     *sync.Mutex
	sent   map[string][]string // recipient → the texts sent, in order
	active map[string]bool
	onSend func(to string)
}

func (o orderSender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	o.mu.Lock()
	if o.active[to[0]] {
		o.t.Errorf("two sends to %s at once", to[0])
	}
	o.active[to[0]] = true
	o.mu.Unlock()
	if o.onSend != nil {
		o.onSend(to[0])
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.active[to[0]] = false
	text := string(raw)
	o.sent[to[0]] = append(o.sent[to[0]], text[strings.LastIndex(text, "msg-"):strings.LastIndex(text, "-end")])
	return nil
}

func (o orderSender) Close() error { return nil }

// addFor queues message n to a recipient; its text names it msg-N-end.
func addFor(t *testing.T, db *storage.DB, to string, n int) uint64 {
	t.Helper()
	var a Added
	err := db.Update(func(tx *storage.Tx) (err error) {
		a, err = Add(tx, reply.Message{From: "visa@visa.test", To: to, Subject: "Re: x",
			Text: fmt.Sprintf("msg-%03d-end", n), Date: time.Now()}, KindReply, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func runQueue(t *testing.T, q *Queue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// A front desk in a rush gets its replies in order, each once, one send
// at a time, while another recipient's go out beside them; the attempts
// of a batch are all recorded before its first send.
func TestBatchesKeepEachRecipientsOrder(t *testing.T) {
	db := newDB(t)
	mu := &sync.Mutex{}
	os := orderSender{t: t, mu: mu, sent: map[string][]string{}, active: map[string]bool{}}
	os.onSend = func(to string) {
		var sending int
		db.View(func(tx *storage.Tx) error {
			return tx.Outbox(func(it storage.OutboxItem) bool {
				if it.To[0] == to && !it.Sending.IsZero() {
					sending++
				}
				return true
			})
		})
		if sending == 0 {
			t.Errorf("a send to %s started before its attempt was recorded", to)
		}
	}
	for i := range 100 {
		addFor(t, db, "desk@sp0.test", i)
		if i%10 == 0 {
			addFor(t, db, "other@sp1.test", i)
		}
	}
	q := New(db, []Sender{os, os}, Config{})
	stop := runQueue(t, q)
	waitFor(t, "every reply sent", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(os.sent["desk@sp0.test"]) >= 100 && len(os.sent["other@sp1.test"]) >= 10
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	for to, want := range map[string]int{"desk@sp0.test": 100, "other@sp1.test": 10} {
		got := os.sent[to]
		if len(got) != want {
			t.Errorf("%s got %d replies, want %d", to, len(got), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Errorf("%s got %s after %s: out of order", to, got[i], got[i-1])
			}
		}
	}
	n := 0
	db.View(func(tx *storage.Tx) error { return tx.Outbox(func(storage.OutboxItem) bool { n++; return true }) })
	if n != 0 {
		t.Errorf("%d items left in the queue", n)
	}
}

// After the process died in a batch, each message of it is sent alone:
// the one whose sending kills the process is held on its own, not with
// the messages that happened to share its batch.
func TestMessagesOfACrashedBatchGoAlone(t *testing.T) {
	db := newDB(t)
	var ids []uint64
	for i := range 5 {
		ids = append(ids, addFor(t, db, "desk@sp0.test", i))
	}
	// The process died with the five in hand, as one batch.
	db.Update(func(tx *storage.Tx) error {
		for _, id := range ids {
			it, _, _ := tx.OutboxItem(id)
			it.Attempts, it.Sending = 1, time.Now()
			tx.PutOutboxItem(it)
		}
		return nil
	})
	mu := &sync.Mutex{}
	os := orderSender{t: t, mu: mu, sent: map[string][]string{}, active: map[string]bool{}}
	os.onSend = func(to string) {
		var sending int
		db.View(func(tx *storage.Tx) error {
			return tx.Outbox(func(it storage.OutboxItem) bool {
				if !it.Sending.IsZero() {
					sending++
				}
				return true
			})
		})
		if sending != 1 {
			t.Errorf("%d messages in hand at a send after a crash, want 1: each goes alone", sending)
		}
	}
	stop := runQueue(t, New(db, []Sender{os}, Config{}))
	waitFor(t, "the five sent", func() bool { mu.Lock(); defer mu.Unlock(); return len(os.sent["desk@sp0.test"]) == 5 })
	stop()
}

// An unreachable server stops a batch: the rest is not tried, waits as the
// failed one does, with no attempt counted, and goes out once the server
// answers again.
func TestUnreachableServerStopsABatch(t *testing.T) {
	db := newDB(t)
	var ids []uint64
	for i := range 5 {
		ids = append(ids, addFor(t, db, "desk@sp0.test", i))
	}
	// The first send works, the second finds the server gone.
	s := &fakeSender{}
	s.onSend = func() { s.down = s.tries == 2 } // (called with s.mu held)
	q := New(db, []Sender{s}, Config{Backoff: Backoff{Initial: time.Hour, Max: time.Hour}, Classify: classify, Probe: time.Hour})
	stop := runQueue(t, q)
	waitFor(t, "the batch to end", func() bool {
		n := 0
		db.View(func(tx *storage.Tx) error {
			return tx.Outbox(func(it storage.OutboxItem) bool {
				if it.LastError != "" && it.Sending.IsZero() {
					n++
				}
				return true
			})
		})
		return n == 4
	})
	stop()
	if s.count() != 1 || s.tries != 2 {
		t.Errorf("%d sent in %d tries, want 1 in 2: the rest of the batch is not tried", s.count(), s.tries)
	}
	for i, id := range ids[1:] {
		it, _ := item(t, db, id)
		want := 0
		if i == 0 {
			want = 1 // the one that found the server gone
		}
		if it.Attempts != want || !it.NextAttempt.After(time.Now()) {
			t.Errorf("message %d after the server went: %d attempts, next %v; want %d, waiting", id, it.Attempts, it.NextAttempt, want)
		}
	}
}
