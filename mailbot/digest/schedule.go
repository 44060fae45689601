package digest

import (
	"time"
)

// schedule is the weekly slot: a weekday and a local wall-clock time, read
// in whichever zone a space (or the network) keeps.
type schedule struct {
	weekday              time.Weekday
	hour, minute, second int
}

// dateKey is the layout of period keys: the local date of a slot.
const dateKey = "2006-01-02"

// current returns the period in force at now in loc: the most recent slot
// at or before now, and its key (the slot's local date, "2026-11-30").
func (s schedule) current(now time.Time, loc *time.Location) (time.Time, string) {
	local := now.In(loc)
	y, m, d := local.Date()
	var best time.Time
	var key string
	// A slot's instant can fall on the next local day (a gap of a whole
	// day, as Samoa skipped in 2011), so look one day ahead too; eight
	// days back always holds a slot.
	for k := 1; k >= -8; k-- {
		day := time.Date(y, m, d+k, 0, 0, 0, 0, time.UTC)
		if day.Weekday() != s.weekday {
			continue
		}
		due := s.on(day, loc)
		if !due.After(now) && (best.IsZero() || due.After(best)) {
			best, key = due, day.Format(dateKey)
		}
	}
	return best, key
}

// previous returns the slot before the one at due (a week earlier, give or
// take a daylight-saving change).
func (s schedule) previous(due time.Time, loc *time.Location) time.Time {
	t, _ := s.current(due.Add(-time.Nanosecond), loc)
	return t
}

// next returns the first slot strictly after now in loc.
func (s schedule) next(now time.Time, loc *time.Location) time.Time {
	local := now.In(loc)
	y, m, d := local.Date()
	var best time.Time
	for k := -1; k <= 8; k++ {
		day := time.Date(y, m, d+k, 0, 0, 0, 0, time.UTC)
		if day.Weekday() != s.weekday {
			continue
		}
		due := s.on(day, loc)
		if due.After(now) && (best.IsZero() || due.Before(best)) {
			best = due
		}
	}
	return best
}

// dueOf returns the instant of the slot whose key is key, or false when the
// key is not a date.
func (s schedule) dueOf(key string, loc *time.Location) (time.Time, bool) {
	day, err := time.Parse(dateKey, key)
	if err != nil {
		return time.Time{}, false
	}
	return s.on(day, loc), true
}

// on returns the instant of the slot on a local date (given as midnight UTC
// of that date).
func (s schedule) on(day time.Time, loc *time.Location) time.Time {
	y, m, d := day.Date()
	return wallTime(y, m, d, s.hour, s.minute, s.second, loc)
}

// wallTime resolves a local wall-clock time to an instant, deciding what
// time.Date leaves open at daylight-saving changes: a time that happens
// twice (clocks turned back) is its first occurrence; a time that does not
// happen (clocks turned forward) is the first instant after the gap, the
// moment of the change.
func wallTime(y int, mo time.Month, d, h, mi, sec int, loc *time.Location) time.Time {
	wall := time.Date(y, mo, d, h, mi, sec, 0, time.UTC).Unix()
	// Walk the zone periods around the wall time, in order. No offset is
	// more than a day, so two days each side hold every candidate.
	t := time.Unix(wall-2*86400, 0).In(loc)
	limit := wall + 2*86400
	var gap time.Time
	prevOff, havePrev := 0, false
	for {
		_, off := t.Zone()
		start, end := t.ZoneBounds()
		cand := time.Unix(wall-int64(off), 0)
		if (start.IsZero() || !cand.Before(start)) && (end.IsZero() || cand.Before(end)) {
			return cand.In(loc) // the first period holding it: the first occurrence
		}
		if havePrev && !start.IsZero() && start.Unix()+int64(prevOff) <= wall && wall < start.Unix()+int64(off) {
			gap = start // clocks jumped over the wall time at start
		}
		if end.IsZero() || end.Unix() > limit {
			break
		}
		prevOff, havePrev = off, true
		t = end.In(loc)
	}
	if !gap.IsZero() {
		return gap.In(loc)
	}
	return time.Date(y, mo, d, h, mi, sec, 0, loc) // not reached with real zone data
}
