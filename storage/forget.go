package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Forgetting a person ("forget me") and retention (privacy.retention). An
// address is erased from every roster, visit, verification and counter;
// the audit trail keeps the changes, under the person's pseudonym, so that
// a roster's history still adds up. Deleted records leave their bytes on
// bbolt's free pages until the file is compacted (Compact): Forget asks
// for that, and the daemon does it once the replies of the moment are sent.

// Erasure is what Forget did with one address.
type Erasure struct {
	Pseudonym     string
	Memberships   []Member // the roster entries removed
	Managed       []string // the spaces the address no longer manages
	Verifications int      // checks of the address at a front desk, deleted
	Visits        int      // its announced visits, deleted
	Days          int      // free days counted for it, deleted
	Audit         int      // audit records that now name the pseudonym instead
	Pending       int      // changes waiting for confirmation that named it, dropped
	Other         int      // reply counters, exactly-once records and the like, cleared
}

// Forget erases addr (canonical form) from the store, as of at: its
// memberships and manager links, the verifications and visits of it, the
// free days counted for it, the changes waiting for confirmation that it
// asked for or that name it, its reply counters; in the audit trail, in
// verifications it made as a host and in the records of exactly-once
// handling, the address is replaced by its pseudonym. The caller records
// the erasure itself (under the pseudonym). It asks for a compaction
// (RequestCompaction) so that no byte of the address stays in the file.
func (t *Tx) Forget(addr string, at time.Time) (Erasure, error) {
	e := Erasure{Pseudonym: t.Pseudonym(addr)}
	var err error
	if e.Memberships, err = t.MembershipsOf(addr); err != nil {
		return e, err
	}
	for _, m := range e.Memberships {
		if err := t.DeleteMember(m.Space, m.Email); err != nil {
			return e, err
		}
	}
	if e.Managed, err = t.ManagedSpaces(addr); err != nil {
		return e, err
	}
	for _, s := range e.Managed {
		if err := t.RemoveManager(addr, s); err != nil {
			return e, err
		}
	}
	if e.Audit, err = t.PseudonymiseAudit(map[string]string{addr: e.Pseudonym}, time.Time{}); err != nil {
		return e, err
	}
	if err := t.forgetVerifications(addr, e.Pseudonym, &e); err != nil {
		return e, err
	}
	if err := t.forgetVisits(addr, e.Pseudonym, &e); err != nil {
		return e, err
	}
	if err := t.forgetPending(addr, &e); err != nil {
		return e, err
	}
	if err := t.forgetHandled(addr, e.Pseudonym, &e); err != nil {
		return e, err
	}
	if err := t.forgetRest(addr, e.Pseudonym, &e); err != nil {
		return e, err
	}
	return e, t.RequestCompaction(at)
}

// quoted is s as a JSON string, quotes included: how an address stands
// in a record as a whole value.
func quoted(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// PseudonymiseAudit replaces, in the audit records made before before
// (every record when before is zero), each address that names holds by
// its pseudonym: as the actor, as the member or manager concerned, and in
// the records before and after the change. The history index follows. It
// reports how many records it changed.
func (t *Tx) PseudonymiseAudit(names map[string]string, before time.Time) (int, error) {
	if len(names) == 0 {
		return 0, nil
	}
	var needles [][]byte
	for addr := range names {
		needles = append(needles, quoted(addr))
	}
	var changed []Change
	var olds []map[string]bool // per changed record, the addresses it named
	c := t.bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if !containsAny(v, needles) {
			continue
		}
		var ch Change
		if err := decode(bucketAudit, k, v, &ch); err != nil {
			return 0, err
		}
		if !before.IsZero() && !ch.At.Before(before) {
			break // the trail is in time order
		}
		named := map[string]bool{}
		for addr, pseudo := range names {
			q, p := quoted(addr), quoted(pseudo)
			if ch.Actor == addr {
				ch.Actor, named[addr] = pseudo, true
			}
			if ch.Key == addr {
				ch.Key, named[addr] = pseudo, true
			}
			if bytes.Contains(ch.Before, q) {
				ch.Before, named[addr] = bytes.ReplaceAll(ch.Before, q, p), true
			}
			if bytes.Contains(ch.After, q) {
				ch.After, named[addr] = bytes.ReplaceAll(ch.After, q, p), true
			}
		}
		if len(named) > 0 {
			changed, olds = append(changed, ch), append(olds, named)
		}
	}
	for i, ch := range changed {
		if err := t.put(bucketAudit, itob(ch.Seq), ch); err != nil {
			return 0, err
		}
		if ch.Space == "" {
			continue
		}
		idx := t.bucket(bucketAuditMember)
		for addr := range olds[i] {
			old := historyKey(ch.Space, addr, ch.Seq)
			if idx.Get(old) == nil {
				continue
			}
			if err := idx.Delete(old); err != nil {
				return 0, fmt.Errorf("reindex audit record %d: %w", ch.Seq, err)
			}
			if err := idx.Put(historyKey(ch.Space, names[addr], ch.Seq), nil); err != nil {
				return 0, fmt.Errorf("reindex audit record %d: %w", ch.Seq, err)
			}
		}
	}
	return len(changed), nil
}

