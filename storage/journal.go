package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
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
	// ActiveElsewhere: for a member added (or renamed onto an address), the
	// other spaces where that address was an active member at the time, so
	// that their managers hear of it in their digest.
	ActiveElsewhere []string `json:"active_elsewhere,omitempty"`
}

// Record appends a change to the audit trail. A change to a member is also
// indexed under its space and address (and under the new address when it
// renames the member), so that one member's history is a prefix scan.
func (t *Tx) Record(c Change) (uint64, error) {
	seq, err := t.appendSeq(bucketAudit, &c, func(seq uint64) { c.Seq = seq })
	if err != nil {
		return 0, err
	}
	if c.Kind == "member" && c.Space != "" {
		if err := t.rosterChanged(c.Space, c.At); err != nil {
			return 0, err
		}
	}
	return seq, t.indexChange(c)
}

// indexChange writes the history index entries of one audit record.
func (t *Tx) indexChange(c Change) error {
	if c.Kind != "member" || c.Space == "" {
		return nil
	}
	keys := []string{c.Key}
	if to := renamedTo(c); to != "" {
		keys = append(keys, to)
	}
	for _, k := range keys {
		if err := t.bucket(bucketAuditMember).Put(historyKey(c.Space, k, c.Seq), nil); err != nil {
			return fmt.Errorf("index audit record %d: %w", c.Seq, err)
		}
	}
	return nil
}

// renamedTo returns the address a member change moved the member to, or ""
// when it kept its address.
func renamedTo(c Change) string {
	if len(c.After) == 0 {
		return ""
	}
	var after struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(c.After, &after) != nil || after.Email == c.Key {
		return ""
	}
	return after.Email
}

// historyKey is space \x00 address \x00 seq: the keys of one member sort by
// sequence number, so in time order.
func historyKey(space, email string, seq uint64) []byte {
	return append(pairKey(space, email+"\x00"), itob(seq)...)
}

// reindexAudit builds the history index from the whole audit trail; it runs
// once, when a store written before the index existed is opened.
func (t *Tx) reindexAudit() error {
	var ierr error
	err := t.Changes(0, func(c Change) bool {
		ierr = t.indexChange(c)
		return ierr == nil
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return fmt.Errorf("index the audit trail: %w", err)
	}
	return nil
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
	HomeSpace string    `json:"home_space,omitempty"` // the first of HomeSpaces; "" when not verified
	// HomeSpaces are all the spaces where the visitor was active at the
	// time, in id order: each of them sees the visit in its digest.
	HomeSpaces []string `json:"home_spaces,omitempty"`
	Verified   bool     `json:"verified"`
	MessageID  string   `json:"message_id"`
}

// Homes lists the spaces where the visitor was active when checked. A
// record written before HomeSpaces existed names one, HomeSpace.
func (v Verification) Homes() []string {
	if len(v.HomeSpaces) > 0 {
		return v.HomeSpaces
	}
	if v.HomeSpace != "" {
		return []string{v.HomeSpace}
	}
	return nil
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

// MarkHandled records that the message with this key was handled. The
// record is indexed by h.At, so that PruneHandled finds old ones.
func (t *Tx) MarkHandled(key string, h HandledMessage) error {
	if err := t.put(bucketHandled, []byte(key), h); err != nil {
		return err
	}
	return t.indexHandled(key, h.At)
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
	// File is the SHA-256 (hex) of the file the change applies, stored
	// apart (see PutPendingWithFile); "" when it has none.
	File string `json:"file,omitempty"`
}

// Pending returns the pending change for a token.
func (t *Tx) Pending(token string) (Pending, bool, error) {
	var p Pending
	ok, err := t.get(bucketPending, []byte(token), &p)
	return p, ok, err
}

// PutPending stores a change waiting for confirmation.
func (t *Tx) PutPending(p Pending) error { return t.put(bucketPending, []byte(p.Token), p) }

// DeletePending removes a pending change (used, or expired), and its file
// when no other pending change applies it.
func (t *Tx) DeletePending(token string) error {
	p, found, err := t.Pending(token)
	if err != nil {
		return err
	}
	if found {
		if err := t.releaseFile(p); err != nil {
			return err
		}
	}
	if err := t.bucket(bucketPending).Delete([]byte(token)); err != nil {
		return fmt.Errorf("delete pending %s: %w", token, err)
	}
	return nil
}

// DeleteExpiredPending removes pending changes that expired before the
// given time, and reports how many. Callers pass a time well in the past
// of their clock, so that a late confirmation still hears "expired" rather
// than "unknown".
func (t *Tx) DeleteExpiredPending(before time.Time) (int, error) {
	var old []string
	err := t.bucket(bucketPending).ForEach(func(k, v []byte) error {
		var p Pending
		if err := decode(bucketPending, k, v, &p); err != nil {
			return err
		}
		if p.Expires.Before(before) {
			old = append(old, string(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range old {
		if err := t.DeletePending(k); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

// maxRenames bounds how far History follows a member back through renames.
const maxRenames = 32

// History returns the audit trail of one member of a space, in time order.
// A member renamed to this address brings its earlier history along: the
// rename record and everything before it under the old address.
func (t *Tx) History(space, key string) ([]Change, error) {
	seen := map[uint64]bool{}
	var out []Change
	if err := t.history(space, key, ^uint64(0), 0, seen, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// history collects the records indexed under one address before sequence
// number until, following renames into that address.
func (t *Tx) history(space, key string, until uint64, depth int, seen map[uint64]bool, out *[]Change) error {
	prefix := pairKey(space, key+"\x00")
	c := t.bucket(bucketAuditMember).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		seq := btoi(k[len(prefix):])
		if seq >= until {
			break
		}
		if seen[seq] {
			continue
		}
		seen[seq] = true
		var ch Change
		if found, err := t.get(bucketAudit, itob(seq), &ch); err != nil {
			return err
		} else if !found {
			continue
		}
		*out = append(*out, ch)
		if ch.Key != key && depth < maxRenames {
			if err := t.history(space, ch.Key, seq, depth+1, seen, out); err != nil {
				return err
			}
		}
	}
	return nil
}
