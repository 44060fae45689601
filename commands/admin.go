package commands

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// admin runs the network admin commands; the caller checked the right.
func (x *executor) admin(c *Command) (Result, error) {
	switch c.Name {
	case "add space":
		return x.addSpace(c)
	case "update space":
		return x.updateSpace(c)
	case "remove space":
		return x.removeSpace(c)
	case "add manager":
		return x.addManager(c)
	case "remove manager":
		return x.removeManager(c)
	case "list spaces":
		return x.listSpaces()
	}
	return x.fail("unknown command %q.", c.Name), nil
}

func (x *executor) addSpace(c *Command) (Result, error) {
	if _, found, err := x.tx.Space(c.Target); err != nil {
		return Result{}, err
	} else if found {
		return x.fail("space %s already exists; use update space.", c.Target), nil
	}
	if res := x.checkLanguage(c); res != nil {
		return *res, nil
	}
	s := storage.Space{ID: c.Target, Created: x.env.Now, Updated: x.env.Now}
	applySpaceOpts(&s, c.Opts)
	if err := x.tx.PutSpace(s); err != nil {
		return Result{}, err
	}
	if err := x.record("space", s.ID, s.ID, "add", nil, s); err != nil {
		return Result{}, err
	}
	r := x.ok("added space %s: %s.", s.ID, spaceLabel(s))
	r.Detail = append(x.slotLines(s), x.t("Next: add its managers, who keep its roster: add manager EMAIL space=%s", s.ID))
	return r, nil
}

// slotLines say a space's time zone and when its managers get their
// weekly digest, its own or the network's, so that an admin sees at once
// what a new space, or a change of tz= or digest_*=, means.
func (x *executor) slotLines(s storage.Space) []string {
	zone := s.TZ
	var out []string
	if zone == "" {
		zone = "UTC"
		if x.env.DefaultTZ != nil {
			zone = x.env.DefaultTZ.String()
		}
		out = append(out, x.t("time zone: %s, the network's default (to set its own: update space %s tz=Area/City)", zone, s.ID))
	} else {
		out = append(out, x.t("time zone: %s", zone))
	}
	day, at := s.DigestDay, s.DigestTime
	if day == "" {
		day = x.env.DigestDay
	}
	if at == "" {
		at = x.env.DigestTime
	}
	if day == "" || at == "" {
		return out
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(d.String(), day) {
			day = x.t(d.String()[:3]) // the abbreviated names are message ids of their own (templates.FormatTime)
		}
	}
	return append(out, x.t("weekly digest to its managers: %s at %s, %s time", day, at, zone))
}

func (x *executor) updateSpace(c *Command) (Result, error) {
	old, found, err := x.tx.Space(c.Target)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("there is no space %s.", c.Target), nil
	}
	if len(c.Opts) == 0 {
		return x.fail("update space needs something to change: name=, city=, country=, tz=, terms=, digest_day=, digest_time=, language=, free_days=, notice_days=, hours= or directions=."), nil
	}
	if res := x.checkLanguage(c); res != nil {
		return *res, nil
	}
	s := old
	applySpaceOpts(&s, c.Opts)
	if reflect.DeepEqual(s, old) {
		return x.ok("space %s is unchanged.", s.ID), nil
	}
	s.Updated = x.env.Now
	if err := x.tx.PutSpace(s); err != nil {
		return Result{}, err
	}
	if err := x.record("space", s.ID, s.ID, "update", old, s); err != nil {
		return Result{}, err
	}
	r := x.ok("updated space %s: %s.", s.ID, spaceLabel(s))
	if s.TZ != old.TZ || s.DigestDay != old.DigestDay || s.DigestTime != old.DigestTime {
		r.Detail = x.slotLines(s)
	}
	return r, nil
}

