package commands

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// space decides which space a manager command acts on, or explains why it
// cannot: a manager acts on their own space, names one of theirs with
// space= when they manage several, and an admin may name any.
func (x *executor) space(c *Command) (storage.Space, *Result, error) {
	managed, err := x.tx.ManagedSpaces(x.actor.Address)
	if err != nil {
		return storage.Space{}, nil, err
	}
	id := c.Opts["space"]
	switch {
	case id != "":
		if !x.actor.Admin && !contains(managed, id) {
			r := x.denied("you are not a manager of space %s; to become one, ask %s.", id, x.admins())
			return storage.Space{}, &r, nil
		}
	case len(managed) == 1:
		id = managed[0]
	case len(managed) > 1:
		r := x.fail("you manage several spaces (%s): say which by adding space=ID to the line, for example: %s",
			strings.Join(managed, ", "), withSpace(c, managed[0]))
		return storage.Space{}, &r, nil
	case x.actor.Admin:
		r := x.fail("as an admin, name the space with space=ID, for example: %s", withSpace(c, "indyhall"))
		return storage.Space{}, &r, nil
	default:
		r := x.denied("%s is not a manager of any space; to manage one, ask %s.", x.actor.Address, x.admins())
		return storage.Space{}, &r, nil
	}
	s, found, err := x.tx.Space(id)
	if err != nil {
		return storage.Space{}, nil, err
	}
	if !found {
		r := x.fail("there is no space %s.", id)
		return storage.Space{}, &r, nil
	}
	return s, nil, nil
}

func (x *executor) addMember(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	if old, found, err := x.tx.Member(sp.ID, c.Target); err != nil {
		return Result{}, err
	} else if found {
		return x.fail("%s is already a member of %s (%s); use update member to change it.", c.Target, sp.ID, old.Status), nil
	}
	m := storage.Member{
		Space: sp.ID, Email: c.Target, Name: c.Opts["name"], Status: storage.StatusActive,
		Until: c.Opts["until"], Added: x.env.Now, Updated: x.env.Now,
	}
	if s := c.Opts["status"]; s != "" {
		m.Status = s
	}
	if err := x.writeAdd(m); err != nil {
		return Result{}, err
	}
	r := x.ok("added %s to %s.", x.describe(m), sp.ID)
	if w := x.pastEndDate(nil, m); w != "" {
		r.Detail = append(r.Detail, w)
	}
	return r, nil
}

func (x *executor) updateMember(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	old, found, err := x.tx.Member(sp.ID, c.Target)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("%s is not a member of %s; use add member.", c.Target, sp.ID), nil
	}
	m, changed := applyOpts(old, c.Opts)
	if len(changed) == 0 {
		if len(c.Opts) == 0 || len(c.Opts) == 1 && c.Opts["space"] != "" {
			return x.fail("update member needs something to change: name=, status=, until= or email=."), nil
		}
		return x.ok("%s is unchanged.", x.describe(old)), nil
	}
	if m.Email != old.Email {
		if _, taken, err := x.tx.Member(sp.ID, m.Email); err != nil {
			return Result{}, err
		} else if taken {
			return x.fail("%s is already a member of %s.", m.Email, sp.ID), nil
		}
	}
	if x.holding(sp.ID) && destructive(old, m, x.today()) {
		x.hold(heldChange{Space: sp.ID, Email: old.Email, Set: heldSet(old, m)})
		return x.ok("%s of %s will be updated when you confirm; nothing changed yet: %s.",
			x.fieldList(changed), old.Email, x.describe(m)), nil
	}
	if err := x.writeUpdate(old, m); err != nil {
		return Result{}, err
	}
	r := x.ok("updated %s of %s: %s.", x.fieldList(changed), old.Email, x.describe(m))
	if w := x.pastEndDate(&old, m); w != "" {
		r.Detail = append(r.Detail, w)
	}
	return r, nil
}

// applyOpts sets the fields an update names (name, status, until, email) on
// a copy of m, and lists the ones that changed (as fieldWord names them).
func applyOpts(m storage.Member, opts map[string]string) (storage.Member, []string) {
	var changed []string
	set := func(field string, dst *string, key string) {
		if v, given := opts[key]; given && v != *dst {
			*dst = v
			changed = append(changed, field)
		}
	}
	set("name", &m.Name, "name")
	set("status", &m.Status, "status")
	set("end date", &m.Until, "until")
	set("address", &m.Email, "email")
	return m, changed
}

