package commands

import (
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/coworkingvisa/mailbot/commands/internal/norm"
	"github.com/coworkingvisa/mailbot/templates"
)

// The rules themselves live in package norm, shared with the CSV roster
// reader, so that a file and a command line accept exactly the same values.

// NormalizeAddress checks that s is a plain email address (local@domain) and
// returns it lowercased, so that addresses compare case-insensitively.
// Surrounding <>, "mailto:" and trailing punctuation are removed first.
func NormalizeAddress(s string) (string, error) { return norm.Address(s) }

// NormalizeSpaceID checks a space id (letters, digits, "-", "_") and returns
// it lowercased.
func NormalizeSpaceID(s string) (string, error) { return norm.SpaceID(s) }

// NormalizeDate checks a YYYY-MM-DD date and returns it; "", "none" and
// "never" clear an end date and return "".
func NormalizeDate(s string) (string, error) { return norm.Date(s) }

// checkTimeZone checks an IANA time zone name such as Europe/Paris.
func checkTimeZone(tz string) error { return norm.TimeZone(tz) }

// normalizeCountry checks a country= value: a space's must be a
// two-letter ISO 3166 code (a name gets the code it means as a
// suggestion); a search of the spaces also takes a country's name.
func normalizeCountry(command, v string) (string, error) {
	if command == "spaces" {
		if code, ok := norm.CountryOf(v); ok {
			return code, nil
		}
		return v, checkText("country", v)
	}
	return norm.Country(v)
}

// checkText refuses option values that could not be shown safely on one line.
func checkText(key, v string) error { return norm.Text(key+"=", v) }

// truncate shortens s for an error message.
func truncate(s string, n int) string { return norm.Truncate(s, n) }

// normalizeWeekday checks a day of the week ("monday", "Mon") and returns
// its full lowercase name; "" or "default" clears an override.
func normalizeWeekday(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" || v == "default" {
		return "", nil
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if v == name || v == name[:3] {
			return name, nil
		}
	}
	return "", templates.Errorf("%q is not a day of the week: write monday, tuesday, …", truncate(s, 20))
}

// normalizeClock checks a 24-hour time HH:MM; "" or "default" clears an
// override.
func normalizeClock(s string) (string, error) {
	v := strings.TrimSpace(s)
	if v == "" || strings.EqualFold(v, "default") {
		return "", nil
	}
	t, err := time.Parse("15:04", v)
	if err != nil {
		return "", templates.Errorf("%q is not a time of day: write HH:MM, e.g. 08:30", truncate(s, 20))
	}
	return t.Format("15:04"), nil
}

// normalizeLanguage checks the form of a language code ("fr", "pt-BR") and
// returns it lowercased as the catalogs name it; "" or "default" clears
// the space's choice. Whether the bot speaks it is checked when the
// command runs, against the catalogs it has.
func normalizeLanguage(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" || v == "default" {
		return "", nil
	}
	if len(v) > 12 || strings.ContainsAny(v, " _") {
		return "", templates.Errorf("%q is not a language code: write en, fr, de or es", truncate(s, 20))
	}
	if _, err := language.Parse(v); err != nil {
		return "", templates.Errorf("%q is not a language code: write en, fr, de or es", truncate(s, 20))
	}
	return v, nil
}

// Bounds of the visa exchange's numbers.
const (
	maxFreeDays   = 31  // free_days: a month has no more days
	maxNoticeDays = 365 // notice_days: visits are announced at most a year ahead
	maxVisitDays  = 31  // days= of one visit
)

// normalizeFreeDays checks free_days=: a number of days a month,
// "unlimited", or "default" (or "none") for a space that has not said.
func normalizeFreeDays(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "unlimited":
		return "unlimited", nil
	case "", "default", "none":
		return "", nil
	}
	return normalizeCount("free_days", v, 0, maxFreeDays)
}

// normalizeCount checks a whole number from lo to hi for option key.
func normalizeCount(key, s string, lo, hi int) (string, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < lo || n > hi {
		return "", templates.Errorf("%s= must be a whole number from %d to %d, not %q", key, lo, hi, truncate(s, 20))
	}
	return strconv.Itoa(n), nil
}
