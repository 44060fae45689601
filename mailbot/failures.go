package mailbot

import (
	"sync"
	"time"
)

// Waits between tries of a message whose DKIM keys could not be looked up:
// they grow from tempRetryFirst, doubling up to tempRetryMax, and a
// message goes to quarantine once it has been tried MaxAttempts times over
// at least tempQuarantineAfter. Meanwhile it is skipped without a look-up,
// so that a DNS that never answers costs one timeout per wait, not one per
// inbox round, and cannot slow down the other messages.
const (
	tempRetryFirst      = time.Minute
	tempRetryMax        = 15 * time.Minute
	tempQuarantineAfter = time.Hour
)

// failures counts, in memory, the failed tries of messages that stay in the
// inbox: internal errors (quarantined after MaxAttempts in a row) and DKIM
// look-ups that failed for a reason that may pass. A restart forgets them:
// a message then gets its full number of tries again, which is safe.
type failures struct {
	max int

	mu sync.Mutex
	m  map[string]*failure
}

type failure struct {
	count int
	first time.Time // first temporary failure
	next  time.Time // no try before this (temporary failures)
}

func newFailures(max int) *failures {
	return &failures{max: max, m: map[string]*failure{}}
}

// waiting reports whether the message with this key must not be tried
// before the returned time.
func (f *failures) waiting(key string, now time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.m[key]; e != nil && now.Before(e.next) {
		return e.next, true
	}
	return time.Time{}, false
}

// internal counts an internal failure and reports the count and whether
// the message must now go to quarantine.
func (f *failures) internal(key string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entry(key)
	e.count++
	if e.count >= f.max {
		delete(f.m, key)
		return e.count, true
	}
	return e.count, false
}

// temporary counts a failure that may pass, and reports the count, when to
// try next, and whether the message must now go to quarantine.
func (f *failures) temporary(key string, now time.Time) (int, time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entry(key)
	e.count++
	if e.first.IsZero() {
		e.first = now
	}
	if e.count >= f.max && now.Sub(e.first) >= tempQuarantineAfter {
		delete(f.m, key)
		return e.count, time.Time{}, true
	}
	wait := tempRetryFirst
	for i := 1; i < e.count && wait < tempRetryMax; i++ {
		wait *= 2
	}
	e.next = now.Add(min(wait, tempRetryMax))
	return e.count, e.next, false
}

// clear forgets a message's failures once it was handled.
func (f *failures) clear(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
}

func (f *failures) entry(key string) *failure {
	e := f.m[key]
	if e == nil {
		e = &failure{}
		f.m[key] = e
	}
	return e
}