// writeAdd stores a new membership and audits it, noting the other spaces
// where the address is active.
func (x *executor) writeAdd(m storage.Member) error {
	elsewhere, err := x.activeElsewhere(m.Email, m.Space)
	if err != nil {
		return err
	}
	if err := x.tx.PutMember(m); err != nil {
		return err
	}
	return x.recordMember(m.Space, m.Email, "add", nil, m, elsewhere)
}

// writeUpdate stores an updated membership, moved to its new address when
// renamed, audits it, and counts it when destructive. The caller checked
// that a new address is free.
func (x *executor) writeUpdate(old, m storage.Member) error {
	var elsewhere []string
	if m.Email != old.Email {
		var err error
		if elsewhere, err = x.activeElsewhere(m.Email, m.Space); err != nil {
			return err
		}
		if err := x.tx.DeleteMember(old.Space, old.Email); err != nil {
			return err
		}
	}
	m.Updated = x.env.Now
	if err := x.tx.PutMember(m); err != nil {
		return err
	}
	if destructive(old, m, x.today()) && x.established(old) {
		x.guard.made[m.Space]++
	}
	return x.recordMember(m.Space, old.Email, "update", old, m, elsewhere)
}

// writeRemoval deletes a membership, audits it and counts it.
func (x *executor) writeRemoval(old storage.Member) error {
	if err := x.tx.DeleteMember(old.Space, old.Email); err != nil {
		return err
	}
	if x.established(old) {
		x.guard.made[old.Space]++
	}
	return x.recordMember(old.Space, old.Email, "remove", old, nil, nil)
}

// activeElsewhere lists the spaces other than space where an address is an
// active member today, in id order.
func (x *executor) activeElsewhere(email, space string) ([]string, error) {
	all, err := x.tx.MembershipsOf(email)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range all {
		if m.Space != space && m.ActiveOn(x.today()) {
			out = append(out, m.Space)
		}
	}
	return out, nil
}

func (x *executor) removeMember(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	old, found, err := x.tx.Member(sp.ID, c.Target)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("%s is not a member of %s.", c.Target, sp.ID), nil
	}
	if x.holding(sp.ID) {
		h := heldChange{Space: sp.ID, Email: c.Target}
		for _, o := range x.guard.held {
			if o.Space == h.Space && o.Email == h.Email && o.Set == nil {
				return x.fail("%s is already listed above for removal.", c.Target), nil
			}
		}
		x.hold(h)
		return x.ok("%s will be removed from %s when you confirm; nothing changed yet.", c.Target, sp.ID), nil
	}
	if err := x.writeRemoval(old); err != nil {
		return Result{}, err
	}
	return x.ok("removed %s from %s.", c.Target, sp.ID), nil
}

// historyLayout is how a history line dates a change: a message id, so
// that each language writes it its own way.
const historyLayout = "Mon 2 Jan 2006 15:04 MST"

func (x *executor) history(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	changes, err := x.tx.History(sp.ID, c.Target)
	if err != nil {
		return Result{}, err
	}
	if len(changes) == 0 {
		return x.fail("%s has no history in %s.", c.Target, sp.ID), nil
	}
	r := x.ok("%d changes to %s in %s.", len(changes), c.Target, sp.ID)
	if now, found, err := x.tx.Member(sp.ID, c.Target); err != nil {
		return Result{}, err
	} else if found {
		r.Detail = append(r.Detail, x.t("today: %s", x.describe(now)))
	} else {
		r.Detail = append(r.Detail, x.t("today: not on the roster of %s", sp.ID))
	}
	// Each change at the space's local time, as its digest shows it; the
	// time names the message that made it (a raw Message-ID would not).
	loc := x.zoneOf(sp)
	for _, ch := range changes {
		r.Detail = append(r.Detail, x.t("%s: %s, by %s",
			templates.FormatTime(x.p, ch.At.In(loc), historyLayout), x.changeSummary(ch), ch.Actor))
	}
	return r, nil
}

