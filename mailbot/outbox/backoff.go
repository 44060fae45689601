package outbox

import "time"

// Backoff is the retry schedule of a message whose send failed for a reason
// that may pass: Initial, three times Initial, then doubling up to Max (with
// 5 s and 1 h: 5 s, 15 s, 30 s, 1 min, 2 min, 4 min … 1 h). A message still
// unsent GiveUpAfter its creation is dropped and logged.
type Backoff struct {
	Initial     time.Duration
	Max         time.Duration
	GiveUpAfter time.Duration
}

// After returns the wait after the given number of failed attempts (1 for
// the first failure).
func (b Backoff) After(attempts int) time.Duration {
	if attempts < 1 {
		return 0
	}
	d := b.Initial
	if attempts >= 2 {
		d *= 3
	}
	for i := 2; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	return d
}
