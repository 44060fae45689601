package commands

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// The visa exchange: a member of one participating space finds the others
// (spaces, terms), announces a visit (visit), and the host's managers hear
// of it and may decline it (decline visit). Each host counts the free days
// each visitor used with it per calendar month, in the host's own time
// zone: a day is used by an accepted visit, or by a verification that
// answered VERIFIED, and counts once however it was used.

// spaces lists the directory: every space's id, name, place and terms,
// for members, managers and admins.
func (x *executor) spaces(c *Command) (Result, error) {
	if res, err := x.mayReadDirectory(c); res != nil || err != nil {
		return deref(res), err
	}
	all, err := x.tx.Spaces()
	if err != nil {
		return Result{}, err
	}
	var shown []storage.Space
	for _, sp := range all {
		if city := c.Opts["city"]; city != "" && !strings.EqualFold(strings.TrimSpace(sp.City), strings.TrimSpace(city)) {
			continue
		}
		if country := c.Opts["country"]; country != "" && !strings.EqualFold(strings.TrimSpace(sp.Country), strings.TrimSpace(country)) {
			continue
		}
		shown = append(shown, sp)
	}
	if len(shown) == 0 {
		return x.ok("no participating space matches %s.", x.filterWords(c)), nil
	}
	r := x.ok("%d participating spaces.", len(shown))
	for _, sp := range shown {
		terms := x.t("%s; %s", x.freeDaysWords(sp), x.noticeWords(sp))
		if sp.Terms != "" {
			terms = x.t("%s; %s", terms, sp.Terms)
		}
		r.Detail = append(r.Detail, x.t("%s: %s; %s", sp.ID, spaceLabel(sp), terms))
	}
	return r, nil
}

// filterWords shows a directory filter as the sender wrote it.
func (x *executor) filterWords(c *Command) string {
	var parts []string
	for _, k := range []string{"city", "country"} {
		if v := c.Opts[k]; v != "" {
			parts = append(parts, k+"="+strconv.Quote(v))
		}
	}
	return strings.Join(parts, " ")
}

// mayReadDirectory lets members, managers and admins read the spaces and
// their terms; others get DENIED.
func (x *executor) mayReadDirectory(c *Command) (*Result, error) {
	if x.actor.Admin {
		return nil, nil
	}
	managed, err := x.tx.ManagedSpaces(x.actor.Address)
	if err != nil || len(managed) > 0 {
		return nil, err
	}
	homes, err := x.activeHomes(x.actor.Address)
	if err != nil || len(homes) > 0 {
		return nil, err
	}
	r := x.denied("%s is for members and managers of participating spaces: if you are a member of one, ask its managers "+
		"to add %s to its roster; for anything else, ask %s.", c.Name, x.actor.Address, x.admins())
	return &r, nil
}

// terms answers with one space's terms for visitors.
func (x *executor) terms(c *Command) (Result, error) {
	if res, err := x.mayReadDirectory(c); res != nil || err != nil {
		return deref(res), err
	}
	sp, found, err := x.tx.Space(c.Target)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("there is no space %s.", c.Target), nil
	}
	r := x.ok("the terms of %s for visitors:", spaceLabel(sp))
	r.Detail = x.termsLines(sp)
	if homes, err := x.activeHomes(x.actor.Address); err != nil {
		return Result{}, err
	} else if len(homes) > 0 && !isHome(homes, sp.ID) {
		month := x.dayAt(sp)[:7]
		r.Detail = append(r.Detail, x.t("you used %d days there this month.", x.tx.DaysUsed(sp.ID, x.actor.Address, month)))
	}
	r.Detail = append(r.Detail, x.t("to announce a visit: visit %s YYYY-MM-DD [days=N] [note=\"...\"]", sp.ID))
	return r, nil
}

// termsLines are a space's terms, one a line.
func (x *executor) termsLines(sp storage.Space) []string {
	out := []string{
		x.t("free days: %s", x.freeDaysWords(sp)),
		x.t("notice: %s", x.noticeWords(sp)),
	}
	if sp.Hours != "" {
		out = append(out, x.t("opening hours: %s", sp.Hours))
	} else {
		out = append(out, x.t("opening hours: %s", x.t("not given")))
	}
	if sp.Directions != "" {
		out = append(out, x.t("how to arrive: %s", sp.Directions))
	}
	if sp.Terms != "" {
		out = append(out, x.t("in its own words: %s", sp.Terms))
	}
	return out
}