// changeSummary says what an audit record of a member did, with the
// membership's state on the day of the change: "add Alice <a@x> (active)",
// "update status active → inactive", "update status active → expired,
// end date (none) → 2026-10-31", "remove".
func (x *executor) changeSummary(ch storage.Change) string {
	var before, after storage.Member
	_ = json.Unmarshal(ch.Before, &before) // a record without a side reads as empty
	_ = json.Unmarshal(ch.After, &after)
	day := ch.At.UTC().Format(time.DateOnly)
	switch ch.Action {
	case "add":
		if after.Email != "" {
			return x.t("add %s", x.describeOn(after, day))
		}
	case "update":
		var parts []string
		diff := func(field, a, b string) {
			if a != b {
				parts = append(parts, x.t("%s %s → %s", x.fieldWord(field), x.orNone(a), x.orNone(b)))
			}
		}
		diff("address", before.Email, after.Email)
		diff("name", before.Name, after.Name)
		diff("status", x.stateOn(before, day), x.stateOn(after, day))
		diff("end date", before.Until, after.Until)
		if len(parts) > 0 {
			return x.t("update %s", strings.Join(parts, ", "))
		}
	case "remove":
		return x.t("remove")
	}
	return ch.Action
}

// stateOn is a membership's state on a day as a reader reads it:
// active, inactive or expired.
func (x *executor) stateOn(m storage.Member, day string) string {
	if expired(m, day) {
		return templates.StatusWord(x.p, "expired")
	}
	return templates.StatusWord(x.p, m.Status)
}

func (x *executor) orNone(s string) string {
	if s == "" {
		return x.t("(none)")
	}
	return s
}

// fieldWord names a member's field for the reader; applyOpts names them
// in English.
func (x *executor) fieldWord(field string) string {
	switch field {
	case "name":
		return x.t("name")
	case "status":
		return x.t("status")
	case "end date":
		return x.t("end date")
	case "address":
		return x.t("address")
	}
	return field
}

// fieldList names the fields applyOpts changed, for the reader.
func (x *executor) fieldList(fields []string) string {
	words := make([]string, len(fields))
	for i, f := range fields {
		words[i] = x.fieldWord(f)
	}
	return strings.Join(words, ", ")
}

// verify answers a host: may this visitor work here? Any manager (or admin)
// may verify any address. An inactive or expired membership reads the same
// as none at all to a host. A VERIFIED answer at a host space (the one the
// manager manages, or names with space=) uses one of the visitor's days
// there, at most one per calendar day in the host's time zone, and says
// which day of the month's free days it is.
func (x *executor) verify(c *Command) (Result, error) {
	managed, err := x.tx.ManagedSpaces(x.actor.Address)
	if err != nil {
		return Result{}, err
	}
	if len(managed) == 0 && !x.actor.Admin {
		return x.denied("only space managers may verify visitors; to become one, ask %s.", x.admins()), nil
	}
	host := c.Opts["space"]
	switch {
	case host != "" && !x.actor.Admin && !contains(managed, host):
		return x.denied("you are not a manager of space %s; to become one, ask %s.", host, x.admins()), nil
	case host == "" && len(managed) == 1:
		host = managed[0]
	}
	active, err := x.activeHomes(c.Target)
	if err != nil {
		return Result{}, err
	}
	v := storage.Verification{At: x.env.Now, Host: x.actor.Address, HostSpace: host, Visitor: c.Target,
		Verified: len(active) > 0, MessageID: x.env.MessageID}
	var res Result
	if len(active) == 0 {
		res = Result{Status: NotVerified, Text: x.t("%s is not an active member of a participating space.", c.Target)}
		res.Detail = x.notVerifiedAdvice()
	} else {
		text, err := x.verifiedWords(c.Target, active)
		if err != nil {
			return Result{}, err
		}
		for _, m := range active {
			v.HomeSpaces = append(v.HomeSpaces, m.Space)
		}
		v.HomeSpace = v.HomeSpaces[0]
		if day, err := x.countDay(host, c.Target, active); err != nil {
			return Result{}, err
		} else if day != "" {
			text = x.t("%s; %s.", strings.TrimSuffix(text, "."), day)
		}
		res = Result{Status: Verified, Text: text}
	}
	if err := x.tx.RecordVerification(v); err != nil {
		return Result{}, err
	}
	res.Verdict = &Verdict{Visitor: c.Target, Homes: v.HomeSpaces}
	return res, nil
}

