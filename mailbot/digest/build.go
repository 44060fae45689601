package digest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/commands/csvroster"
	"github.com/coworkingvisa/mailbot/mailbot/outbox"
	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// EndingDays: a digest lists the memberships ending within this many days.
const EndingDays = 30

// maxNetworkLines bounds the changes and verifications the network digest
// lists one by one; the counts always cover them all.
const maxNetworkLines = 200

// Time layouts of the digests. They are message ids too: each language
// writes a date its own way (templates.Lang.FormatTime).
const (
	whenLayout  = "Mon 2 Jan 15:04"
	rangeLayout = "Mon 2 Jan 2006 15:04 MST"
	titleLayout = "2 Jan 2006"
	dateLayout  = "Mon 2 Jan 2006"
)

// chartWeeks is how many weeks a space digest's visits chart shows.
const chartWeeks = 8

// window is what one digest covers: changes and verifications with
// Start < At <= End, and the roster as of AsOf.
type window struct {
	Start, End time.Time
	AsOf       time.Time
	Loc        *time.Location
	Day        time.Time // the day the title names, in Loc: the slot's, or today's on request
	FileDate   string    // the date in the attachment's name
	OnRequest  bool
}

// title names a digest's period: "week of 30 Nov 2026", or on request
// "as of 2 Dec 2026".
func (w window) title(l *templates.Lang) string {
	day := l.FormatTime(w.Day, titleLayout)
	if w.OnRequest {
		return l.Sprintf("as of %s", day)
	}
	return l.Sprintf("week of %s", day)
}

// languageOf is the language of a space's managers: the space's own, else
// the network's.
func (s *Scheduler) languageOf(sp storage.Space) *templates.Lang {
	if sp.Language != "" {
		return s.tmpl.In(sp.Language)
	}
	return s.tmpl.In(s.set.Language)
}

// letter is one digest ready to render for each recipient.
type letter struct {
	Subject    string
	Text, HTML string
	Files      []reply.Attachment
	To         []string
}

