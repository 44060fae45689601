package digest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
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

// Time layouts of the digests.
const (
	whenLayout  = "Mon 2 Jan 15:04"
	rangeLayout = "Mon 2 Jan 2006 15:04 MST"
	titleLayout = "2 Jan 2006"
)

// window is what one digest covers: changes and verifications with
// Start < At <= End, and the roster as of AsOf.
type window struct {
	Start, End time.Time
	AsOf       time.Time
	Loc        *time.Location
	Title      string // "week of 30 Nov 2026"
	FileDate   string // the date in the attachment's name
	OnRequest  bool
}

// letter is one digest ready to render for each recipient.
type letter struct {
	Subject    string
	Text, HTML string
	Files      []reply.Attachment
	To         []string
}

// spaceDigest builds a space's digest for its managers.
func (s *Scheduler) spaceDigest(tx *storage.Tx, sp storage.Space, w window) (letter, error) {
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
	local := w.AsOf.In(w.Loc)
	y, m, d := local.Date()
	today := local.Format(dateKey)
	horizon := time.Date(y, m, d+EndingDays, 0, 0, 0, 0, time.UTC).Format(dateKey)

	data := templates.DigestData{
		BotName: s.set.BotName, BotAddress: s.set.BotAddress,
		SpaceID: sp.ID, SpaceName: nameOf(sp),
		Title: w.Title, OnRequest: w.OnRequest,
		From: w.Start.Add(time.Nanosecond).In(w.Loc).Format(rangeLayout), To: w.End.In(w.Loc).Format(rangeLayout),
		TimeZone: w.Loc.String(), Today: today, EndingDays: EndingDays,
	}
	for _, mb := range members {
		dm := templates.DigestMember{Email: mb.Email, Name: mb.Name, Status: mb.Status, Until: mb.Until}
		data.Counts.Total++
		switch {
		case mb.ActiveOn(today):
			data.Counts.Active++
			if mb.Until != "" && mb.Until <= horizon {
				data.Counts.EndingSoon++
				data.EndingSoon = append(data.EndingSoon, dm)
			}
		case mb.Status == storage.StatusActive:
			dm.Status = "expired"
			data.Counts.Inactive++
			data.Counts.Expired++
		default:
			data.Counts.Inactive++
		}
		data.Members = append(data.Members, dm)
	}
	sort.SliceStable(data.EndingSoon, func(i, j int) bool { return data.EndingSoon[i].Until < data.EndingSoon[j].Until })

	err = changesIn(tx, w.Start, w.End, func(c storage.Change) {
		switch {
		case c.Space == sp.ID:
			data.Changes = append(data.Changes, describe(c, w.Loc, ""))
		case c.Kind == "member" && slices.Contains(c.ActiveElsewhere, sp.ID):
			// Another space added one of this space's active members.
			data.AddedElsewhere = append(data.AddedElsewhere, templates.DigestAdd{
				When: c.At.In(w.Loc).Format(whenLayout), Member: addedAddress(c), Space: label(labels, c.Space), Actor: c.Actor,
			})
		}
	})
	if err != nil {
		return letter{}, err
	}
	err = verificationsIn(tx, w.Start, w.End, func(v storage.Verification) {
		// A visitor active in several spaces is a member of each of them:
		// each sees the visit.
		ours := slices.Contains(v.Homes(), sp.ID)
		switch {
		case v.HostSpace == sp.ID && ours:
			// A manager checking one of their own members: no visit.
		case v.HostSpace == sp.ID:
			data.Hosted = append(data.Hosted, visit(v, w.Loc, labels))
			if v.Verified {
				data.HostedCount++
			} else {
				data.NotVerifiedCount++
			}
		case v.Verified && ours:
			data.Sent = append(data.Sent, visit(v, w.Loc, labels))
			data.SentCount++
		}
	})
	if err != nil {
		return letter{}, err
	}

	var csv bytes.Buffer
	if err := csvroster.Write(&csv, members); err != nil {
		return letter{}, err
	}
	data.Attachment = fmt.Sprintf("%s-roster-%s.csv", sp.ID, w.FileDate)
	text, html, err := s.tmpl.Digest(data)
	if err != nil {
		return letter{}, err
	}
	out := letter{
		Subject: fmt.Sprintf("%s weekly digest: %s, %s", s.set.BotName, data.SpaceName, w.Title),
		Text:    text, HTML: html,
		Files: []reply.Attachment{{Name: data.Attachment, ContentType: "text/csv; charset=utf-8", Data: csv.Bytes()}},
	}
	for _, mg := range managers {
		if mg.Email != s.set.BotAddress {
			out.To = append(out.To, mg.Email)
		}
	}
	return out, nil
}

