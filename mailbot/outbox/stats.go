package outbox

import (
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Waiting is what waits in the outbox, for /metrics and /healthz.
type Waiting struct {
	// Depth counts the messages waiting to be sent, by kind; held ones
	// are not waiting (no attempt is made until an operator releases
	// them).
	Depth map[string]int
	// Oldest is when the oldest waiting message of each kind was made.
	Oldest map[string]time.Time
	// OldestError is the last error of the oldest waiting message of each
	// kind, if it was tried.
	OldestError map[string]string
	// Held counts the held messages.
	Held int
}

// Stats reads what waits in the outbox. It reads every item, without
// their bytes: the outbox is short unless the submission server is down
// or a big digest hour is being sent.
func Stats(db *storage.DB) (Waiting, error) {
	w := Waiting{Depth: map[string]int{}, Oldest: map[string]time.Time{}, OldestError: map[string]string{}}
	err := db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool {
			if it.Held {
				w.Held++
				return true
			}
			w.Depth[it.Kind]++
			if old, ok := w.Oldest[it.Kind]; !ok || it.Created.Before(old) {
				w.Oldest[it.Kind], w.OldestError[it.Kind] = it.Created, it.LastError
			}
			return true
		})
	})
	return w, err
}