// spaceDigest builds a space's digest for its managers; visa is the count
// of visa days (nil: counted here).
func (s *Scheduler) spaceDigest(tx *storage.Tx, sp storage.Space, w window, visa *visaTally) (letter, error) {
	if visa == nil {
		var err error
		if visa, err = tallyVisa(tx); err != nil {
			return letter{}, err
		}
	}
	managers, err := tx.Managers(sp.ID)
	if err != nil {
		return letter{}, err
	}
	members, err := tx.Members(sp.ID)
	if err != nil {
		return letter{}, err
	}
	labels, err := spaceLabels(tx)
	if err != nil {
		return letter{}, err
	}
	l := s.languageOf(sp)
	p := l.Printer()
	local := w.AsOf.In(w.Loc)
	y, m, d := local.Date()
	today := local.Format(dateKey)
	horizon := time.Date(y, m, d+EndingDays, 0, 0, 0, 0, time.UTC).Format(dateKey)

	data := templates.DigestData{
		BotName: s.set.BotName, BotAddress: s.set.BotAddress,
		SpaceID: sp.ID, SpaceName: nameOf(sp),
		Title: w.title(l), OnRequest: w.OnRequest,
		From: l.FormatTime(w.Start.Add(time.Nanosecond).In(w.Loc), rangeLayout), To: l.FormatTime(w.End.In(w.Loc), rangeLayout),
		TimeZone: w.Loc.String(), Today: l.FormatTime(local, dateLayout), EndingDays: EndingDays,
	}
	// Names sort as the managers' language sorts them (Élodie with the
	// E's), not by bytes; the attached file keeps the same order.
	order := newOrder(l)
	order.members(members)
	for _, mb := range members {
		dm := templates.DigestMember{Email: mb.Email, Name: mb.Name, Status: templates.StatusWord(p, mb.Status), State: mb.Status, Until: mb.Until}
		if mb.Until != "" {
			dm.Ends = longDate(l, mb.Until)
		}
		data.Counts.Total++
		switch {
		case mb.ActiveOn(today):
			data.Counts.Active++
			if mb.Until != "" && mb.Until <= horizon {
				data.Counts.EndingSoon++
				data.EndingSoon = append(data.EndingSoon, dm)
			}
		case mb.Status == storage.StatusActive:
			dm.Status, dm.State = templates.StatusWord(p, "expired"), "expired"
			data.Counts.Expired++
		default:
			data.Counts.Inactive++
		}
		data.Members = append(data.Members, dm)
	}
	// Soonest first; the same day by name, as the roster is.
	sort.SliceStable(data.EndingSoon, func(i, j int) bool { return data.EndingSoon[i].Until < data.EndingSoon[j].Until })

	err = changesIn(tx, w.Start, w.End, func(c storage.Change) {
		switch {
		case c.Space == sp.ID:
			data.Changes = append(data.Changes, describe(l, c, w.Loc, ""))
		case c.Kind == "member" && slices.Contains(c.ActiveElsewhere, sp.ID):
			// Another space added one of this space's active members.
			data.AddedElsewhere = append(data.AddedElsewhere, templates.DigestAdd{
				When: l.FormatTime(c.At.In(w.Loc), whenLayout), Member: addedAddress(c), Space: label(labels, c.Space), Actor: c.Actor,
			})
		}
	})
	if err != nil {
		return letter{}, err
	}
	roster := make(map[string]storage.Member, len(members))
	for _, mb := range members {
		roster[mb.Email] = mb
	}
	visitors, visiting := visitorLines{}, visitorLines{}
	var lookErr error
	err = verificationsIn(tx, w.Start, w.End, func(v storage.Verification) {
		// A visitor active in several spaces is a member of each of them:
		// each sees the visit.
		ours := slices.Contains(v.Homes(), sp.ID)
		switch {
		case v.HostSpace == sp.ID && ours:
			// A manager checking one of their own members: no visit.
		case v.HostSpace == sp.ID:
			dv := visit(l, v, w.Loc, labels)
			name := ""
			if v.Verified {
				data.HostedCount++
				// Their name as their home roster has it: the host read
				// it in the VERIFIED line already.
				if m, ok, err := tx.Member(v.Homes()[0], v.Visitor); err != nil {
					lookErr = err
				} else if ok {
					name = m.Name
				}
			} else {
				data.NotVerifiedCount++
			}
			visitors.add(v.Visitor, name, dv.Home, dv.When, v.Verified)
		case v.Verified && ours:
			data.SentCount++
			visiting.add(v.Visitor, roster[v.Visitor].Name, visit(l, v, w.Loc, labels).Host, l.FormatTime(v.At.In(w.Loc), whenLayout), true)
		case !v.Verified:
			// Turned away elsewhere: was the address a member here?
			ta, was, err := turnedAway(tx, l, sp.ID, roster, v, w.Loc, labels)
			if err != nil {
				lookErr = err
			} else if was {
				data.TurnedAway = append(data.TurnedAway, ta)
			}
		}
	})
	if err == nil {
		err = lookErr
	}
	if err != nil {
		return letter{}, err
	}
	data.Visitors, data.Visiting = visitors.sorted(order), visiting.sorted(order)
	// The chart's weeks are the digest's: a weekly one ends with the day
	// before its slot, one on request with today.
	last := w.End.In(w.Loc)
	if !w.OnRequest {
		last = last.AddDate(0, 0, -1)
	}
	data.Weeks, data.WeeksMost = visa.weeks(sp.ID, last, chartWeeks, l)

	data.Reciprocity = visa.of(sp.ID, local)
	if err := s.rosterFreshness(tx, sp, w.AsOf, &data); err != nil {
		return letter{}, err
	}

	// The roster in the managers' language's spreadsheet format, in the
	// digest's order.
	csv, err := csvroster.File(members, l.CSVDelimiter())
	if err != nil {
		return letter{}, err
	}
	data.Attachment = fmt.Sprintf("%s-roster-%s.csv", sp.ID, w.FileDate)
	text, html, err := l.Digest(data)
	if err != nil {
		return letter{}, err
	}
	out := letter{
		Subject: l.Sprintf("%s weekly digest: %s, %s", s.set.BotName, data.SpaceName, data.Title),
		Text:    text, HTML: html,
		Files: []reply.Attachment{{Name: data.Attachment, ContentType: "text/csv; charset=utf-8", Data: csv}},
	}
	for _, mg := range managers {
		if mg.Email != s.set.BotAddress {
			out.To = append(out.To, mg.Email)
		}
	}
	return out, nil
}