// freeDaysWords says how many free days a space gives each visitor a month.
func (x *executor) freeDaysWords(sp storage.Space) string {
	switch {
	case sp.FreeDays == nil:
		return x.t("free days not set")
	case *sp.FreeDays == storage.FreeDaysUnlimited:
		return x.t("free days unlimited")
	case *sp.FreeDays == 0:
		return x.t("no free days")
	}
	return x.t("%d free days a month", *sp.FreeDays)
}

// noticeWords says how much notice a space wants before a visit.
func (x *executor) noticeWords(sp storage.Space) string {
	if sp.NoticeDays == 0 {
		return x.t("no notice needed")
	}
	return x.t("%d days' notice", sp.NoticeDays)
}

// daysWords says which day of a month a visitor is at and what is left:
// "day 2 of 3 free days this month at indyhall"; "" for a space that has
// not said how many free days it gives (the day counts all the same).
func (x *executor) daysWords(sp storage.Space, used int) string {
	switch {
	case sp.FreeDays == nil:
		return ""
	case *sp.FreeDays == storage.FreeDaysUnlimited:
		return x.t("day %d this month at %s, with no limit on free days", used, sp.ID)
	case used <= *sp.FreeDays:
		return x.t("day %d of %s this month at %s", used, x.t("%d free days", *sp.FreeDays), sp.ID)
	}
	return x.t("day %d this month at %s: the free days (%d) are used up", used, sp.ID, *sp.FreeDays)
}

// visit announces a member's visit to another space: checked against the
// calendar, the host's notice and free days; the days are counted at once
// and the host's managers get a notice with a token to decline it.
func (x *executor) visit(c *Command) (Result, error) {
	homes, err := x.activeHomes(x.actor.Address)
	if err != nil {
		return Result{}, err
	}
	if len(homes) == 0 {
		return x.denied("visit is for members of participating spaces: ask your space's managers to add %s to its roster.", x.actor.Address), nil
	}
	sp, found, err := x.tx.Space(c.Target)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return x.fail("there is no space %s.", c.Target), nil
	}
	if isHome(homes, sp.ID) {
		return x.fail("you are a member of %s: you need no visa there.", sp.ID), nil
	}
	days := 1
	if d := c.Opts["days"]; d != "" {
		days, _ = strconv.Atoi(d) // checked by the parser
	}
	v := storage.Visit{Space: sp.ID, Member: x.actor.Address, From: c.Opts["date"], Days: days,
		Note: c.Opts["note"], At: x.env.Now, MessageID: x.env.MessageID}
	for _, h := range homes {
		v.Homes = append(v.Homes, h.Space)
	}
	dates := v.Dates()
	today := x.dayAt(sp) // in the host's calendar
	first, _ := time.Parse(time.DateOnly, v.From)
	day0, _ := time.Parse(time.DateOnly, today)
	switch {
	case v.From < today:
		return x.fail("%s is in the past: it is %s at %s.", v.From, today, sp.ID), nil
	case first.After(day0.AddDate(1, 0, 0)):
		return x.fail("%s is more than a year ahead: visits are announced at most a year in advance.", v.From), nil
	case first.Before(day0.AddDate(0, 0, sp.NoticeDays)):
		return x.fail("%s needs %d days' notice: the first day you may announce now is %s.",
			sp.ID, sp.NoticeDays, day0.AddDate(0, 0, sp.NoticeDays).Format(time.DateOnly)), nil
	case sp.FreeDays != nil && *sp.FreeDays == 0:
		return x.fail("%s gives visitors no free days.", sp.ID), nil
	}
	if until := membershipEnd(homes, v.Last()); until != "" {
		return x.fail("your membership ends on %s, before the last day of this visit (%s).", until, v.Last()), nil
	}
	// Per month: the days used already, and the new ones this visit adds.
	months := map[string]int{}
	var order []string
	for _, d := range dates {
		m := d[:7]
		if _, seen := months[m]; !seen {
			order = append(order, m)
			months[m] = 0
		}
		if !x.tx.DayUsed(sp.ID, x.actor.Address, d) {
			months[m]++
		}
	}
	if sp.FreeDays != nil && *sp.FreeDays > 0 {
		for _, m := range order {
			used := x.tx.DaysUsed(sp.ID, x.actor.Address, m)
			if left := *sp.FreeDays - used; months[m] > left {
				return x.fail("not enough free days at %s in %s: %d of %d are left, and this visit needs %d.",
					sp.ID, m, max(left, 0), *sp.FreeDays, months[m]), nil
			}
		}
	}
	if v.Token, err = x.newVisitToken(); err != nil {
		return Result{}, err
	}
	for _, d := range dates {
		if _, err := x.tx.UseDay(sp.ID, x.actor.Address, d, false, v.Token, v.Homes, x.env.Now); err != nil {
			return Result{}, err
		}
	}
	if err := x.tx.PutVisit(v); err != nil {
		return Result{}, err
	}
	told, err := x.visitNotice(sp, v, homes)
	if err != nil {
		return Result{}, err
	}
	var r Result
	if told {
		r = x.ok("your visit to %s on %s (%d days) is announced; its managers were told.", spaceLabel(sp), v.From, v.Days)
	} else {
		r = x.ok("your visit to %s on %s (%d days) is recorded, but the space has no managers to tell: write to it yourself.",
			spaceLabel(sp), v.From, v.Days)
	}
	for _, m := range order {
		used := x.tx.DaysUsed(sp.ID, x.actor.Address, m)
		r.Detail = append(r.Detail, x.leftWords(sp, m, used))
	}
	r.Detail = append(r.Detail, x.termsLines(sp)...)
	return r, nil
}

