package trust

import (
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/coworkingvisa/mailbot/commands/address"
)

// ErrBadFrom is wrapped by FromAddress errors: the message has no single
// author whose address could be authenticated (RFC 5322 §3.6.2).
var ErrBadFrom = errors.New("unusable From")

// FromAddress returns the bare address of the message's author, in
// canonical form (address.Canonical: NFC, lowercase; an address some
// mapping would read as another is refused). Like mox, it accepts exactly one From field holding exactly one
// mailbox: with several, DMARC cannot say which one was verified (RFC 7489
// §6.6.1), and the display name never counts, since anyone can write
// `"mgr@indyhall.test" <mallory@evil.test>`.
//
// The local part must be a dot-atom: a quoted local part such as
// "mgr@indyhall.test"@evil.test is refused, so that the returned string has
// exactly one "@" and its domain is what follows it.
func FromAddress(h mail.Header) (string, error) {
	var values []string
	for f := h.FieldsByKey("From"); f.Next(); {
		values = append(values, f.Value())
	}
	if len(values) != 1 {
		return "", fmt.Errorf("%w: %d From fields", ErrBadFrom, len(values))
	}
	v := values[0]
	if hasControl(v) {
		return "", fmt.Errorf("%w: control character or invalid UTF-8 in From", ErrBadFrom)
	}
	if isGroup(v) {
		return "", fmt.Errorf("%w: group syntax in From", ErrBadFrom)
	}
	addrs, err := addressParser().ParseList(v)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadFrom, err)
	}
	if len(addrs) != 1 {
		return "", fmt.Errorf("%w: %d mailboxes in From", ErrBadFrom, len(addrs))
	}
	addr, err := checkAddrSpec(addrs[0].Address)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadFrom, err)
	}
	return addr, nil
}

// addressParser decodes RFC 2047 display names of any charset to something:
// the name is ignored, and an unknown charset must not make a From unusable.
func addressParser() *netmail.AddressParser {
	asIs := func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	return &netmail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: asIs}}
}

// checkAddrSpec checks a parsed addr-spec (RFC 5322 §3.4.1) and returns it
// in canonical form, which refuses what would let one domain turn into
// another (a Kelvin sign "K" folds to "k").
func checkAddrSpec(a string) (string, error) {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return "", fmt.Errorf("address %q has no domain", loggable(a, 80))
	}
	local, domain := a[:at], a[at+1:]
	switch {
	case strings.Contains(a, "=?"):
		return "", fmt.Errorf("address %q is an encoded word (RFC 2047 §5)", loggable(a, 80))
	case hasControl(a):
		return "", errors.New("control character in address")
	case !isDotAtom(local, 64, isAtext):
		return "", fmt.Errorf("local part %q is not a dot-atom", loggable(local, 80))
	case !isDotAtom(domain, 253, isLetDig):
		return "", fmt.Errorf("domain %q is not a host name", loggable(domain, 80))
	}
	c, err := address.Canonical(a)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", loggable(a, 80), err)
	}
	return c, nil
}

// isDotAtom reports whether s is a non-empty dot-atom (RFC 5322 §3.2.3) of at
// most max bytes whose atoms are made of bytes and runes ok accepts.
func isDotAtom(s string, max int, ok func(rune) bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if !ok(r) {
				return false
			}
		}
	}
	return true
}

// isAtext accepts atext (RFC 5322 §3.2.3) and, for RFC 6532, non-ASCII letters.
func isAtext(r rune) bool {
	return isLetDig(r) || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// isLetDig accepts what a host name label may hold: ASCII letters, digits and
// hyphens, and non-ASCII letters, marks and digits of IDN U-labels.
func isLetDig(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.N)
}

// hasControl reports control characters other than tab, and invalid UTF-8.
func hasControl(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r != '\t' && unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// isGroup reports a top-level ":" in an address list: group syntax (RFC 5322
// §3.4), which net/mail would flatten into its mailboxes.
func isGroup(v string) bool {
	v = stripComments(v)
	inQuote, inAngle, inLiteral := false, false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case inLiteral:
			inLiteral = c != ']'
		case c == '"':
			inQuote = true
		case c == '[':
			inLiteral = true
		case c == '<':
			inAngle = true
		case c == '>':
			inAngle = false
		case c == ':' && !inAngle:
			return true
		}
	}
	return false
}

// asciiLower lowercases ASCII letters only.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// equalFoldASCII compares case-insensitively, ASCII letters only.
func equalFoldASCII(a, b string) bool { return asciiLower(a) == asciiLower(b) }

// domainPart returns the domain of an address, of "@domain", or of a bare
// domain, in canonical form (address.Canonical), without a trailing dot: a
// domain from Authentication-Results or DKIM compares with the From domain
// exactly as FromAddress put it. It returns "" when there is no domain or
// it has no canonical form, which matches no From domain.
func domainPart(s string) string {
	s = s[strings.LastIndexByte(s, '@')+1:]
	return canonical(strings.TrimSuffix(s, "."))
}

// canonical is address.Canonical, with "" for what it refuses.
func canonical(s string) string {
	c, err := address.Canonical(s)
	if err != nil {
		return ""
	}
	return c
}

// loggable makes a string from a message safe and short for a log line.
func loggable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > max {
		for !utf8.RuneStart(s[max]) {
			max--
		}
		s = s[:max] + "…"
	}
	return s
}