func containsAny(v []byte, needles [][]byte) bool {
	for _, n := range needles {
		if bytes.Contains(v, n) {
			return true
		}
	}
	return false
}

// forgetVerifications deletes the checks of addr, and puts its pseudonym
// in those it made as a host (they belong to the visitors' history).
func (t *Tx) forgetVerifications(addr, pseudo string, e *Erasure) error {
	b := t.bucket(bucketVerifications)
	q := quoted(addr)
	var drop [][]byte
	var keep []Verification
	err := b.ForEach(func(k, v []byte) error {
		if !bytes.Contains(v, q) {
			return nil
		}
		var ver Verification
		if err := decode(bucketVerifications, k, v, &ver); err != nil {
			return err
		}
		switch {
		case ver.Visitor == addr:
			drop = append(drop, append([]byte(nil), k...))
		case ver.Host == addr:
			ver.Host = pseudo
			keep = append(keep, ver)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete verification: %w", err)
		}
	}
	for _, ver := range keep {
		if err := t.put(bucketVerifications, itob(ver.Seq), ver); err != nil {
			return err
		}
	}
	e.Verifications = len(drop)
	return nil
}

// forgetVisits deletes the visits of addr and the days counted for it;
// a visit it declined as a host names its pseudonym.
func (t *Tx) forgetVisits(addr, pseudo string, e *Erasure) error {
	var drop []string
	var keep []Visit
	err := t.Visits(func(v Visit) bool {
		switch {
		case v.Member == addr:
			drop = append(drop, v.Token)
		case v.DeclinedBy == addr:
			v.DeclinedBy = pseudo
			keep = append(keep, v)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, tok := range drop {
		if err := t.bucket(bucketVisits).Delete([]byte(tok)); err != nil {
			return fmt.Errorf("delete visit %s: %w", tok, err)
		}
	}
	for _, v := range keep {
		if err := t.PutVisit(v); err != nil {
			return err
		}
	}
	e.Visits = len(drop)
	var days [][]byte
	err = t.bucket(bucketVisaDays).ForEach(func(k, _ []byte) error {
		if _, visitor, _ := splitDayKey(k); visitor == addr {
			days = append(days, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range days {
		if err := t.bucket(bucketVisaDays).Delete(k); err != nil {
			return fmt.Errorf("delete used day: %w", err)
		}
	}
	e.Days = len(days)
	return nil
}

// forgetPending drops the changes waiting for confirmation that addr asked
// for, or whose payload or file names it (a held removal of it, an import
// listing it): none of them may keep the address.
func (t *Tx) forgetPending(addr string, e *Erasure) error {
	q := quoted(addr)
	lower := []byte(addr)
	var drop []string
	err := t.bucket(bucketPending).ForEach(func(k, v []byte) error {
		var p Pending
		if err := decode(bucketPending, k, v, &p); err != nil {
			return err
		}
		file, _ := t.PendingFile(p)
		if p.Actor == addr || bytes.Contains(p.Payload, q) || bytes.Contains(bytes.ToLower(file), lower) {
			drop = append(drop, p.Token)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, tok := range drop {
		if err := t.DeletePending(tok); err != nil {
			return err
		}
	}
	e.Pending = len(drop)
	return nil
}

// forgetHandled moves exactly-once records kept under the address (as
// versions before pseudonymous keys wrote them) to the pseudonym's key, so
// that a message handled before is still recognised.
func (t *Tx) forgetHandled(addr, pseudo string, e *Erasure) error {
	prefix := []byte(addr + " ")
	type move struct {
		key string
		h   HandledMessage
	}
	var moves []move
	err := t.bucket(bucketHandled).ForEach(func(k, v []byte) error {
		var h HandledMessage
		if err := decode(bucketHandled, k, v, &h); err != nil {
			return err
		}
		if bytes.HasPrefix(k, prefix) || h.Sender == addr {
			moves = append(moves, move{string(k), h})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range moves {
		if err := t.bucket(bucketHandled).Delete([]byte(m.key)); err != nil {
			return fmt.Errorf("forget handled record: %w", err)
		}
		if err := t.bucket(bucketHandledAt).Delete(handledAtKey(m.key, m.h.At)); err != nil {
			return fmt.Errorf("forget handled record: %w", err)
		}
		key := m.key
		if rest, ok := strings.CutPrefix(key, addr+" "); ok {
			key = pseudo + " " + rest
		}
		if m.h.Sender == addr {
			m.h.Sender = ""
		}
		if err := t.MarkHandled(key, m.h); err != nil {
			return err
		}
	}
	e.Other += len(moves)
	return nil
}

// forgetRest clears the reply counters kept under the address ("addr",
// "stranger:addr") and the roster confirmations it made.
func (t *Tx) forgetRest(addr, pseudo string, e *Erasure) error {
	var rates [][]byte
	err := t.bucket(bucketRates).ForEach(func(k, _ []byte) error {
		if string(k) == addr || bytes.HasSuffix(k, []byte(":"+addr)) {
			rates = append(rates, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range rates {
		if err := t.bucket(bucketRates).Delete(k); err != nil {
			return fmt.Errorf("forget reply counter: %w", err)
		}
	}
	e.Other += len(rates)
	var confirmed []string
	err = t.bucket(bucketRosterState).ForEach(func(k, v []byte) error {
		if bytes.Contains(v, quoted(addr)) {
			confirmed = append(confirmed, string(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, space := range confirmed {
		r, err := t.RosterState(space)
		if err != nil {
			return err
		}
		r.ConfirmedBy = pseudo
		if err := t.put(bucketRosterState, []byte(space), r); err != nil {
			return err
		}
	}
	return nil
}

// keyCompactAfter in the meta bucket: the store should be compacted once
// no message queued at or before this time (Unix ns) waits in the outbox.
var keyCompactAfter = []byte("compact_after")

// RequestCompaction asks for the file to be compacted once every message
// queued until at has left the outbox (Compact clears the request).
func (t *Tx) RequestCompaction(at time.Time) error {
	meta := t.bucket(bucketMeta)
	if old := btoi(meta.Get(keyCompactAfter)); old > unixNano(at) {
		return nil
	}
	if err := meta.Put(keyCompactAfter, itob(unixNano(at))); err != nil {
		return fmt.Errorf("request compaction: %w", err)
	}
	return nil
}

// CompactionDue reports whether a compaction was asked for, and whether
// it may run now: no message queued at or before the request still waits
// in the outbox (it may hold the erased address; it leaves once sent or
// given up).
func (t *Tx) CompactionDue() (asked, ready bool, err error) {
	v := t.bucket(bucketMeta).Get(keyCompactAfter)
	if v == nil {
		return false, false, nil
	}
	after := time.Unix(0, int64(btoi(v)))
	ready = true
	err = t.Outbox(func(it OutboxItem) bool {
		if !it.Created.After(after) {
			ready = false
		}
		return ready
	})
	return true, ready, err
}

// PruneVisa removes what privacy.retention keeps no longer: verifications
// made before before, visits whose last day and announcement are both
// before it, and used days before its date. It reports how many records
// went.
func (t *Tx) PruneVisa(before time.Time) (int, error) {
	n := 0
	vb := t.bucket(bucketVerifications)
	var old [][]byte
	c := vb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var ver Verification
		if err := decode(bucketVerifications, k, v, &ver); err != nil {
			return 0, err
		}
		if !ver.At.Before(before) {
			break // appended in time order
		}
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := vb.Delete(k); err != nil {
			return 0, fmt.Errorf("prune verification: %w", err)
		}
	}
	n += len(old)
	day := before.UTC().Format(time.DateOnly)
	var visits []string
	err := t.Visits(func(v Visit) bool {
		if v.At.Before(before) && v.Last() < day {
			visits = append(visits, v.Token)
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	for _, tok := range visits {
		if err := t.bucket(bucketVisits).Delete([]byte(tok)); err != nil {
			return 0, fmt.Errorf("prune visit: %w", err)
		}
	}
	n += len(visits)
	var days [][]byte
	err = t.bucket(bucketVisaDays).ForEach(func(k, _ []byte) error {
		if _, _, date := splitDayKey(k); date < day {
			days = append(days, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range days {
		if err := t.bucket(bucketVisaDays).Delete(k); err != nil {
			return 0, fmt.Errorf("prune used day: %w", err)
		}
	}
	return n + len(days), nil
}

// OffRoster lists the addresses that audit records made before before
// name (as actor, member or manager) and that are now on no roster: a
// member of no space and a manager of none, and not kept (keep: the
// admins). Their records older than the retention are to be
// pseudonymised (PseudonymiseAudit).
func (t *Tx) OffRoster(before time.Time, keep func(string) bool) (map[string]string, error) {
	seen := map[string]bool{}
	out := map[string]string{}
	consider := func(addr string) {
		if addr == "" || seen[addr] || !strings.Contains(addr, "@") || IsPseudonym(addr) {
			return
		}
		seen[addr] = true
		if keep != nil && keep(addr) {
			return
		}
		prefix := pairKey(addr, "")
		if k, _ := t.bucket(bucketMemberIndex).Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
			return
		}
		if k, _ := t.bucket(bucketManagers).Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
			return
		}
		out[addr] = t.Pseudonym(addr)
	}
	c := t.bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var ch Change
		if err := decode(bucketAudit, k, v, &ch); err != nil {
			return nil, err
		}
		if !ch.At.Before(before) {
			break
		}
		consider(ch.Actor)
		if ch.Kind == "member" || ch.Kind == "manager" {
			consider(ch.Key)
			for _, side := range []json.RawMessage{ch.Before, ch.After} {
				var rec struct {
					Email string `json:"email"`
				}
				if len(side) > 0 && json.Unmarshal(side, &rec) == nil {
					consider(rec.Email)
				}
			}
		}
	}
	return out, nil
}
