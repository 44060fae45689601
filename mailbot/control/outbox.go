package control

import (
	"errors"
	"fmt"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/outbox"
	"github.com/coworkingvisa/mailbot/storage"
)

// ErrNotHeld is returned by Release for a message that is not held.
var ErrNotHeld = errors.New("not held")

// Outbox lists the messages waiting in the outbox, in the order they were
// queued, without their bytes.
func Outbox(db *storage.DB) ([]storage.OutboxItem, error) {
	var items []storage.OutboxItem
	err := db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool {
			items = append(items, it)
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return items, nil
}

// Release puts a held message back in the queue, due now: for an operator
// who fixed what made the daemon die while sending it.
func Release(db *storage.DB, id uint64, now time.Time) error {
	var held, found bool
	err := db.View(func(tx *storage.Tx) error {
		it, ok, err := tx.OutboxItem(id)
		held, found = it.Held, ok
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("outbox: %w", err)
	case !found:
		return fmt.Errorf("%w: no message %d in the outbox", ErrInvalid, id)
	case !held:
		return fmt.Errorf("%w: message %d is %w", ErrInvalid, id, ErrNotHeld)
	}
	return outbox.Release(db, id, now)
}