// leftWords says how many free days a visitor has left at a space in a
// month, after using used.
func (x *executor) leftWords(sp storage.Space, month string, used int) string {
	switch {
	case sp.FreeDays == nil:
		return x.t("days used at %s in %s: %d (the space has not said how many are free).", sp.ID, month, used)
	case *sp.FreeDays == storage.FreeDaysUnlimited:
		return x.t("days used at %s in %s: %d (free days are unlimited there).", sp.ID, month, used)
	}
	return x.t("free days left at %s in %s: %d of %d.", sp.ID, month, max(*sp.FreeDays-used, 0), *sp.FreeDays)
}

// membershipEnd is "" when one of the memberships lasts through last
// (YYYY-MM-DD), else the latest end date among them.
func membershipEnd(homes []storage.Member, last string) string {
	latest := ""
	for _, m := range homes {
		if m.ActiveOn(last) {
			return ""
		}
		latest = max(latest, m.Until)
	}
	return latest
}

// visitNotice tells the host's managers of a visit, in the host's
// language: who the visitor is (as verify would answer), their home
// spaces, the dates, the days used this month and how to decline. It
// reports whether the space has managers to tell.
func (x *executor) visitNotice(sp storage.Space, v storage.Visit, homes []storage.Member) (bool, error) {
	managers, err := x.tx.Managers(sp.ID)
	if err != nil || len(managers) == 0 {
		return false, err
	}
	code := x.spaceLanguage(sp)
	h := x.in(code)
	verdict, err := h.verifiedWords(v.Member, homes)
	if err != nil {
		return false, err
	}
	lines := []string{
		h.t("%s announces a visit to %s on %s (%d days).", v.Member, spaceLabel(sp), v.From, v.Days),
		"VERIFIED: " + verdict,
	}
	var homeIDs []string
	for _, m := range homes {
		homeIDs = append(homeIDs, m.Space)
	}
	lines = append(lines, h.t("Home space: %s.", strings.Join(homeIDs, ", ")))
	dates := v.Dates()
	lines = append(lines, h.t("Dates: %s to %s.", dates[0], dates[len(dates)-1]))
	for _, m := range monthsOf(dates) {
		used := x.tx.DaysUsed(sp.ID, v.Member, m)
		lines = append(lines, h.t("Days used at %s in %s, this visit included: %s.", sp.ID, m, h.usedOf(sp, used)))
	}
	if v.Note != "" {
		lines = append(lines, h.t("Their note: %s", v.Note))
	}
	lines = append(lines, h.t("To decline the visit, reply with the line: decline visit %s reason=\"...\"", showToken(v.Token)))
	n := Notice{Language: x.set().In(code).Code(), Subject: h.t("Visit announced: %s at %s on %s", v.Member, sp.ID, v.From), Lines: lines}
	for _, m := range managers {
		n.To = append(n.To, m.Email)
	}
	x.notices = append(x.notices, n)
	return true, nil
}

