package digest

import (
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/text/collate"
	"golang.org/x/text/language"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// People in a space digest: names in the order the reader's language
// sorts them, one line per visitor, and former members turned away at
// other spaces.

// order sorts names as a language does: "Élodie" with the E's, "Zoë"
// after "Zoe", case aside first. A collator keeps buffers: one per digest.
type order struct{ c *collate.Collator }

func newOrder(l *templates.Lang) order {
	return order{collate.New(language.Make(l.Code()), collate.IgnoreCase)}
}

// less orders two people by name, those without one by address after them.
func (o order) less(nameA, emailA, nameB, emailB string) bool {
	switch {
	case nameA == "" && nameB != "":
		return false
	case nameA != "" && nameB == "":
		return true
	}
	if c := o.c.CompareString(nameA, nameB); c != 0 {
		return c < 0
	}
	return o.c.CompareString(emailA, emailB) < 0
}

// members sorts a roster by name.
func (o order) members(ms []storage.Member) {
	sort.SliceStable(ms, func(i, j int) bool { return o.less(ms[i].Name, ms[i].Email, ms[j].Name, ms[j].Email) })
}

// visitorLines gathers a period's checks into one line per person.
type visitorLines map[string]*visitorLine

type visitorLine struct {
	templates.DigestVisitor
	wheres []string
}

// add counts one check of visitor at when (local time, the records come in
// time order): where is their home space, or for a member visiting
// elsewhere the host; each verified check adds its place.
func (v visitorLines) add(visitor, name, where, when string, verified bool) {
	line, ok := v[visitor]
	if !ok {
		line = &visitorLine{DigestVisitor: templates.DigestVisitor{Visitor: visitor}}
		v[visitor] = line
	}
	line.Visits++
	line.Last = when
	if name != "" {
		line.Name = name
	}
	if verified {
		line.Verified = true
		if where != "" && !slices.Contains(line.wheres, where) {
			line.wheres = append(line.wheres, where)
			line.Where = strings.Join(line.wheres, ", ")
		}
	}
}

// sorted is the lines by name, then address.
func (v visitorLines) sorted(o order) []templates.DigestVisitor {
	out := make([]templates.DigestVisitor, 0, len(v))
	for _, l := range v {
		out = append(out, l.DigestVisitor)
	}
	sort.Slice(out, func(i, j int) bool { return o.less(out[i].Name, out[i].Visitor, out[j].Name, out[j].Visitor) })
	return out
}

// turnedAway tells whether a check elsewhere that found no membership was
// of an address that was a member of space: still on its roster (inactive,
// or past its end date), or removed from it (its audit trail has it).
func turnedAway(tx *storage.Tx, l *templates.Lang, space string, roster map[string]storage.Member, v storage.Verification,
	loc *time.Location, labels map[string]string) (templates.DigestTurnedAway, bool, error) {
	ta := templates.DigestTurnedAway{
		When: l.FormatTime(v.At.In(loc), whenLayout), Visitor: v.Visitor, Host: visit(l, v, loc, labels).Host,
	}
	if m, ok := roster[v.Visitor]; ok {
		ta.Name = m.Name
		status := m.Status
		if status == storage.StatusActive {
			status = "expired" // not active on the day it was checked
		}
		ta.Status = templates.StatusWord(l.Printer(), status)
		return ta, true, nil
	}
	history, err := tx.History(space, v.Visitor)
	if err != nil || len(history) == 0 {
		return ta, false, err
	}
	return ta, true, nil
}

// weekLayout names a week of the chart by its first day (a message id).
const weekLayout = "2 Jan"

// weeks is a space's visitor days hosted and sent in each of the n weeks
// whose last ends on the date of lastDay (in the space's zone), the oldest
// first, and the largest of their numbers.
func (t *visaTally) weeks(space string, lastDay time.Time, n int, l *templates.Lang) ([]templates.WeekBar, int) {
	y, m, d := lastDay.Date()
	last := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	first := last.AddDate(0, 0, -7*n+1)
	out := make([]templates.WeekBar, n)
	most := 0
	for i := range out {
		start := first.AddDate(0, 0, 7*i)
		out[i].Week = l.FormatTime(start, weekLayout)
		for j := range 7 {
			day := start.AddDate(0, 0, j).Format(dateKey)
			out[i].Hosted += t.hosted[space][day]
			out[i].Sent += t.sent[space][day]
		}
		most = max(most, out[i].Hosted, out[i].Sent)
	}
	return out, most
}
