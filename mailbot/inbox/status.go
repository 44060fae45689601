package inbox

import (
	"sync"
	"time"
)

// Status is what the watcher knows of its server, for a health check and
// for metrics.
type Status struct {
	// Connected: logged in, the mailbox selected.
	Connected bool
	// Waiting: connected and between sweeps, in IDLE or until the next
	// poll. The connection is watched meanwhile (the server closing it
	// ends the wait, and IDLE is ended and the poll answered within the
	// watchdog's time), so the inbox counts as reached while waiting.
	Waiting bool
	// LastAnswer is when the server last answered a command.
	LastAnswer time.Time
	// LastSweep is when a sweep last found nothing more to hand over.
	LastSweep time.Time
	// LastError ended the last connection ("" while none failed).
	LastError string
}

// Reached is when the inbox was last known reachable: now while waiting
// on a live connection, else the server's last answer.
func (s Status) Reached(now time.Time) time.Time {
	if s.Connected && s.Waiting {
		return now
	}
	return s.LastAnswer
}

// Status reports the watcher's view of its server. It is safe to call
// from any goroutine.
func (w *Watcher) Status() Status {
	w.status.mu.Lock()
	defer w.status.mu.Unlock()
	return w.status.s
}

// statusBox holds the Status, written by Run's goroutine and read by
// Status.
type statusBox struct {
	mu sync.Mutex
	s  Status
}

func (b *statusBox) update(f func(*Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.s)
}

func (b *statusBox) answered() {
	now := time.Now()
	b.update(func(s *Status) { s.LastAnswer = now })
}
