package storage

import (
	"fmt"
	"time"
)

// OutboxItem is one rendered message waiting to be sent. Raw holds the exact
// bytes to send, so a retry after a crash sends a byte-identical message
// (same Message-ID) rather than a new one. Raw is stored apart from the
// rest, so that scanning the queue does not read every message body.
type OutboxItem struct {
	ID          uint64    `json:"id"`
	From        string    `json:"from"` // envelope sender
	To          []string  `json:"to"`   // envelope recipients
	Raw         []byte    `json:"-"`
	MessageID   string    `json:"message_id"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`

	// Kind says what the message is ("reply", "notice", "digest"), and
	// Answers the Message-ID of the mail it replies to: for the log.
	Kind    string `json:"kind,omitempty"`
	Answers string `json:"answers,omitempty"`
	// Sending is when the send now in hand began; it is cleared when the
	// send's outcome is recorded. Found set when the queue starts, it is
	// a send the process died in: Crashes counts those in a row.
	Sending time.Time `json:"sending,omitzero"`
	Crashes int       `json:"crashes,omitempty"`
	// Held is set on an item whose sending killed the process too often
	// in a row: it is kept, never sent again by itself, until an operator
	// releases it.
	Held bool `json:"held,omitempty"`
}

// Enqueue adds an item to the outbox, due at once, and returns its id.
func (t *Tx) Enqueue(it OutboxItem) (uint64, error) {
	if it.NextAttempt.IsZero() {
		it.NextAttempt = it.Created
	}
	id, err := t.appendSeq(bucketOutbox, &it, func(seq uint64) { it.ID = seq })
	if err != nil {
		return 0, err
	}
	if err := t.bucket(bucketOutboxRaw).Put(itob(id), it.Raw); err != nil {
		return 0, fmt.Errorf("write outbox message %d: %w", id, err)
	}
	return id, nil
}

// OutboxRaw returns the bytes of an outbox item. The slice is a copy, valid
// after the transaction.
func (t *Tx) OutboxRaw(id uint64) []byte {
	return append([]byte(nil), t.bucket(bucketOutboxRaw).Get(itob(id))...)
}

// OutboxItem returns one item by id, without its raw bytes.
func (t *Tx) OutboxItem(id uint64) (OutboxItem, bool, error) {
	var it OutboxItem
	ok, err := t.get(bucketOutbox, itob(id), &it)
	return it, ok, err
}

// PutOutboxItem stores an item's new state (attempts, next attempt, error);
// its raw bytes stay as they were.
func (t *Tx) PutOutboxItem(it OutboxItem) error { return t.put(bucketOutbox, itob(it.ID), it) }

// DeleteOutboxItem removes an item once it was sent or given up.
func (t *Tx) DeleteOutboxItem(id uint64) error {
	if err := t.bucket(bucketOutbox).Delete(itob(id)); err != nil {
		return fmt.Errorf("delete outbox item %d: %w", id, err)
	}
	if err := t.bucket(bucketOutboxRaw).Delete(itob(id)); err != nil {
		return fmt.Errorf("delete outbox message %d: %w", id, err)
	}
	return nil
}

// Outbox calls fn for each item (without raw bytes) in id order until fn
// returns false.
func (t *Tx) Outbox(fn func(OutboxItem) bool) error { return t.OutboxAfter(0, fn) }

// OutboxAfter is Outbox from the first item whose id is above after: the
// items queued since a look that saw up to after.
func (t *Tx) OutboxAfter(after uint64, fn func(OutboxItem) bool) error {
	c := t.bucket(bucketOutbox).Cursor()
	for k, v := c.Seek(itob(after + 1)); k != nil; k, v = c.Next() {
		var it OutboxItem
		if err := decode(bucketOutbox, k, v, &it); err != nil {
			return err
		}
		if !fn(it) {
			return nil
		}
	}
	return nil
}
