package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The visa exchange: members announce visits to other spaces, and hosts
// count the free days each visitor used with them per calendar month. A
// day is used by a verification that answered VERIFIED (one per calendar
// day, in the host's time zone) and by each day of an accepted visit; the
// same day counts once however it was used.

// Visit is one member's announced visit to a host space.
type Visit struct {
	Token  string `json:"token"`  // what the host's managers answer with (decline visit TOKEN)
	Space  string `json:"space"`  // the host
	Member string `json:"member"` // the visitor's address
	// Homes are the spaces where the visitor was an active member when
	// announcing the visit, in id order.
	Homes     []string  `json:"homes,omitempty"`
	From      string    `json:"from"` // YYYY-MM-DD, the first day, in the host's calendar
	Days      int       `json:"days"`
	Note      string    `json:"note,omitempty"`
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id"`
	// Declined is set when a manager of the host declined the visit; its
	// days no longer count.
	Declined   time.Time `json:"declined,omitzero"`
	DeclinedBy string    `json:"declined_by,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// Dates lists the visit's days, YYYY-MM-DD.
func (v Visit) Dates() []string {
	first, err := time.Parse(time.DateOnly, v.From)
	if err != nil {
		return nil
	}
	out := make([]string, 0, v.Days)
	for i := range v.Days {
		out = append(out, first.AddDate(0, 0, i).Format(time.DateOnly))
	}
	return out
}

// Last is the visit's last day, YYYY-MM-DD.
func (v Visit) Last() string {
	d := v.Dates()
	if len(d) == 0 {
		return v.From
	}
	return d[len(d)-1]
}

// Visit returns the visit with the given token.
func (t *Tx) Visit(token string) (Visit, bool, error) {
	var v Visit
	ok, err := t.get(bucketVisits, []byte(token), &v)
	return v, ok, err
}

// PutVisit stores a visit (a new one, or one declined).
func (t *Tx) PutVisit(v Visit) error { return t.put(bucketVisits, []byte(v.Token), v) }

// Visits calls fn for every visit, in token order, until fn returns false.
func (t *Tx) Visits(fn func(Visit) bool) error {
	err := t.bucket(bucketVisits).ForEach(func(k, v []byte) error {
		var vis Visit
		if err := decode(bucketVisits, k, v, &vis); err != nil {
			return err
		}
		if !fn(vis) {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// errStop ends a ForEach early; the caller does not report it.
var errStop = errors.New("stop")

// DayUse is one calendar day a visitor used at a host.
type DayUse struct {
	// Verified: a host's verify answered VERIFIED that day.
	Verified bool `json:"verified,omitempty"`
	// Visits are the tokens of the accepted visits that include the day.
	Visits []string `json:"visits,omitempty"`
	// Homes are the visitor's home spaces when the day was first used: the
	// spaces that "sent" the visitor, for the digests' reciprocity.
	Homes []string  `json:"homes,omitempty"`
	At    time.Time `json:"at"`
}

// Day is one used day as VisaDays reports it.
type Day struct {
	Host, Visitor, Date string // Date is YYYY-MM-DD, in the host's calendar
	DayUse
}

func dayKey(host, visitor, date string) []byte {
	return append(pairKey(host, visitor), append([]byte{0}, date...)...)
}

func splitDayKey(k []byte) (host, visitor, date string) {
	parts := bytes.SplitN(k, []byte{0}, 3)
	if len(parts) != 3 {
		return string(k), "", ""
	}
	return string(parts[0]), string(parts[1]), string(parts[2])
}

// UseDay records that visitor used date at host: by a verification
// (verified) or by an accepted visit (visit, its token). It reports
// whether the day was new, so not counted before.
func (t *Tx) UseDay(host, visitor, date string, verified bool, visit string, homes []string, at time.Time) (bool, error) {
	k := dayKey(host, visitor, date)
	var u DayUse
	found, err := t.get(bucketVisaDays, k, &u)
	if err != nil {
		return false, err
	}
	if !found {
		u = DayUse{Homes: homes, At: at}
	}
	changed := !found
	if verified && !u.Verified {
		u.Verified, changed = true, true
	}
	if visit != "" && !slices.Contains(u.Visits, visit) {
		u.Visits, changed = append(u.Visits, visit), true
	}
	if !changed {
		return false, nil
	}
	return !found, t.put(bucketVisaDays, k, u)
}

// ReleaseVisitDays takes a declined visit's days back: each day the visit
// alone used no longer counts.
func (t *Tx) ReleaseVisitDays(v Visit) error {
	for _, date := range v.Dates() {
		k := dayKey(v.Space, v.Member, date)
		var u DayUse
		if found, err := t.get(bucketVisaDays, k, &u); err != nil {
			return err
		} else if !found {
			continue
		}
		u.Visits = slices.DeleteFunc(u.Visits, func(tok string) bool { return tok == v.Token })
		if len(u.Visits) == 0 && !u.Verified {
			if err := t.bucket(bucketVisaDays).Delete(k); err != nil {
				return fmt.Errorf("release day %s of visit %s: %w", date, v.Token, err)
			}
			continue
		}
		if err := t.put(bucketVisaDays, k, u); err != nil {
			return err
		}
	}
	return nil
}

// DaysUsed counts the days visitor used at host in one calendar month
// ("2026-03").
func (t *Tx) DaysUsed(host, visitor, month string) int {
	prefix := dayKey(host, visitor, month+"-")
	n := 0
	c := t.bucket(bucketVisaDays).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// DayUsed reports whether visitor already used date at host.
func (t *Tx) DayUsed(host, visitor, date string) bool {
	return t.bucket(bucketVisaDays).Get(dayKey(host, visitor, date)) != nil
}

// VisaDays calls fn for every used day, by host, visitor and date, until
// fn returns false.
func (t *Tx) VisaDays(fn func(Day) bool) error {
	err := t.bucket(bucketVisaDays).ForEach(func(k, v []byte) error {
		d := Day{}
		d.Host, d.Visitor, d.Date = splitDayKey(k)
		if err := decode(bucketVisaDays, k, v, &d.DayUse); err != nil {
			return err
		}
		if !fn(d) {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// RosterState is when a space's roster was last confirmed by a manager
// (confirm roster) and last changed (any change to a member): a roster
// neither confirmed nor changed for long is likely stale.
type RosterState struct {
	Confirmed   time.Time `json:"confirmed,omitzero"`
	ConfirmedBy string    `json:"confirmed_by,omitempty"`
	Changed     time.Time `json:"changed,omitzero"`
}

// Fresh is when the roster was last known to be right: its last
// confirmation or change, or else the space's creation.
func (r RosterState) Fresh(created time.Time) time.Time {
	t := created
	for _, u := range []time.Time{r.Confirmed, r.Changed} {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// RosterState returns what is known of a space's roster's freshness.
func (t *Tx) RosterState(space string) (RosterState, error) {
	var r RosterState
	_, err := t.get(bucketRosterState, []byte(space), &r)
	return r, err
}

// ConfirmRoster records that a manager reviewed a space's roster.
func (t *Tx) ConfirmRoster(space, by string, at time.Time) error {
	r, err := t.RosterState(space)
	if err != nil {
		return err
	}
	r.Confirmed, r.ConfirmedBy = at, by
	return t.put(bucketRosterState, []byte(space), r)
}

// rosterChanged notes a change to a space's roster (Record calls it).
func (t *Tx) rosterChanged(space string, at time.Time) error {
	r, err := t.RosterState(space)
	if err != nil {
		return err
	}
	if !at.After(r.Changed) {
		return nil
	}
	r.Changed = at
	return t.put(bucketRosterState, []byte(space), r)
}

// fillRosterState sets each space's last change from the audit trail; it
// runs once, when a store written before roster states existed is opened.
func (t *Tx) fillRosterState() error {
	last := map[string]time.Time{}
	err := t.Changes(0, func(c Change) bool {
		if c.Kind == "member" && c.Space != "" && c.At.After(last[c.Space]) {
			last[c.Space] = c.At
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("fill roster states: %w", err)
	}
	for space, at := range last {
		if err := t.rosterChanged(space, at); err != nil {
			return err
		}
	}
	return nil
}