// networkDigest builds the admins' digest of the whole network; visa is
// the count of visa days (nil: counted here).
func (s *Scheduler) networkDigest(tx *storage.Tx, w window, visa *visaTally) (letter, error) {
	spaces, err := tx.Spaces()
	if err != nil {
		return letter{}, err
	}
	if visa == nil {
		if visa, err = tallyVisa(tx); err != nil {
			return letter{}, err
		}
	}
	labels, err := spaceLabels(tx)
	if err != nil {
		return letter{}, err
	}
	l := s.tmpl.In(s.set.Language)
	today := w.AsOf.In(w.Loc).Format(dateKey)
	data := templates.NetworkDigestData{
		BotName: s.set.BotName, BotAddress: s.set.BotAddress,
		Title: w.title(l), OnRequest: w.OnRequest,
		From: l.FormatTime(w.Start.Add(time.Nanosecond).In(w.Loc), rangeLayout), To: l.FormatTime(w.End.In(w.Loc), rangeLayout),
		TimeZone: w.Loc.String(),
	}
	index := map[string]int{}
	data.StaleDays = 2 * s.set.RosterConfirmDays
	data.Year = w.AsOf.In(w.Loc).Format("2006")
	for _, sp := range spaces {
		members, err := tx.Members(sp.ID)
		if err != nil {
			return letter{}, err
		}
		managers, err := tx.Managers(sp.ID)
		if err != nil {
			return letter{}, err
		}
		ns := templates.NetworkSpace{ID: sp.ID, Name: nameOf(sp), City: sp.City, Country: sp.Country,
			TimeZone: sp.TZ, Managers: len(managers), Members: len(members)}
		bal := visa.of(sp.ID, w.AsOf.In(w.Loc))
		ns.HostedYear, ns.SentYear, ns.Balance = bal.HostedYear, bal.SentYear, bal.HostedYear-bal.SentYear
		data.Year = bal.Year
		if since, stale, err := s.staleSince(tx, sp, w.AsOf, 2); err != nil {
			return letter{}, err
		} else if stale {
			data.Stale = append(data.Stale, templates.StaleRoster{ID: sp.ID, Name: nameOf(sp), Since: longDate(l, since)})
		}
		for _, m := range members {
			if m.ActiveOn(today) {
				ns.Active++
			}
		}
		data.TotalMembers += ns.Members
		data.TotalActive += ns.Active
		index[sp.ID] = len(data.Spaces)
		data.Spaces = append(data.Spaces, ns)
	}
	err = changesIn(tx, w.Start, w.End, func(c storage.Change) {
		data.ChangeCount++
		if i, ok := index[c.Space]; ok {
			data.Spaces[i].Changes++
		}
		if len(data.Changes) < maxNetworkLines {
			data.Changes = append(data.Changes, describe(l, c, w.Loc, c.Space))
		} else {
			data.ChangesOmitted++
		}
	})
	if err != nil {
		return letter{}, err
	}
	err = verificationsIn(tx, w.Start, w.End, func(v storage.Verification) {
		data.VerificationCount++
		if v.Verified {
			data.VerifiedCount++
		} else {
			data.NotVerifiedCount++
		}
		if v.Verified {
			homes := v.Homes()
			if i, ok := index[v.HostSpace]; ok && !slices.Contains(homes, v.HostSpace) {
				data.Spaces[i].Hosted++
			}
			for _, h := range homes {
				if i, ok := index[h]; ok && h != v.HostSpace {
					data.Spaces[i].Sent++
				}
			}
		}
		if len(data.Verifications) < maxNetworkLines {
			data.Verifications = append(data.Verifications, visit(l, v, w.Loc, labels))
		} else {
			data.VerificationsOmitted++
		}
	})
	if err != nil {
		return letter{}, err
	}
	// Spaces by name, as the admins' language sorts names.
	o := newOrder(l)
	sort.SliceStable(data.Spaces, func(i, j int) bool {
		return o.less(data.Spaces[i].Name, data.Spaces[i].ID, data.Spaces[j].Name, data.Spaces[j].ID)
	})
	sort.SliceStable(data.Stale, func(i, j int) bool {
		return o.less(data.Stale[i].Name, data.Stale[i].ID, data.Stale[j].Name, data.Stale[j].ID)
	})
	text, html, err := l.NetworkDigest(data)
	if err != nil {
		return letter{}, err
	}
	out := letter{Subject: l.Sprintf("%s weekly digest: the network, %s", s.set.BotName, data.Title), Text: text, HTML: html}
	for _, a := range s.set.Admins {
		if a != s.set.BotAddress {
			out.To = append(out.To, a)
		}
	}
	return out, nil
}

