package oauth

import (
	"context"
	"time"
)

// Alert is news for the admins about the OAuth2 logins.
type Alert struct {
	// Failing is true when the logins have failed for the set time, false
	// when they work again after such an alert.
	Failing bool
	// Since is when the logins began to fail.
	Since time.Time
	// Reason says what fails and what to do (Healthy's reason), for a
	// failing alert.
	Reason string
}

// Watch calls alert once the logins have failed without a break for after,
// and again when they work after that, so that the admins hear of a bot
// that cannot read its mail (through the outbox, which needs SMTP to work).
// A failure shorter than after (a provider's hiccup) is only logged. Watch
// returns when ctx is done.
func (s *TokenSource) Watch(ctx context.Context, after time.Duration, alert func(Alert)) {
	var alerted time.Time // the Since of the failure alerted, zero if none
	for {
		since, reason, changed := s.state()
		if !alerted.IsZero() && !since.Equal(alerted) {
			// The failure alerted is over (and maybe another began).
			alert(Alert{Failing: false, Since: alerted})
			alerted = time.Time{}
			continue
		}
		var timer *time.Timer
		var wake <-chan time.Time
		if !since.IsZero() && alerted.IsZero() {
			wait := since.Add(after).Sub(s.now())
			if wait <= 0 {
				alert(Alert{Failing: true, Since: since, Reason: reason})
				alerted = since
				continue
			}
			timer = time.NewTimer(wait)
			wake = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-wake:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}