// usedOf is "2 of 3 free days", or the count alone where the space set no
// limit.
func (x *executor) usedOf(sp storage.Space, used int) string {
	if sp.FreeDays == nil || *sp.FreeDays == storage.FreeDaysUnlimited {
		return strconv.Itoa(used)
	}
	return x.t("%d of %s", used, x.t("%d free days", *sp.FreeDays))
}

// monthsOf lists the months ("2026-03") of dates, in order.
func monthsOf(dates []string) []string {
	var out []string
	for _, d := range dates {
		if m := d[:7]; !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// declineVisit lets a manager of the host decline an announced visit: its
// days no longer count, and the visitor is told in their language.
func (x *executor) declineVisit(c *Command) (Result, error) {
	managed, err := x.tx.ManagedSpaces(x.actor.Address)
	if err != nil {
		return Result{}, err
	}
	if len(managed) == 0 && !x.actor.Admin {
		return x.denied("decline visit is for the managers of the space visited."), nil
	}
	key := tokenKey(c.Target)
	v, found, err := x.tx.Visit(key)
	if err != nil {
		return Result{}, err
	}
	if !found || len(key) != tokenLen {
		return x.fail("no visit is waiting for an answer under %s: the token is mistyped, or the visit is over or was erased.", truncate(c.Target, 20)), nil
	}
	if !x.actor.Admin && !contains(managed, v.Space) {
		return x.denied("only the managers of %s may decline this visit.", v.Space), nil
	}
	if !v.Declined.IsZero() {
		return x.fail("the visit under %s was declined already, on %s.", showToken(key), v.Declined.UTC().Format(time.DateOnly)), nil
	}
	sp, _, err := x.tx.Space(v.Space)
	if err != nil {
		return Result{}, err
	}
	if sp.ID == "" {
		sp = storage.Space{ID: v.Space}
	}
	if v.Last() < x.dayAt(sp) {
		return x.fail("the visit under %s is over: its last day was %s.", showToken(key), v.Last()), nil
	}
	v.Declined, v.DeclinedBy, v.Reason = x.env.Now, x.actor.Address, c.Opts["reason"]
	if err := x.tx.PutVisit(v); err != nil {
		return Result{}, err
	}
	if err := x.tx.ReleaseVisitDays(v); err != nil {
		return Result{}, err
	}
	code, err := x.homeLanguage(v.Member)
	if err != nil {
		return Result{}, err
	}
	m := x.in(code)
	lines := []string{m.t("The managers of %s declined your visit on %s (%d days).", spaceLabel(sp), v.From, v.Days)}
	if v.Reason != "" {
		lines = append(lines, m.t("Their reason: %s", v.Reason))
	}
	lines = append(lines, m.t("Its days no longer count against your free days there."))
	x.notices = append(x.notices, Notice{To: []string{v.Member}, Language: x.set().In(code).Code(),
		Subject: m.t("Your visit to %s on %s was declined", sp.ID, v.From), Lines: lines})
	return x.ok("declined the visit of %s to %s on %s; they were told.", v.Member, sp.ID, v.From), nil
}

// confirmRoster records that a manager reviewed their space's roster
// today.
func (x *executor) confirmRoster(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	if err := x.tx.ConfirmRoster(sp.ID, x.actor.Address, x.env.Now); err != nil {
		return Result{}, err
	}
	n := x.tx.CountMembers(sp.ID)
	if x.env.RosterConfirmDays > 0 {
		return x.ok("the roster of %s (%d members) is confirmed as of %s; the digest reminds you again after %d days without a change.",
			sp.ID, n, x.dayAt(sp), x.env.RosterConfirmDays), nil
	}
	return x.ok("the roster of %s (%d members) is confirmed as of %s.", sp.ID, n, x.dayAt(sp)), nil
}

// staleSince says since when a space's roster was neither confirmed nor
// changed, when that is more than twice digest.roster_confirm_days ago.
func (x *executor) staleSince(sp storage.Space) (string, bool, error) {
	if x.env.RosterConfirmDays <= 0 {
		return "", false, nil
	}
	st, err := x.tx.RosterState(sp.ID)
	if err != nil {
		return "", false, err
	}
	fresh := st.Fresh(sp.Created)
	if fresh.IsZero() || x.env.Now.Sub(fresh) <= 2*time.Duration(x.env.RosterConfirmDays)*24*time.Hour {
		return "", false, nil
	}
	return fresh.In(x.zoneOf(sp)).Format(time.DateOnly), true, nil
}

// activeHomes lists the memberships of addr active today, by space id.
func (x *executor) activeHomes(addr string) ([]storage.Member, error) {
	all, err := x.tx.MembershipsOf(addr)
	if err != nil {
		return nil, err
	}
	var out []storage.Member
	for _, m := range all {
		if m.ActiveOn(x.today()) {
			out = append(out, m)
		}
	}
	return out, nil
}

func isHome(homes []storage.Member, space string) bool {
	return slices.ContainsFunc(homes, func(m storage.Member) bool { return m.Space == space })
}

// zoneOf is a space's time zone: its own, else the network's default.
func (x *executor) zoneOf(sp storage.Space) *time.Location {
	if sp.TZ != "" {
		if loc, ok := x.zones[sp.TZ]; ok {
			return loc
		}
		if loc, err := time.LoadLocation(sp.TZ); err == nil {
			if x.zones == nil {
				x.zones = map[string]*time.Location{}
			}
			x.zones[sp.TZ] = loc
			return loc
		}
	}
	if x.env.DefaultTZ != nil {
		return x.env.DefaultTZ
	}
	return time.UTC
}

// dayAt is today's date at a space, YYYY-MM-DD.
func (x *executor) dayAt(sp storage.Space) string {
	return x.env.Now.In(x.zoneOf(sp)).Format(time.DateOnly)
}

// The languages of others: a space's managers read theirs, a member the
// one of their home space.

func (x *executor) set() *templates.Set {
	if x.env.Templates != nil {
		return x.env.Templates
	}
	return templates.Embedded()
}

func (x *executor) networkLanguage() string {
	if x.env.Language != "" {
		return x.env.Language
	}
	return "en"
}

// spaceLanguage is the language of a space's managers.
func (x *executor) spaceLanguage(sp storage.Space) string {
	if sp.Language != "" {
		return sp.Language
	}
	return x.networkLanguage()
}

// homeLanguage is the language of a member: the one of the first of their
// spaces (active first) that chose one, else the network's.
func (x *executor) homeLanguage(addr string) (string, error) {
	all, err := x.tx.MembershipsOf(addr)
	if err != nil {
		return "", err
	}
	slices.SortStableFunc(all, func(a, b storage.Member) int {
		switch aa, ba := a.ActiveOn(x.today()), b.ActiveOn(x.today()); {
		case aa && !ba:
			return -1
		case ba && !aa:
			return 1
		}
		return strings.Compare(a.Space, b.Space)
	})
	for _, m := range all {
		sp, _, err := x.tx.Space(m.Space)
		if err != nil {
			return "", err
		}
		if sp.Language != "" {
			return sp.Language, nil
		}
	}
	return x.networkLanguage(), nil
}

// in is the executor writing in another language, for a notice to others
// than the sender. It shares the run's state: use it to render only.
func (x *executor) in(code string) *executor {
	y := *x
	y.p = x.set().In(code).Printer()
	return &y
}

// newVisitToken draws a token no visit uses yet, in its stored form.
func (x *executor) newVisitToken() (string, error) {
	for range 8 {
		b := make([]byte, tokenLen)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("draw a token: %w", err)
		}
		for i := range b {
			b[i] = tokenAlphabet[b[i]&31]
		}
		if _, taken, err := x.tx.Visit(string(b)); err != nil {
			return "", err
		} else if !taken {
			return string(b), nil
		}
	}
	return "", fmt.Errorf("draw a token: every draw was taken")
}