// enqueue renders the digest once per recipient (each gets a message of
// their own, with its own Message-ID) and puts them in the outbox.
func (s *Scheduler) enqueue(tx *storage.Tx, m letter, now time.Time) (int, error) {
	for _, to := range m.To {
		_, err := outbox.Add(tx, reply.Message{
			From: s.set.BotAddress, FromName: s.set.BotName, To: to,
			Subject: m.Subject, Text: m.Text, HTML: m.HTML, Attachments: m.Files,
			Date: now, AutoSubmitted: "auto-generated",
		}, outbox.KindDigest, 0)
		if err != nil {
			return 0, err
		}
	}
	return len(m.To), nil
}

// longDate writes a YYYY-MM-DD date as the reader's language does ("Thu 10
// Dec 2026"); a date that does not parse as it is.
func longDate(l *templates.Lang, date string) string {
	t, err := time.Parse(dateKey, date)
	if err != nil {
		return date
	}
	return l.FormatTime(t, dateLayout)
}

// spaceLabels names every space by its display name, for verifications.
func spaceLabels(tx *storage.Tx) (map[string]string, error) {
	spaces, err := tx.Spaces()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(spaces))
	for _, sp := range spaces {
		out[sp.ID] = nameOf(sp)
	}
	return out, nil
}

func nameOf(sp storage.Space) string {
	if sp.Name != "" {
		return sp.Name
	}
	return sp.ID
}

func label(labels map[string]string, id string) string {
	if l, ok := labels[id]; ok {
		return l
	}
	return id // a space removed since
}

// visit shows one verification.
func visit(l *templates.Lang, v storage.Verification, loc *time.Location, labels map[string]string) templates.DigestVisit {
	dv := templates.DigestVisit{When: l.FormatTime(v.At.In(loc), whenLayout), Visitor: v.Visitor, Verified: v.Verified}
	for i, h := range v.Homes() {
		if i == 0 {
			dv.Home = label(labels, h)
		} else {
			dv.Home = l.Sprintf("%s and %s", dv.Home, label(labels, h))
		}
	}
	if v.HostSpace != "" {
		dv.Host = label(labels, v.HostSpace)
	} else {
		// The host manages several spaces (or none: an admin).
		dv.Host = l.Sprintf("a space of %s", v.Host)
	}
	return dv
}

// addedAddress is the address a member change added: the member's, or
// for a rename the new one.
func addedAddress(c storage.Change) string {
	var after storage.Member
	if decode(c.After, &after) && after.Email != "" {
		return after.Email
	}
	return c.Key
}