// removeSpace refuses while members remain: removing a roster is done
// member by member (or by a confirmed import), never as a side effect.
func (x *executor) removeSpace(c *Command) (Result, error) {
	old, found, err := x.tx.Space(c.Target)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("there is no space %s.", c.Target), nil
	}
	if n := x.tx.CountMembers(c.Target); n > 0 {
		return x.fail("space %s still has %d members; remove them first.", c.Target, n), nil
	}
	managers, err := x.tx.Managers(c.Target)
	if err != nil {
		return Result{}, err
	}
	for _, m := range managers {
		if err := x.record("manager", m.Space, m.Email, "remove", m, nil); err != nil {
			return Result{}, err
		}
	}
	if err := x.tx.DeleteSpace(c.Target); err != nil {
		return Result{}, err
	}
	if err := x.record("space", old.ID, old.ID, "remove", old, nil); err != nil {
		return Result{}, err
	}
	return x.ok("removed space %s and its %d managers.", old.ID, len(managers)), nil
}

func (x *executor) addManager(c *Command) (Result, error) {
	id := c.Opts["space"]
	if _, found, err := x.tx.Space(id); err != nil {
		return Result{}, err
	} else if !found {
		return x.fail("there is no space %s.", id), nil
	}
	if _, found, err := x.tx.Manager(c.Target, id); err != nil {
		return Result{}, err
	} else if found {
		return x.ok("%s is already a manager of %s.", c.Target, id), nil
	}
	m := storage.Manager{Email: c.Target, Space: id, Added: x.env.Now}
	if err := x.tx.AddManager(m); err != nil {
		return Result{}, err
	}
	if err := x.record("manager", id, c.Target, "add", nil, m); err != nil {
		return Result{}, err
	}
	sp, _, err := x.tx.Space(id)
	if err != nil {
		return Result{}, err
	}
	x.welcome(c.Target, sp)
	r := x.ok("%s is now a manager of %s.", c.Target, id)
	r.Detail = []string{x.t("%s was sent a welcome: what a manager can do, with examples.", c.Target)}
	return r, nil
}

// welcome tells a new manager, in their space's language, what they can
// now do and how: a manager's first day should not start with guessing
// the command words.
func (x *executor) welcome(manager string, sp storage.Space) {
	code := x.spaceLanguage(sp)
	w := x.in(code)
	lines := []string{
		w.t("%s made you a manager of %s in the Coworking Visa network: you keep its roster of members, and at your front desk you check visitors from the other spaces.",
			x.actor.Address, spaceLabel(sp)),
		w.t("Reply to this message with one command per line, for example:"),
		"  verify visitor@example.org",
		"  add member Alice Smith <alice@example.org>",
		"  list members",
		w.t("Send help for every command you can use."),
	}
	if x.env.Contact != "" {
		lines = append(lines, w.t("Questions? Ask %s.", x.env.Contact))
	}
	x.notices = append(x.notices, Notice{To: []string{manager}, Language: x.set().In(code).Code(),
		Subject: w.t("Welcome: you now manage %s", sp.ID), Lines: lines})
}

// removeManager takes a manager off a space. The last manager of a space
// that has members is removed only after confirm: without one, nobody
// keeps its roster, answers its visitors or reads its digest.
func (x *executor) removeManager(c *Command) (Result, error) {
	id := c.Opts["space"]
	old, found, err := x.tx.Manager(c.Target, id)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("%s is not a manager of %s.", c.Target, id), nil
	}
	managers, err := x.tx.Managers(id)
	if err != nil {
		return Result{}, err
	}
	if n := x.tx.CountMembers(id); len(managers) == 1 && n > 0 {
		tok, expires, notes, err := x.holdPending(id, pendingManager, managerPayload{Email: c.Target}, nil)
		if err != nil {
			return Result{}, err
		}
		r := x.ok("%s is the last manager of %s, which has %d members: without a manager, nobody keeps its roster or reads its digest. "+
			"Nothing changed yet; add another manager first, or to remove %s anyway, reply with the line: confirm %s",
			c.Target, id, n, c.Target, tok)
		r.Detail = append([]string{x.tokenNote(expires)}, notes...)
		return r, nil
	}
	return x.dropManager(old)
}

