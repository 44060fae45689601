package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Change is one audit record: who changed what, when, and from which
// message. Before and After hold the record as it was and as it became
// (null for a creation or a removal).
type Change struct {
	Seq       uint64          `json:"seq"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	MessageID string          `json:"message_id"`
	Space     string          `json:"space,omitempty"`
	Kind      string          `json:"kind"`   // "member", "space" or "manager"
	Key       string          `json:"key"`    // the member's or manager's address, or the space id
	Action    string          `json:"action"` // "add", "update" or "remove"
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
}

// Record appends a change to the audit trail.
func (t *Tx) Record(c Change) (uint64, error) {
	return t.appendSeq(bucketAudit, &c, func(seq uint64) { c.Seq = seq })
}

// Changes calls fn for each audit record with a sequence number of at least
// from, in order, until fn returns false.
func (t *Tx) Changes(from uint64, fn func(Change) bool) error {
	c := t.bucket(bucketAudit).Cursor()
	for k, v := c.Seek(itob(from)); k != nil; k, v = c.Next() {
		var ch Change
		if err := decode(bucketAudit, k, v, &ch); err != nil {
			return err
		}
		if !fn(ch) {
			return nil
		}
	}
	return nil
}

// Verification records one host's check of a visitor, for the digests.
type Verification struct {
	Seq       uint64    `json:"seq"`
	At        time.Time `json:"at"`
	Host      string    `json:"host"`                 // the manager who asked
	HostSpace string    `json:"host_space,omitempty"` // their space, when they manage exactly one
	Visitor   string    `json:"visitor"`
	HomeSpace string    `json:"home_space,omitempty"` // "" when not verified
	Verified  bool      `json:"verified"`
	MessageID string    `json:"message_id"`
}

// RecordVerification appends a verification to the log.
func (t *Tx) RecordVerification(v Verification) error {
	_, err := t.appendSeq(bucketVerifications, &v, func(seq uint64) { v.Seq = seq })
	return err
}

// Verifications calls fn for each verification from sequence number from on.
func (t *Tx) Verifications(from uint64, fn func(Verification) bool) error {
	c := t.bucket(bucketVerifications).Cursor()
	for k, v := c.Seek(itob(from)); k != nil; k, v = c.Next() {
		var ver Verification
		if err := decode(bucketVerifications, k, v, &ver); err != nil {
			return err
		}
		if !fn(ver) {
			return nil
		}
	}
	return nil
}

// HandledMessage is the record that a message was dealt with. Its presence is
// what stops a message from taking effect twice.
type HandledMessage struct {
	At      time.Time `json:"at"`
	Sender  string    `json:"sender,omitempty"`
	Outcome string    `json:"outcome"` // e.g. "replied", "rate-limited", "rejected: …"
	ReplyID uint64    `json:"reply_id,omitempty"`
}

// Handled returns the record for a message key, if the message was handled.
func (t *Tx) Handled(key string) (HandledMessage, bool, error) {
	var h HandledMessage
	ok, err := t.get(bucketHandled, []byte(key), &h)
	return h, ok, err
}

// MarkHandled records that the message with this key was handled.
func (t *Tx) MarkHandled(key string, h HandledMessage) error {
	return t.put(bucketHandled, []byte(key), h)
}

// RateWindow counts the replies sent to one address in the current hour.
type RateWindow struct {
	Start   time.Time `json:"start"`
	Count   int       `json:"count"`
	Noticed bool      `json:"noticed"` // the one over-limit notice went out
}

// RateWindow returns the reply counter for an address.
func (t *Tx) RateWindow(addr string) (RateWindow, error) {
	var w RateWindow
	_, err := t.get(bucketRates, []byte(addr), &w)
	return w, err
}

// PutRateWindow stores the reply counter for an address.
func (t *Tx) PutRateWindow(addr string, w RateWindow) error {
	return t.put(bucketRates, []byte(addr), w)
}

// Period returns the last period recorded under name (for example the week
// a space's digest was last sent), or "".
func (t *Tx) Period(name string) string {
	return string(t.bucket(bucketPeriods).Get([]byte(name)))
}

// SetPeriod records the last period done under name.
func (t *Tx) SetPeriod(name, period string) error {
	if err := t.bucket(bucketPeriods).Put([]byte(name), []byte(period)); err != nil {
		return fmt.Errorf("set period %s: %w", name, err)
	}
	return nil
}

// Pending is a change waiting for its requester's confirmation.
type Pending struct {
	Token   string          `json:"token"`
	Actor   string          `json:"actor"`
	Space   string          `json:"space"`
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
	Expires time.Time       `json:"expires"`
}

// Pending returns the pending change for a token.
func (t *Tx) Pending(token string) (Pending, bool, error) {
	var p Pending
	ok, err := t.get(bucketPending, []byte(token), &p)
	return p, ok, err
}

// PutPending stores a change waiting for confirmation.
func (t *Tx) PutPending(p Pending) error { return t.put(bucketPending, []byte(p.Token), p) }

// DeletePending removes a pending change (used, or expired).
func (t *Tx) DeletePending(token string) error {
	if err := t.bucket(bucketPending).Delete([]byte(token)); err != nil {
		return fmt.Errorf("delete pending %s: %w", token, err)
	}
	return nil
}

// History returns the audit trail of one member of a space, including the
// change that renamed another address to this one. It scans the trail.
func (t *Tx) History(space, key string) ([]Change, error) {
	var out []Change
	err := t.Changes(0, func(c Change) bool {
		if c.Kind == "member" && c.Space == space && c.Key == key {
			out = append(out, c)
		} else if c.Kind == "member" && c.Space == space && bytes.Contains(c.After, []byte(`"email":"`+key+`"`)) {
			out = append(out, c) // renamed to this address
		}
		return true
	})
	return out, err
}
