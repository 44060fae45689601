package digest

import (
	"slices"
	"strconv"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// The visa exchange in the digests: each space's reciprocity (visitor days
// hosted against its members' days at other spaces) and the freshness of
// its roster.

// visaTally counts the used visa days by space and period: hosted[space]
// and sent[space], each by day ("2026-11-30"), month ("2026-11") and year
// ("2026") of the host's calendar.
type visaTally struct {
	hosted, sent map[string]map[string]int
}

// tallyVisa counts every used day once: for its host, and for each home
// space of its visitor (other than the host).
func tallyVisa(tx *storage.Tx) (*visaTally, error) {
	t := &visaTally{hosted: map[string]map[string]int{}, sent: map[string]map[string]int{}}
	add := func(m map[string]map[string]int, space, date string) {
		if len(date) < 7 {
			return
		}
		if m[space] == nil {
			m[space] = map[string]int{}
		}
		m[space][date]++ // for the weeks of the chart
		m[space][date[:7]]++
		m[space][date[:4]]++
	}
	err := tx.VisaDays(func(d storage.Day) bool {
		if slices.Contains(d.Homes, d.Host) {
			return true // a space's own member: no visit
		}
		add(t.hosted, d.Host, d.Date)
		for _, h := range d.Homes {
			add(t.sent, h, d.Date)
		}
		return true
	})
	return t, err
}

// of is a space's reciprocity in the month and year of when.
func (t *visaTally) of(space string, when time.Time) templates.Reciprocity {
	month, year := when.Format("2006-01"), when.Format("2006")
	return templates.Reciprocity{Month: month, Year: year,
		HostedMonth: t.hosted[space][month], SentMonth: t.sent[space][month],
		HostedYear: t.hosted[space][year], SentYear: t.sent[space][year]}
}

// rosterFreshness fills a space digest's reminder to confirm its roster.
func (s *Scheduler) rosterFreshness(tx *storage.Tx, sp storage.Space, now time.Time, data *templates.DigestData) error {
	data.RosterConfirmDays = s.set.RosterConfirmDays
	since, stale, err := s.staleSince(tx, sp, now, 1)
	if err != nil || !stale {
		return err
	}
	data.RosterStale, data.RosterFresh = true, longDate(s.languageOf(sp), since)
	_, data.RosterVeryStale, err = s.staleSince(tx, sp, now, 2)
	return err
}

// staleSince says since when a space's roster was neither confirmed nor
// changed, when that is more than times digest.roster_confirm_days ago.
func (s *Scheduler) staleSince(tx *storage.Tx, sp storage.Space, now time.Time, times int) (string, bool, error) {
	if s.set.RosterConfirmDays <= 0 {
		return "", false, nil
	}
	st, err := tx.RosterState(sp.ID)
	if err != nil {
		return "", false, err
	}
	fresh := st.Fresh(sp.Created)
	limit := time.Duration(times*s.set.RosterConfirmDays) * 24 * time.Hour
	if fresh.IsZero() || now.Sub(fresh) <= limit {
		return "", false, nil
	}
	return fresh.In(s.zone(sp)).Format(time.DateOnly), true, nil
}

// freeDays shows a space's free days for the record of a change.
func freeDays(l *templates.Lang, n *int) string {
	switch {
	case n == nil:
		return ""
	case *n == storage.FreeDaysUnlimited:
		return l.Sprintf("unlimited")
	}
	return strconv.Itoa(*n)
}
