package commands

import (
	"slices"
	"sort"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Destructive changes are what a roster wipe is made of: a removal, an
// update that ends a membership (active to inactive, or an end date already
// past) and a rename (the old address stops verifying), whether from
// command lines or an imported file. A space may have Limits.ConfirmRemovals
// of them in a rolling day. A message that would take a space past that
// (counting what was made there in the day before it) holds all of its
// destructive changes to that space under one token, so that a wipe split
// over several messages still asks for "confirm". Confirmed changes are
// applied, and count toward the day like the others.
//
// Only members who were on the roster before the rolling day count: a
// member added today and removed, deactivated or renamed today leaves the
// roster as it was, so a busy day of corrections never asks for a token,
// while a wipe of the roster everyone relies on always does.

// rollingDay is the window over which a space's destructive changes add up.
const rollingDay = 24 * time.Hour

// heldChange is one destructive change waiting for confirmation: a removal
// (Set nil), or an update that sets the fields in Set.
type heldChange struct {
	Space string            `json:"space"`
	Email string            `json:"email"`
	Set   map[string]string `json:"set,omitempty"` // "name", "status", "until", "email"
}

// heldPayload is a pending change of kind pendingChanges. Removals is how
// records of kind pendingRemove, written when only removals were held,
// list theirs.
type heldPayload struct {
	Changes  []heldChange `json:"changes,omitempty"`
	Removals []heldChange `json:"removals,omitempty"`
}

func (p heldPayload) all() []heldChange { return append(slices.Clip(p.Removals), p.Changes...) }

// guard is one run's account of destructive changes.
type guard struct {
	limit  int
	asked  map[string]int  // per space: what the message asks for, planned before it runs
	recent map[string]int  // per space: made in the rolling day before the message
	holds  map[string]bool // spaces whose destructive changes wait for confirmation
	held   []heldChange
	first  int            // index of the result that holds the first change; -1 before
	made   map[string]int // per space: destructive changes this run applied
}

func newGuard(limit int) guard {
	return guard{limit: limit, asked: map[string]int{}, recent: map[string]int{}, holds: map[string]bool{},
		first: -1, made: map[string]int{}}
}

// destructive reports whether an update from before to after takes the
// member off the roster as a host sees it, or moves them to another address.
func destructive(before, after storage.Member, today string) bool {
	return before.Email != after.Email || before.ActiveOn(today) && !after.ActiveOn(today)
}

// established reports whether a membership was on the roster before the
// rolling day, so that taking it off counts toward the guard's limit.
func (x *executor) established(m storage.Member) bool {
	return m.Added.Before(x.env.Now.Add(-rollingDay))
}

// holding reports whether the destructive changes to a space wait for
// confirmation in this run.
func (x *executor) holding(space string) bool { return x.guard.holds[space] }

// hold keeps a destructive change for confirmation instead of applying it.
func (x *executor) hold(h heldChange) { x.guard.held = append(x.guard.held, h) }

// planGuard counts, before anything runs, the destructive changes the
// script asks for in each space, and decides which spaces' changes to hold.
// The count is what the lines ask for against the roster as it is: a line
// that will fail still counts, so that splitting a wipe into lines that
// hide from the count is not a way around it.
func (x *executor) planGuard(s Script) error {
	g := &x.guard
	if g.limit <= 0 {
		return nil
	}
	importing := false
	for _, it := range s.Items {
		c := it.Command
		if c == nil || c.Err != "" || (c.Name != "remove member" && c.Name != "update member" && c.Name != "import members") {
			continue
		}
		sp, res, err := x.space(c)
		if err != nil {
			return err
		}
		if res != nil {
			continue
		}
		n := 0
		switch c.Name {
		case "remove member":
			// A line for an address not on the roster removes nothing
			// that was there (it fails, or an earlier line added it).
			if old, found, err := x.tx.Member(sp.ID, c.Target); err != nil {
				return err
			} else if found && x.established(old) {
				n = 1
			}
		case "update member":
			if n, err = x.asksUpdate(sp.ID, c); err != nil {
				return err
			}
		case "import members":
			// Only the first import of a message runs (see importMembers),
			// and a replace is held whole anyway.
			if importing {
				continue
			}
			importing = true
			if contains(c.Words, "replace") {
				continue
			}
			f, res := x.readRosterFile()
			if res != nil {
				continue
			}
			p, err := x.planImport(sp.ID, f.rows, f.problems, false)
			if err != nil {
				return err
			}
			for _, u := range destructiveUpdates(p, x.today()) {
				if x.established(u[0]) {
					n++
				}
			}
		}
		g.asked[sp.ID] += n
	}
	for space, n := range g.asked {
		recent, err := x.tx.RemovalsSince(space, x.env.Now.Add(-rollingDay))
		if err != nil {
			return err
		}
		g.recent[space] = recent
		if n > 0 && recent+n > g.limit {
			g.holds[space] = true
		}
	}
	return nil
}

// asksUpdate is 1 when an update line would be destructive for an
// established member as they are now. An address not on the roster is not
// established: the line fails, or an earlier line of the message adds it.
func (x *executor) asksUpdate(space string, c *Command) (int, error) {
	old, found, err := x.tx.Member(space, c.Target)
	if err != nil || !found || !x.established(old) {
		return 0, err
	}
	if m, _ := applyOpts(old, c.Opts); destructive(old, m, x.today()) {
		return 1, nil
	}
	return 0, nil
}

// destructiveUpdates are the updates of an import plan that end a
// membership.
func destructiveUpdates(p importPlan, today string) [][2]storage.Member {
	var out [][2]storage.Member
	for _, u := range p.updates {
		if destructive(u[0], u[1], today) {
			out = append(out, u)
		}
	}
	return out
}

// heldSet is what a held update sets: the fields that differ.
func heldSet(old, m storage.Member) map[string]string {
	set := map[string]string{}
	for _, f := range []struct{ key, a, b string }{
		{"name", old.Name, m.Name}, {"status", old.Status, m.Status}, {"until", old.Until, m.Until}, {"email", old.Email, m.Email},
	} {
		if f.a != f.b {
			set[f.key] = f.b
		}
	}
	return set
}

// holdChanges stores the run's held changes under one token and returns the
// lines that say why and how to confirm them.
func (x *executor) holdChanges() ([]string, error) {
	g := &x.guard
	perSpace := map[string]int{}
	for _, h := range g.held {
		perSpace[h.Space]++
	}
	spaces := make([]string, 0, len(perSpace))
	for sp := range perSpace {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	space := ""
	if len(spaces) == 1 {
		space = spaces[0]
	}
	tok, expires, notes, err := x.holdPending(space, pendingChanges, heldPayload{Changes: g.held}, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sp := range spaces {
		asked := max(g.asked[sp], perSpace[sp])
		if recent := g.recent[sp]; recent > 0 {
			out = append(out, x.t("For %s, this message asks for %d changes that remove, deactivate or rename members, "+
				"and %d were made in the last 24 hours: more than %d in a day need your confirmation, so none of these was made yet.",
				sp, asked, recent, g.limit))
		} else {
			out = append(out, x.t("For %s, this message asks for %d changes that remove, deactivate or rename members: "+
				"more than %d in a day need your confirmation, so none of these was made yet.", sp, asked, g.limit))
		}
	}
	out = append(out, x.t("To apply the %d held changes, reply with the line: confirm %s", len(g.held), tok),
		x.tokenNote(expires))
	return append(out, notes...), nil
}

// finish records the run's destructive changes for the rolling day, and
// prunes what aged out of it.
func (x *executor) finish() error {
	spaces := make([]string, 0, len(x.guard.made))
	for sp := range x.guard.made {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	for _, sp := range spaces {
		if n := x.guard.made[sp]; n > 0 {
			if err := x.tx.RecordRemovals(sp, storage.RemovalCount{At: x.env.Now, Count: n, MessageID: x.env.MessageID}); err != nil {
				return err
			}
		}
		if _, err := x.tx.PruneRemovals(sp, x.env.Now.Add(-rollingDay)); err != nil {
			return err
		}
	}
	return nil
}

// confirmChanges applies confirmed held changes, each checked again
// against the roster as it is now: what changed meanwhile is reported.
func (x *executor) confirmChanges(p storage.Pending) (Result, error) {
	held, err := heldOf(p)
	if err != nil {
		return Result{}, err
	}
	var done, notDone []string
	removed, updated := 0, 0
	for _, h := range held {
		line, applied, err := x.applyHeld(h)
		if err != nil {
			return Result{}, err
		}
		switch {
		case !applied:
			notDone = append(notDone, line)
		case h.Set == nil:
			removed++
			done = append(done, line)
		default:
			updated++
			done = append(done, line)
		}
	}
	if err := x.tx.DeletePending(p.Token); err != nil {
		return Result{}, err
	}
	r := x.ok("removed %d members as you confirmed.", removed)
	if updated > 0 {
		r = x.ok("made %d changes as you confirmed: %s, %s.", removed+updated, x.t("%d removed", removed), x.t("%d updated", updated))
	}
	r.Detail = append(done, notDone...)
	return r, nil
}

// applyHeld applies one held change; it says what it did, or why not.
func (x *executor) applyHeld(h heldChange) (string, bool, error) {
	old, found, err := x.tx.Member(h.Space, h.Email)
	if err != nil {
		return "", false, err
	}
	if !found {
		return x.t("%s was no longer a member of %s", h.Email, h.Space), false, nil
	}
	if h.Set == nil {
		if err := x.writeRemoval(old); err != nil {
			return "", false, err
		}
		return x.t("removed %s from %s", h.Email, h.Space), true, nil
	}
	m, changed := applyOpts(old, h.Set)
	if len(changed) == 0 {
		return x.t("%s was already as asked: %s", h.Email, x.describe(old)), false, nil
	}
	if m.Email != old.Email {
		if _, taken, err := x.tx.Member(h.Space, m.Email); err != nil {
			return "", false, err
		} else if taken {
			return x.t("%s is already a member of %s, so %s kept its address", m.Email, h.Space, h.Email), false, nil
		}
	}
	if err := x.writeUpdate(old, m); err != nil {
		return "", false, err
	}
	return x.t("updated %s of %s: %s", x.fieldList(changed), h.Email, x.describe(m)), true, nil
}
