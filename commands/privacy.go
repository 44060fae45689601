package commands

import (
	"sort"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Every authenticated person may ask what the network holds about their
// address (my data) and have it erased (forget me, then confirm TOKEN):
// rosters, visits, the checks of them at front desks and the days they
// used go; the history of changes keeps what happened under a pseudonym.

// pendingForget is the kind of a waiting "forget me".
const pendingForget = "forget"

// ErasureWaiting reports whether addr asked to be forgotten and its token
// is still good at now: their "confirm TOKEN" must be answered even when
// they are no one the bot otherwise serves.
func ErasureWaiting(tx *storage.Tx, addr string, now time.Time) (bool, error) {
	pending, err := tx.PendingOf(addr)
	for _, p := range pending {
		if p.Kind == pendingForget && now.Before(p.Expires) {
			return true, err
		}
	}
	return false, err
}

// myData lists everything held about the sender's address.
func (x *executor) myData() (Result, error) {
	addr := x.actor.Address
	var lines []string
	section := func(title string, items []string) {
		if len(items) > 0 {
			lines = append(lines, title)
			for _, it := range items {
				lines = append(lines, "  "+it)
			}
		}
	}
	memberships, err := x.tx.MembershipsOf(addr)
	if err != nil {
		return Result{}, err
	}
	var items []string
	for _, m := range memberships {
		sp := x.spaceOrID(m.Space)
		if m.Added.IsZero() {
			items = append(items, x.t("%s: %s", spaceLabel(sp), x.describe(m)))
			continue
		}
		items = append(items, x.t("%s: %s, added %s", spaceLabel(sp), x.describe(m), m.Added.UTC().Format(time.DateOnly)))
	}
	section(x.t("Memberships:"), items)

	managed, err := x.tx.ManagedSpaces(addr)
	if err != nil {
		return Result{}, err
	}
	items = nil
	for _, id := range managed {
		m, _, err := x.tx.Manager(addr, id)
		if err != nil {
			return Result{}, err
		}
		items = append(items, x.t("manager of %s since %s", id, m.Added.UTC().Format(time.DateOnly)))
	}
	section(x.t("Spaces you manage:"), items)

	items = nil
	made := 0
	err = x.tx.Verifications(0, func(v storage.Verification) bool {
		switch {
		case v.Visitor == addr:
			host := v.HostSpace
			if host == "" {
				host = x.t("a space of %s", v.Host)
			}
			word := "NOT VERIFIED"
			if v.Verified {
				word = "VERIFIED"
			}
			items = append(items, x.t("%s: checked at %s (%s)", v.At.UTC().Format("2006-01-02 15:04 UTC"), host, word))
		case v.Host == addr:
			made++
		}
		return true
	})
	if err != nil {
		return Result{}, err
	}
	section(x.t("Checks of you at front desks:"), items)
	if made > 0 {
		section(x.t("Checks you made as a host:"), []string{x.t("%d checks of visitors", made)})
	}

	items = nil
	err = x.tx.Visits(func(v storage.Visit) bool {
		if v.Member != addr {
			return true
		}
		line := x.t("visit to %s on %s (%d days), announced %s", v.Space, v.From, v.Days, v.At.UTC().Format(time.DateOnly))
		if v.Note != "" {
			line = x.t("%s, note: %s", line, v.Note)
		}
		if !v.Declined.IsZero() {
			line = x.t("%s; declined on %s", line, v.Declined.UTC().Format(time.DateOnly))
		}
		items = append(items, line)
		return true
	})
	if err != nil {
		return Result{}, err
	}
	section(x.t("Visits you announced:"), items)

	used := map[string]int{} // host \x00 month
	err = x.tx.VisaDays(func(d storage.Day) bool {
		if d.Visitor == addr {
			used[d.Host+"\x00"+d.Date[:7]]++
		}
		return true
	})
	if err != nil {
		return Result{}, err
	}
	keys := make([]string, 0, len(used))
	for k := range used {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items = nil
	for _, k := range keys {
		host, month, _ := strings.Cut(k, "\x00")
		items = append(items, x.t("%s in %s: %d days", host, month, used[k]))
	}
	section(x.t("Days used at other spaces:"), items)

	items = nil
	spaces, err := x.tx.Spaces()
	if err != nil {
		return Result{}, err
	}
	for _, sp := range spaces {
		changes, err := x.tx.History(sp.ID, addr)
		if err != nil {
			return Result{}, err
		}
		for _, ch := range changes {
			items = append(items, x.t("%s, %s: %s by %s", ch.At.UTC().Format("2006-01-02 15:04 UTC"), sp.ID, x.changeSummary(ch), ch.Actor))
		}
	}
	section(x.t("Changes to your record (when, where, what, by whom):"), items)

	pending, err := x.tx.PendingOf(addr)
	if err != nil {
		return Result{}, err
	}
	items = nil
	for _, p := range pending {
		if x.env.Now.Before(p.Expires) {
			items = append(items, x.t("%s, until %s", x.pendingWhat(p), p.Expires.UTC().Format("2006-01-02 15:04 UTC")))
		}
	}
	section(x.t("Waiting for your confirmation:"), items)

	if len(lines) == 0 {
		return x.ok("the network holds nothing about %s.", addr), nil
	}
	r := x.ok("what the network holds about %s:", addr)
	r.Detail = append(lines, x.t("To have all of it erased, send: forget me"))
	return r, nil
}

// spaceOrID is the space with this id, or one named by its id alone when
// it was removed since.
func (x *executor) spaceOrID(id string) storage.Space {
	sp, found, err := x.tx.Space(id)
	if err != nil || !found {
		return storage.Space{ID: id}
	}
	return sp
}

// forgetMe asks the sender to confirm the erasure of their data; nothing
// changes yet.
func (x *executor) forgetMe() (Result, error) {
	addr := x.actor.Address
	memberships, err := x.tx.MembershipsOf(addr)
	if err != nil {
		return Result{}, err
	}
	managed, err := x.tx.ManagedSpaces(addr)
	if err != nil {
		return Result{}, err
	}
	tok, expires, notes, err := x.holdPending("", pendingForget, nil, nil)
	if err != nil {
		return Result{}, err
	}
	r := x.ok("nothing is erased yet: to erase everything the network holds about %s, reply with the line: confirm %s", addr, tok)
	var spaces []string
	for _, m := range memberships {
		spaces = append(spaces, m.Space)
	}
	if len(spaces) > 0 {
		r.Detail = append(r.Detail, x.t("You will be removed from the rosters of %s, whose managers are told.", strings.Join(spaces, ", ")))
	}
	if len(managed) > 0 {
		r.Detail = append(r.Detail, x.t("You will no longer manage %s.", strings.Join(managed, ", ")))
	}
	r.Detail = append(r.Detail,
		x.t("Your visits, the checks of you at front desks and the days you used are deleted; the history of changes keeps what happened, under a pseudonym instead of your address."),
		x.tokenNote(expires))
	r.Detail = append(r.Detail, notes...)
	return r, nil
}

// erased is what an erasure took from one space: a membership, a manager.
type erased struct {
	member  *storage.Member
	managed bool
}

// confirmForget erases the sender's data, tells the managers of the
// spaces concerned, and says what went.
func (x *executor) confirmForget(p storage.Pending) (Result, error) {
	addr := x.actor.Address
	if err := x.tx.DeletePending(p.Token); err != nil { // used: it is not among what Forget drops
		return Result{}, err
	}
	e, err := x.tx.Forget(addr, x.env.Now)
	if err != nil {
		return Result{}, err
	}
	// The erasure itself is a change to each roster, made by the person,
	// and recorded under their pseudonym.
	affected := map[string]*erased{}
	var order []string
	touch := func(space string) *erased {
		a, ok := affected[space]
		if !ok {
			a = &erased{}
			affected[space] = a
			order = append(order, space)
		}
		return a
	}
	for i := range e.Memberships {
		touch(e.Memberships[i].Space).member = &e.Memberships[i]
	}
	for _, s := range e.Managed {
		touch(s).managed = true
	}
	sort.Strings(order)
	for _, space := range order {
		kind := "member"
		if affected[space].member == nil {
			kind = "manager"
		}
		ch := storage.Change{At: x.env.Now, Actor: e.Pseudonym, MessageID: x.env.MessageID, Space: space, Kind: kind,
			Key: e.Pseudonym, Action: "forget"}
		if _, err := x.tx.Record(ch); err != nil {
			return Result{}, err
		}
		if err := x.forgetNotice(space, e.Pseudonym, affected[space].member, affected[space].managed); err != nil {
			return Result{}, err
		}
	}
	r := x.ok("everything the network held about %s is erased.", addr)
	var spaces []string
	for _, m := range e.Memberships {
		spaces = append(spaces, m.Space)
	}
	if len(spaces) > 0 {
		r.Detail = append(r.Detail, x.t("removed from the rosters of %s; their managers are told.", strings.Join(spaces, ", ")))
	}
	if len(e.Managed) > 0 {
		r.Detail = append(r.Detail, x.t("no longer a manager of %s.", strings.Join(e.Managed, ", ")))
	}
	r.Detail = append(r.Detail,
		x.t("%d checks of you at front desks deleted.", e.Verifications),
		x.t("%d visits deleted.", e.Visits),
		x.t("%d counted days deleted.", e.Days),
		x.t("%d changes in the history now name %s instead of your address.", e.Audit, e.Pseudonym))
	if e.Pending > 0 {
		r.Detail = append(r.Detail, x.t("%d changes waiting for confirmation that named you were dropped.", e.Pending))
	}
	r.Detail = append(r.Detail,
		x.t("Once this reply is sent, the store's file is rewritten, so that no copy of your address is left in it."),
		x.t("The mail you sent the bot stays in its mailbox; ask the network's admins to delete it there."))
	return r, nil
}

// forgetNotice tells a space's managers, in its language, that someone of
// its roster (or one of its managers) asked to be forgotten.
func (x *executor) forgetNotice(space, pseudo string, member *storage.Member, managed bool) error {
	managers, err := x.tx.Managers(space)
	if err != nil || len(managers) == 0 {
		return err
	}
	sp := x.spaceOrID(space)
	code := x.spaceLanguage(sp)
	h := x.in(code)
	addr := x.actor.Address
	lines := []string{h.t("%s asked the network to forget them.", addr)}
	if member != nil {
		lines = append(lines, h.t("Their membership of %s (%s) was removed from the roster.", space, h.describe(*member)))
	}
	if managed {
		lines = append(lines, h.t("They are no longer a manager of %s.", space))
	}
	lines = append(lines, h.t("Their visits and the checks of them were erased; the history of changes names them %s from now on.", pseudo))
	n := Notice{Language: x.set().In(code).Code(), Subject: h.t("%s asked to be forgotten", addr), Lines: lines}
	for _, m := range managers {
		n.To = append(n.To, m.Email)
	}
	x.notices = append(x.notices, n)
	return nil
}