// describe shows one audit record: what changed, in words, and how.
func describe(l *templates.Lang, c storage.Change, loc *time.Location, space string) templates.DigestChange {
	dc := templates.DigestChange{When: l.FormatTime(c.At.In(loc), whenLayout), Actor: c.Actor, Space: space}
	dc.Text = changeText(l, c)
	switch c.Kind {
	case "member":
		var before, after storage.Member
		hasBefore := decode(c.Before, &before)
		hasAfter := decode(c.After, &after)
		switch {
		case hasBefore && hasAfter:
			p := l.Printer()
			dc.Detail = diff(l,
				[]string{l.Sprintf("email"), before.Email, after.Email},
				[]string{l.Sprintf("name"), before.Name, after.Name},
				[]string{l.Sprintf("status"), templates.StatusWord(p, before.Status), templates.StatusWord(p, after.Status)},
				[]string{l.Sprintf("until"), before.Until, after.Until},
			)
		case hasAfter:
			dc.Detail = memberSummary(l, after)
		case hasBefore:
			dc.Detail = memberSummary(l, before)
		}
	case "space":
		var before, after storage.Space
		if decode(c.Before, &before) && decode(c.After, &after) {
			dc.Detail = diff(l,
				[]string{l.Sprintf("name"), before.Name, after.Name},
				[]string{l.Sprintf("city"), before.City, after.City},
				[]string{l.Sprintf("country"), before.Country, after.Country},
				[]string{l.Sprintf("tz"), before.TZ, after.TZ},
				[]string{l.Sprintf("terms"), before.Terms, after.Terms},
				[]string{l.Sprintf("language"), before.Language, after.Language},
				[]string{l.Sprintf("free days"), freeDays(l, before.FreeDays), freeDays(l, after.FreeDays)},
				[]string{l.Sprintf("notice days"), strconv.Itoa(before.NoticeDays), strconv.Itoa(after.NoticeDays)},
				[]string{l.Sprintf("opening hours"), before.Hours, after.Hours},
				[]string{l.Sprintf("directions"), before.Directions, after.Directions},
			)
		}
	}
	return dc
}

// changeText says what an audit record did: "added member a@b.example".
func changeText(l *templates.Lang, c storage.Change) string {
	switch c.Kind + " " + c.Action {
	case "member add":
		return l.Sprintf("added member %s", c.Key)
	case "member update":
		return l.Sprintf("updated member %s", c.Key)
	case "member remove":
		return l.Sprintf("removed member %s", c.Key)
	case "manager add":
		return l.Sprintf("added manager %s", c.Key)
	case "manager remove":
		return l.Sprintf("removed manager %s", c.Key)
	case "space add":
		return l.Sprintf("added space %s", c.Key)
	case "space update":
		return l.Sprintf("updated space %s", c.Key)
	case "space remove":
		return l.Sprintf("removed space %s", c.Key)
	case "member forget", "manager forget":
		return l.Sprintf("%s asked to be forgotten: their data was erased", c.Key)
	}
	return strings.TrimSpace(c.Action + " " + c.Kind + " " + c.Key)
}

// diff lists the fields that changed, each as {name, before, after}.
func diff(l *templates.Lang, fields ...[]string) string {
	out := ""
	for _, f := range fields {
		if f[1] == f[2] {
			continue
		}
		part := l.Sprintf("%s %s → %s", f[0], orNone(l, f[1]), orNone(l, f[2]))
		if out == "" {
			out = part
		} else {
			out = l.Sprintf("%s; %s", out, part)
		}
	}
	return out
}

func memberSummary(l *templates.Lang, m storage.Member) string {
	var parts []string
	if m.Name != "" {
		parts = append(parts, m.Name)
	}
	if m.Status != "" {
		parts = append(parts, templates.StatusWord(l.Printer(), m.Status))
	}
	if m.Until != "" {
		parts = append(parts, l.Sprintf("until %s", m.Until))
	}
	return strings.Join(parts, ", ")
}

func orNone(l *templates.Lang, s string) string {
	if s == "" {
		return l.Sprintf("(none)")
	}
	return s
}

// decode reads a record's before or after state; false when there is none.
func decode(raw json.RawMessage, v any) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}
