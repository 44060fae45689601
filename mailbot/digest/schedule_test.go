package digest

import (
	"testing"
	"time"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCurrentPeriod: the period in force at an instant is the most recent
// slot at or before it, in the zone given; its key is the slot's local date.
func TestCurrentPeriod(t *testing.T) {
	monday8 := schedule{weekday: time.Monday, hour: 8}
	sunday0230 := schedule{weekday: time.Sunday, hour: 2, minute: 30}
	sunday0130 := schedule{weekday: time.Sunday, hour: 1, minute: 30}
	tests := []struct {
		name    string
		sch     schedule
		zone    string
		now     string // UTC
		wantDue string // UTC
		wantKey string
	}{
		// Europe/Paris: CET (+1) in winter.
		{"Paris just before", monday8, "Europe/Paris", "2026-11-30T06:59:59Z", "2026-11-23T07:00:00Z", "2026-11-23"},
		{"Paris at the instant", monday8, "Europe/Paris", "2026-11-30T07:00:00Z", "2026-11-30T07:00:00Z", "2026-11-30"},
		{"Paris days later", monday8, "Europe/Paris", "2026-12-03T12:00:00Z", "2026-11-30T07:00:00Z", "2026-11-30"},
		{"Paris summer (CEST)", monday8, "Europe/Paris", "2026-07-06T06:00:00Z", "2026-07-06T06:00:00Z", "2026-07-06"},
		// America/New_York: EST (-5); it is still Sunday there at Monday 08:00 UTC.
		{"New York", monday8, "America/New_York", "2026-11-30T12:59:00Z", "2026-11-23T13:00:00Z", "2026-11-23"},
		{"New York at the instant", monday8, "America/New_York", "2026-11-30T13:00:00Z", "2026-11-30T13:00:00Z", "2026-11-30"},
		// Asia/Kolkata: +5:30, a half-hour zone; Monday there while Sunday in UTC.
		{"Kolkata", monday8, "Asia/Kolkata", "2026-11-30T02:30:00Z", "2026-11-30T02:30:00Z", "2026-11-30"},
		{"Kolkata just before", monday8, "Asia/Kolkata", "2026-11-30T02:29:59Z", "2026-11-23T02:30:00Z", "2026-11-23"},
		// Pacific/Auckland: NZDT (+13): Monday 08:00 is Sunday 19:00 UTC.
		{"Auckland", monday8, "Pacific/Auckland", "2026-11-29T19:00:00Z", "2026-11-29T19:00:00Z", "2026-11-30"},
		{"Auckland just before", monday8, "Pacific/Auckland", "2026-11-29T18:59:59Z", "2026-11-22T19:00:00Z", "2026-11-23"},
		{"Auckland winter (NZST +12)", monday8, "Pacific/Auckland", "2026-07-05T20:00:00Z", "2026-07-05T20:00:00Z", "2026-07-06"},

		// Spring forward: 02:30 does not exist; the slot is the first
		// instant after the gap (03:00 new time).
		{"Paris gap", sunday0230, "Europe/Paris", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29"},
		{"Paris gap, before", sunday0230, "Europe/Paris", "2026-03-29T00:59:59Z", "2026-03-22T01:30:00Z", "2026-03-22"},
		{"New York gap", sunday0230, "America/New_York", "2026-03-08T07:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08"},
		{"New York gap, before", sunday0230, "America/New_York", "2026-03-08T06:59:59Z", "2026-03-01T07:30:00Z", "2026-03-01"},
		{"Auckland gap", sunday0230, "Pacific/Auckland", "2026-09-26T14:00:00Z", "2026-09-26T14:00:00Z", "2026-09-27"},
		{"Auckland gap, before", sunday0230, "Pacific/Auckland", "2026-09-26T13:59:59Z", "2026-09-19T14:30:00Z", "2026-09-20"},

		// Fall back: 02:30 (Paris, Auckland) and 01:30 (New York) happen
		// twice; the slot is the first, and the second is the same period.
		{"Paris repeat, first", sunday0230, "Europe/Paris", "2026-10-25T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25"},
		{"Paris repeat, second", sunday0230, "Europe/Paris", "2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25"},
		{"Paris repeat, before", sunday0230, "Europe/Paris", "2026-10-25T00:29:59Z", "2026-10-18T00:30:00Z", "2026-10-18"},
		{"New York repeat, first", sunday0130, "America/New_York", "2026-11-01T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01"},
		{"New York repeat, second", sunday0130, "America/New_York", "2026-11-01T06:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01"},
		{"Auckland repeat, first", sunday0230, "Pacific/Auckland", "2026-04-04T13:30:00Z", "2026-04-04T13:30:00Z", "2026-04-05"},
		{"Auckland repeat, second", sunday0230, "Pacific/Auckland", "2026-04-04T14:30:00Z", "2026-04-04T13:30:00Z", "2026-04-05"},

		// Seconds, for tests that set a digest a few seconds ahead.
		{"seconds", schedule{weekday: time.Monday, hour: 8, second: 30}, "UTC", "2026-11-30T08:00:29Z", "2026-11-23T08:00:30Z", "2026-11-23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := zone(t, tt.zone)
			due, key := tt.sch.current(utc(tt.now), loc)
			if !due.Equal(utc(tt.wantDue)) || key != tt.wantKey {
				t.Errorf("current(%s) = %s %q, want %s %q", tt.now, due.UTC().Format(time.RFC3339), key, tt.wantDue, tt.wantKey)
			}
			if due.Location() != loc {
				t.Errorf("due instant in %v, want %v", due.Location(), loc)
			}
		})
	}
}

// TestNextAndPrevious walks a year of slots in every test zone: each next
// slot is current at its instant, not before, and previous undoes next.
func TestNextAndPrevious(t *testing.T) {
	for _, name := range []string{"Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Auckland", "UTC"} {
		for _, sch := range []schedule{
			{weekday: time.Monday, hour: 8},
			{weekday: time.Sunday, hour: 2, minute: 30},
			{weekday: time.Sunday, hour: 1, minute: 30},
		} {
			loc := zone(t, name)
			now := utc("2026-01-01T00:00:00Z")
			prev, _ := sch.current(now, loc)
			keys := map[string]bool{}
			for range 53 {
				next := sch.next(now, loc)
				if !next.After(now) {
					t.Fatalf("%s %+v: next(%v) = %v, not after", name, sch, now, next)
				}
				if d := next.Sub(prev); d < 6*24*time.Hour || d > 8*24*time.Hour {
					t.Errorf("%s %+v: slots %v and %v are %v apart", name, sch, prev, next, d)
				}
				if p := sch.previous(next, loc); !p.Equal(prev) {
					t.Errorf("%s %+v: previous(%v) = %v, want %v", name, sch, next, p, prev)
				}
				due, key := sch.current(next, loc)
				if !due.Equal(next) {
					t.Errorf("%s %+v: current(%v) = %v", name, sch, next, due)
				}
				if d, _ := sch.current(next.Add(-time.Second), loc); !d.Equal(prev) {
					t.Errorf("%s %+v: a second before %v the period is %v, want %v", name, sch, next, d, prev)
				}
				if at, ok := sch.dueOf(key, loc); !ok || !at.Equal(next) {
					t.Errorf("%s %+v: dueOf(%q) = %v, want %v", name, sch, key, at, next)
				}
				if keys[key] {
					t.Errorf("%s %+v: key %s twice", name, sch, key)
				}
				keys[key] = true
				prev, now = next, next
			}
		}
	}
}

// TestWallTimeSkippedDay: Samoa skipped 30 Dec 2011; a slot on that day
// falls at the first instant after the gap, and no period is lost.
func TestWallTimeSkippedDay(t *testing.T) {
	loc := zone(t, "Pacific/Apia")
	got := wallTime(2011, time.December, 30, 8, 0, 0, loc)
	if want := utc("2011-12-30T10:00:00Z"); !got.Equal(want) {
		t.Errorf("wallTime(30 Dec 2011 08:00 Apia) = %v, want %v (midnight of the 31st)", got.UTC(), want)
	}
}