// dropManager removes a manager and audits it.
func (x *executor) dropManager(old storage.Manager) (Result, error) {
	if err := x.tx.RemoveManager(old.Email, old.Space); err != nil {
		return Result{}, err
	}
	if err := x.record("manager", old.Space, old.Email, "remove", old, nil); err != nil {
		return Result{}, err
	}
	return x.ok("%s is no longer a manager of %s.", old.Email, old.Space), nil
}

// managerPayload is the removal of a space's last manager, waiting for
// confirmation.
type managerPayload struct {
	Email string `json:"email"`
}

// confirmRemoveManager carries out a confirmed removal of a last manager,
// if they are still a manager.
func (x *executor) confirmRemoveManager(p storage.Pending) (Result, error) {
	if !x.actor.Admin {
		return x.denied("%s is for network admins only; to have it done, ask %s.", "remove manager", x.admins()), nil
	}
	var pl managerPayload
	if err := json.Unmarshal(p.Payload, &pl); err != nil {
		return Result{}, fmt.Errorf("decode pending manager removal: %w", err)
	}
	old, found, err := x.tx.Manager(pl.Email, p.Space)
	if err != nil {
		return Result{}, err
	}
	if err := x.tx.DeletePending(p.Token); err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("%s is not a manager of %s.", pl.Email, p.Space), nil
	}
	return x.dropManager(old)
}

func (x *executor) listSpaces() (Result, error) {
	spaces, err := x.tx.Spaces()
	if err != nil {
		return Result{}, err
	}
	r := x.ok("%d participating spaces.", len(spaces))
	for _, s := range spaces {
		managers, err := x.tx.Managers(s.ID)
		if err != nil {
			return Result{}, err
		}
		emails := make([]string, len(managers))
		for i, m := range managers {
			emails[i] = m.Email
		}
		parts := []string{spaceLabel(s), x.t("%d members", x.tx.CountMembers(s.ID))}
		if s.TZ != "" {
			parts = append(parts, x.t("tz %s", s.TZ))
		}
		if s.DigestDay != "" || s.DigestTime != "" {
			parts = append(parts, x.t("digest %s", strings.TrimSpace(s.DigestDay+" "+s.DigestTime)))
		}
		if s.Language != "" {
			parts = append(parts, x.t("language %s", s.Language))
		}
		if len(emails) > 0 {
			parts = append(parts, x.t("managers %s", strings.Join(emails, ", ")))
		}
		r.Detail = append(r.Detail, x.t("%s: %s", s.ID, strings.Join(parts, ", ")))
	}
	return r, nil
}

// applySpaceOpts copies the given options onto a space.
func applySpaceOpts(s *storage.Space, opts map[string]string) {
	for k, v := range opts {
		switch k {
		case "name":
			s.Name = v
		case "city":
			s.City = v
		case "country":
			s.Country = v
		case "tz":
			s.TZ = v
		case "terms":
			s.Terms = v
		case "digest_day":
			s.DigestDay = v
		case "digest_time":
			s.DigestTime = v
		case "language":
			s.Language = v
		case "free_days":
			s.FreeDays = nil
			if v == "unlimited" {
				s.FreeDays = new(storage.FreeDaysUnlimited)
			} else if n, err := strconv.Atoi(v); err == nil {
				s.FreeDays = &n
			}
		case "notice_days":
			s.NoticeDays, _ = strconv.Atoi(v) // checked by the parser
		case "hours":
			s.Hours = v
		case "directions":
			s.Directions = v
		}
	}
}

// checkLanguage refuses a language= the bot has no catalog for, and names
// the ones it has.
func (x *executor) checkLanguage(c *Command) *Result {
	code := c.Opts["language"]
	if code == "" {
		return nil
	}
	langs := x.env.Languages
	if langs == nil {
		langs = templates.Embedded().Languages()
	}
	if contains(langs, code) {
		return nil
	}
	r := x.fail("the bot does not speak %q: write language= with one of %s.", code, strings.Join(langs, ", "))
	return &r
}
