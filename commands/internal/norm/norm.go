// Package norm holds the rules every value a manager writes must meet, in
// a command line or in a roster file: addresses, dates, statuses, space ids
// and free text. It sits apart from package commands so that the CSV reader
// applies exactly the rules the command parser does.
package norm

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coworkingvisa/mailbot/commands/address"
	"github.com/coworkingvisa/mailbot/templates"
)

// Limits on values, so that nothing a sender writes can bloat the store or
// break a reply's layout.
const (
	maxAddressLen = 254 // RFC 5321 §4.5.3.1.3, path minus the brackets
	maxLocalLen   = 64  // RFC 5321 §4.5.3.1.1
	maxSpaceIDLen = 40
	// MaxTextLen is the longest name, city or terms a value may have.
	MaxTextLen = 200
)

// Member statuses, as stored and as written in commands and files.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Address checks that s is a plain email address (local@domain) and
// returns it in canonical form (address.Canonical: NFC, lowercase), the
// form the authenticated sender has too.
// Surrounding <>, "mailto:" and trailing punctuation are removed first.
func Address(s string) (string, error) {
	a := strings.TrimSpace(s)
	a = strings.TrimRight(a, ".,;:!?)")
	a = strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">"), "(")
	if len(a) >= 7 && strings.EqualFold(a[:7], "mailto:") {
		a = a[7:]
	}
	bad := func(why error) (string, error) {
		return "", templates.Errorf("%q is not a valid email address: %s", Truncate(s, 80), why)
	}
	if !utf8.ValidString(a) {
		return bad(templates.Errorf("it is not valid text"))
	}
	a, err := address.Canonical(a)
	if err != nil {
		return bad(err)
	}
	if a == "" {
		return bad(templates.Errorf("it is empty"))
	}
	if len(a) > maxAddressLen {
		return bad(templates.Errorf("it is too long"))
	}
	at := strings.LastIndexByte(a, '@')
	if at < 0 || strings.Count(a, "@") != 1 {
		return bad(templates.Errorf("it needs exactly one @"))
	}
	local, domain := a[:at], a[at+1:]
	if local == "" || len(local) > maxLocalLen {
		return bad(templates.Errorf("the part before @ is empty or too long"))
	}
	for _, r := range local {
		if unicode.IsSpace(r) || unsafeRune(r) || strings.ContainsRune(`"(),:;<>[\]`, r) {
			return bad(templates.Errorf("it contains %q", r))
		}
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return bad(templates.Errorf("misplaced dot"))
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return bad(templates.Errorf("the domain needs a dot"))
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return bad(templates.Errorf("the domain is malformed"))
		}
		for _, r := range l {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && unicode.IsLetter(r)) {
				return bad(templates.Errorf("the domain contains %q", r))
			}
		}
	}
	return a, nil
}

// SpaceID checks a space id (letters, digits, "-", "_") and returns it
// lowercased.
func SpaceID(s string) (string, error) {
	id := strings.ToLower(strings.TrimRight(strings.TrimSpace(s), ".,;:"))
	if id == "" || len(id) > maxSpaceIDLen {
		return "", templates.Errorf("a space id has 1 to %d characters", maxSpaceIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", templates.Errorf("%q is not a valid space id: use letters, digits, - and _", Truncate(s, 60))
		}
	}
	return id, nil
}

// Date checks a YYYY-MM-DD date and returns it; "", "none" and "never"
// clear an end date and return "".
func Date(s string) (string, error) {
	v := strings.TrimSpace(s)
	switch strings.ToLower(v) {
	case "", "none", "never", "-":
		return "", nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return "", templates.Errorf("%q is not a valid date: write YYYY-MM-DD, e.g. 2027-03-31", Truncate(s, 40))
	}
	if t.Year() < 2000 || t.Year() > 2199 {
		return "", templates.Errorf("%q is out of range", v)
	}
	return t.Format("2006-01-02"), nil
}

// Status checks a membership status, in any case, and returns it lowercased.
func Status(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v != StatusActive && v != StatusInactive {
		return "", templates.Errorf("status must be active or inactive, not %q", Truncate(v, 40))
	}
	return v, nil
}

// Text refuses values that could not be shown safely on one line; key
// names the value in the error: "name=", or a templates.Message ("the
// name") rendered in the reader's language.
func Text(key any, v string) error {
	if utf8.RuneCountInString(v) > MaxTextLen {
		return templates.Errorf("%s is longer than %d characters", key, MaxTextLen)
	}
	if !utf8.ValidString(v) {
		return templates.Errorf("%s is not valid text", key)
	}
	for _, r := range v {
		// Zero-width (non-)joiners belong to how Persian, Indic scripts
		// and emoji are written: allowed in names, not in addresses.
		if unsafeRune(r) && r != utf8.RuneError && r != '\u200c' && r != '\u200d' {
			return templates.Errorf("%s contains a control character", key)
		}
	}
	return nil
}

// unsafeRune tells characters that must not reach a roster: control
// characters, line and paragraph separators, invisible format characters
// (bidirectional overrides such as U+202E, which make "gnp.exe" read as
// "exe.png", and zero-width characters), and U+FFFD, the mark of bytes that
// were not text.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

// Truncate shortens s for an error message.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
