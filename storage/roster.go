package storage

import (
	"bytes"
	"fmt"
	"sort"
	"time"
)

// Space is one participating coworking space.
type Space struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	City    string `json:"city,omitempty"`
	Country string `json:"country,omitempty"`
	TZ      string `json:"tz,omitempty"` // IANA zone for its digest; "" means the network default
	// DigestDay ("monday") and DigestTime ("08:00") override the network's
	// digest schedule for this space; "" keeps the network's.
	DigestDay  string `json:"digest_day,omitempty"`
	DigestTime string `json:"digest_time,omitempty"`
	Terms      string `json:"terms,omitempty"`
	// Language is the code of the language of its managers' replies and
	// digests ("fr"); "" means the network's (bot.language).
	Language string `json:"language,omitempty"`
	// The terms a visitor gets (the visa exchange, the public directory):
	// free days per visitor per calendar month (nil while the space has
	// not said; FreeDaysUnlimited for no limit), days of notice a visit
	// needs, and opening hours in the space's own words.
	FreeDays   *int   `json:"free_days,omitempty"`
	NoticeDays int    `json:"notice_days,omitempty"`
	Hours      string `json:"hours,omitempty"`
	// Directions tell a visitor how to get in: where the door is, whom
	// to ask for.
	Directions string    `json:"directions,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// FreeDaysUnlimited as Space.FreeDays means no limit on free days.
const FreeDaysUnlimited = -1

// Manager links a manager's address to a space they manage.
type Manager struct {
	Email string    `json:"email"`
	Space string    `json:"space"`
	Added time.Time `json:"added"`
}

// Member statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Member is one person's membership of one space. Addresses are stored
// normalised (lowercase) so lookups are case-insensitive.
type Member struct {
	Space   string    `json:"space"`
	Email   string    `json:"email"`
	Name    string    `json:"name,omitempty"`
	Status  string    `json:"status"`
	Until   string    `json:"until,omitempty"` // YYYY-MM-DD, last day of membership; "" for open-ended
	Added   time.Time `json:"added"`
	Updated time.Time `json:"updated"`
}

// ActiveOn reports whether the membership counts on the given day
// (YYYY-MM-DD): active status and not past its end date.
func (m Member) ActiveOn(day string) bool {
	return m.Status == StatusActive && (m.Until == "" || m.Until >= day)
}

// Space returns the space with the given id.
func (t *Tx) Space(id string) (Space, bool, error) {
	var s Space
	ok, err := t.get(bucketSpaces, []byte(id), &s)
	return s, ok, err
}

// PutSpace creates or replaces a space.
func (t *Tx) PutSpace(s Space) error { return t.put(bucketSpaces, []byte(s.ID), s) }

// DeleteSpace removes a space and its manager links. The caller makes sure
// it has no members left.
func (t *Tx) DeleteSpace(id string) error {
	managers, err := t.Managers(id)
	if err != nil {
		return err
	}
	for _, m := range managers {
		if err := t.RemoveManager(m.Email, id); err != nil {
			return err
		}
	}
	if err := t.bucket(bucketSpaces).Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete space %s: %w", id, err)
	}
	return nil
}

// Spaces lists every space, ordered by id.
func (t *Tx) Spaces() ([]Space, error) {
	var out []Space
	err := t.bucket(bucketSpaces).ForEach(func(k, v []byte) error {
		var s Space
		if err := decode(bucketSpaces, k, v, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// AddManager makes email a manager of space.
func (t *Tx) AddManager(m Manager) error {
	if err := t.put(bucketManagers, pairKey(m.Email, m.Space), m); err != nil {
		return err
	}
	return t.bucket(bucketManagerSpaces).Put(pairKey(m.Space, m.Email), nil)
}

// Manager returns the link between email and space, if there is one.
func (t *Tx) Manager(email, space string) (Manager, bool, error) {
	var m Manager
	ok, err := t.get(bucketManagers, pairKey(email, space), &m)
	return m, ok, err
}

// RemoveManager removes email as a manager of space.
func (t *Tx) RemoveManager(email, space string) error {
	if err := t.bucket(bucketManagers).Delete(pairKey(email, space)); err != nil {
		return fmt.Errorf("remove manager %s of %s: %w", email, space, err)
	}
	if err := t.bucket(bucketManagerSpaces).Delete(pairKey(space, email)); err != nil {
		return fmt.Errorf("remove manager %s of %s: %w", email, space, err)
	}
	return nil
}

// ManagedSpaces lists the ids of the spaces email manages, in id order.
func (t *Tx) ManagedSpaces(email string) ([]string, error) {
	var out []string
	prefix := pairKey(email, "")
	c := t.bucket(bucketManagers).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		_, space := splitPair(k)
		out = append(out, space)
	}
	return out, nil
}

// Managers lists the managers of a space, in address order.
func (t *Tx) Managers(space string) ([]Manager, error) {
	var out []Manager
	prefix := pairKey(space, "")
	c := t.bucket(bucketManagerSpaces).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		_, email := splitPair(k)
		m, ok, err := t.Manager(email, space)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// Member returns the membership of email in space.
func (t *Tx) Member(space, email string) (Member, bool, error) {
	var m Member
	ok, err := t.get(bucketMembers, pairKey(space, email), &m)
	return m, ok, err
}

// PutMember creates or replaces a membership and keeps the address index.
func (t *Tx) PutMember(m Member) error {
	if err := t.put(bucketMembers, pairKey(m.Space, m.Email), m); err != nil {
		return err
	}
	if err := t.bucket(bucketMemberIndex).Put(pairKey(m.Email, m.Space), nil); err != nil {
		return fmt.Errorf("index member %s: %w", m.Email, err)
	}
	return nil
}

// DeleteMember removes a membership and its index entry.
func (t *Tx) DeleteMember(space, email string) error {
	if err := t.bucket(bucketMembers).Delete(pairKey(space, email)); err != nil {
		return fmt.Errorf("delete member %s of %s: %w", email, space, err)
	}
	if err := t.bucket(bucketMemberIndex).Delete(pairKey(email, space)); err != nil {
		return fmt.Errorf("delete member index %s of %s: %w", email, space, err)
	}
	return nil
}

// Members lists the members of a space, ordered by name then address.
func (t *Tx) Members(space string) ([]Member, error) {
	var out []Member
	prefix := pairKey(space, "")
	c := t.bucket(bucketMembers).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var m Member
		if err := decode(bucketMembers, k, v, &m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Email < out[j].Email
	})
	return out, nil
}

// CountMembers counts a space's memberships without decoding them.
func (t *Tx) CountMembers(space string) int {
	n := 0
	prefix := pairKey(space, "")
	c := t.bucket(bucketMembers).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// MembershipsOf lists every membership held by an address, across spaces,
// through the address index (one seek, no scan of the roster).
func (t *Tx) MembershipsOf(email string) ([]Member, error) {
	var out []Member
	prefix := pairKey(email, "")
	c := t.bucket(bucketMemberIndex).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		_, space := splitPair(k)
		m, ok, err := t.Member(space, email)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, nil
}