// networkDigest builds the admins' digest of the whole network.
func (s *Scheduler) networkDigest(tx *storage.Tx, w window) (letter, error) {
	spaces, err := tx.Spaces()
	if err != nil {
		return letter{}, err
	}
	labels, err := spaceLabels(tx)
	if err != nil {
		return letter{}, err
	}
	today := w.AsOf.In(w.Loc).Format(dateKey)
	data := templates.NetworkDigestData{
		BotName: s.set.BotName, BotAddress: s.set.BotAddress,
		Title: w.Title, OnRequest: w.OnRequest,
		From: w.Start.Add(time.Nanosecond).In(w.Loc).Format(rangeLayout), To: w.End.In(w.Loc).Format(rangeLayout),
		TimeZone: w.Loc.String(),
	}
	index := map[string]int{}
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
			data.Changes = append(data.Changes, describe(c, w.Loc, c.Space))
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
			data.Verifications = append(data.Verifications, visit(v, w.Loc, labels))
		} else {
			data.VerificationsOmitted++
		}
	})
	if err != nil {
		return letter{}, err
	}
	text, html, err := s.tmpl.NetworkDigest(data)
	if err != nil {
		return letter{}, err
	}
	out := letter{Subject: fmt.Sprintf("%s weekly digest: the network, %s", s.set.BotName, w.Title), Text: text, HTML: html}
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
func visit(v storage.Verification, loc *time.Location, labels map[string]string) templates.DigestVisit {
	dv := templates.DigestVisit{When: v.At.In(loc).Format(whenLayout), Visitor: v.Visitor, Verified: v.Verified}
	var homes []string
	for _, h := range v.Homes() {
		homes = append(homes, label(labels, h))
	}
	dv.Home = strings.Join(homes, " and ")
	if v.HostSpace != "" {
		dv.Host = label(labels, v.HostSpace)
	} else {
		// The host manages several spaces (or none: an admin).
		dv.Host = "a space of " + v.Host
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
func describe(c storage.Change, loc *time.Location, space string) templates.DigestChange {
	dc := templates.DigestChange{When: c.At.In(loc).Format(whenLayout), Actor: c.Actor, Space: space}
	verb := map[string]string{"add": "added", "update": "updated", "remove": "removed"}[c.Action]
	if verb == "" {
		verb = c.Action
	}
	switch c.Kind {
	case "member":
		dc.Text = verb + " member " + c.Key
		var before, after storage.Member
		hasBefore := decode(c.Before, &before)
		hasAfter := decode(c.After, &after)
		switch {
		case hasBefore && hasAfter:
			dc.Detail = diff(
				[]string{"email", before.Email, after.Email},
				[]string{"name", before.Name, after.Name},
				[]string{"status", before.Status, after.Status},
				[]string{"until", before.Until, after.Until},
			)
		case hasAfter:
			dc.Detail = memberSummary(after)
		case hasBefore:
			dc.Detail = memberSummary(before)
		}
	case "manager":
		dc.Text = verb + " manager " + c.Key
	case "space":
		dc.Text = verb + " space " + c.Key
		var before, after storage.Space
		if decode(c.Before, &before) && decode(c.After, &after) {
			dc.Detail = diff(
				[]string{"name", before.Name, after.Name},
				[]string{"city", before.City, after.City},
				[]string{"country", before.Country, after.Country},
				[]string{"tz", before.TZ, after.TZ},
				[]string{"terms", before.Terms, after.Terms},
			)
		}
	default:
		dc.Text = strings.TrimSpace(verb + " " + c.Kind + " " + c.Key)
	}
	return dc
}

// diff lists the fields that changed, each as {name, before, after}.
func diff(fields ...[]string) string {
	var parts []string
	for _, f := range fields {
		if f[1] != f[2] {
			parts = append(parts, fmt.Sprintf("%s %s → %s", f[0], orNone(f[1]), orNone(f[2])))
		}
	}
	return strings.Join(parts, "; ")
}

func memberSummary(m storage.Member) string {
	var parts []string
	if m.Name != "" {
		parts = append(parts, m.Name)
	}
	if m.Status != "" {
		parts = append(parts, m.Status)
	}
	if m.Until != "" {
		parts = append(parts, "until "+m.Until)
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
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