// notVerifiedAdvice tells a host at the front desk what to do after NOT
// VERIFIED, once a message: the same words whether the address is unknown,
// inactive or expired, which a host must not be able to tell apart.
func (x *executor) notVerifiedAdvice() []string {
	if x.advised {
		return nil
	}
	x.advised = true
	out := []string{
		x.t("Check the spelling, or ask the visitor for the address their home space has on its roster, and verify that one."),
		x.t("If the visitor is sure, the managers of their home space can add or renew the membership."),
	}
	if x.env.Contact != "" {
		out = append(out, x.t("Questions about the network: %s", x.env.Contact))
	}
	return out
}

// verifiedWords is what VERIFIED says of a visitor active in homes (by
// space id): "a@x is Alice, a member of betahaus (Berlin, DE)." A home
// whose roster went unconfirmed for too long says so.
func (x *executor) verifiedWords(visitor string, homes []storage.Member) (string, error) {
	var parts []string
	for _, m := range homes {
		sp, _, err := x.tx.Space(m.Space)
		if err != nil {
			return "", err
		}
		if sp.ID == "" {
			sp = storage.Space{ID: m.Space}
		}
		p := x.t("a member of %s", spaceLabel(sp))
		if m.Name != "" {
			p = x.t("%s, a member of %s", m.Name, spaceLabel(sp))
		}
		if m.Until != "" {
			p = x.t("%s, until %s", p, m.Until)
		}
		if since, stale, err := x.staleSince(sp); err != nil {
			return "", err
		} else if stale {
			p = x.t("%s, roster not confirmed since %s", p, since)
		}
		parts = append(parts, p)
	}
	return x.t("%s is %s.", visitor, x.andList(parts)), nil
}

// countDay uses today (in the host's zone) of a verified visitor's days
// at host, and says which day of the month it is; "" when there is no
// host to count for, or the visitor is one of its own members.
func (x *executor) countDay(host, visitor string, homes []storage.Member) (string, error) {
	if host == "" || isHome(homes, host) {
		return "", nil
	}
	sp, found, err := x.tx.Space(host)
	if err != nil || !found {
		return "", err
	}
	var ids []string
	for _, m := range homes {
		ids = append(ids, m.Space)
	}
	date := x.dayAt(sp)
	if _, err := x.tx.UseDay(host, visitor, date, true, "", ids, x.env.Now); err != nil {
		return "", err
	}
	return x.daysWords(sp, x.tx.DaysUsed(host, visitor, date[:7])), nil
}

// andList joins the home spaces of a visitor: "a; and b; and c".
func (x *executor) andList(parts []string) string {
	out := parts[0]
	for _, p := range parts[1:] {
		out = x.t("%s; and %s", out, p)
	}
	return out
}

// describe shows a membership on one line as it stands today: "Alice <a@x>
// (active, until 2027-03-31)", "Bob <b@x> (expired, ended 2026-10-31)".
func (x *executor) describe(m storage.Member) string { return x.describeOn(m, x.today()) }

// describeOn shows a membership as it stood on a day (YYYY-MM-DD). Its
// state is the one notion every reply, the digest and verify share
// (storage.Member.ActiveOn): active is active on that day; an active
// membership past its end date is expired.
func (x *executor) describeOn(m storage.Member, day string) string {
	who := m.Email
	if m.Name != "" {
		who = m.Name + " <" + m.Email + ">"
	}
	if expired(m, day) {
		return x.t("%s (%s, ended %s)", who, templates.StatusWord(x.p, "expired"), m.Until)
	}
	status := templates.StatusWord(x.p, m.Status)
	if m.Until != "" {
		return x.t("%s (%s, until %s)", who, status, m.Until)
	}
	return x.t("%s (%s)", who, status)
}

// expired reports whether a membership marked active is past its end date
// on day: it no longer verifies, though nobody set it inactive.
func expired(m storage.Member, day string) bool {
	return m.Status == storage.StatusActive && !m.ActiveOn(day)
}

// pastEndDate is the line that warns a manager that a change they made
// gives a member an end date already past: accepted (ending a membership
// by its end date is what some managers mean), but never silently, since
// the member stops verifying at once. "" when it does not apply.
func (x *executor) pastEndDate(before *storage.Member, after storage.Member) string {
	if !expired(after, x.today()) || before != nil && expired(*before, x.today()) {
		return ""
	}
	return x.t("the end date %s is already past: %s is not an active member any more, and verify answers NOT VERIFIED. "+
		"If that is a typo, write update member %s until=YYYY-MM-DD (or until=none).", after.Until, after.Email, after.Email)
}

func deref(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}
