// Package address puts an email address in the one form the mailbot
// compares and stores addresses in, wherever it meets them: the sender a
// message is authenticated as (mailbot/trust), the addresses managers
// write in commands and roster files (commands/internal/norm) and the
// admins of the configuration (mailbot/config). With one form, the same
// person matches everywhere: MÜLLER@x.test as sender is müller@x.test, as
// on the roster.
//
// It lives beside the command language because the roster is where an
// address is an identity, and it imports nothing of the project, so that
// trust and config can use it without depending on the rest of commands.
//
// The form is NFC, then Unicode lowercase. Because the sender's domain is
// authenticated (DKIM, DMARC) as written, lowercasing must never turn one
// domain into another, so Canonical refuses what a standard mapping would
// read as something else: a non-ASCII character that lowercasing, Unicode
// compatibility normalization (NFKC) or case folding turns into ASCII (the
// Kelvin sign K, which folds to k; the dotted İ, whose lowercase is i;
// full-width letters; the long s ſ; ligatures such as ﬁ; the one-dot leader
// ․), characters IDNA deletes or ignores (soft hyphen, zero-width and
// bidirectional format characters, variation selectors), non-ASCII spaces,
// and the ideographic full stops IDNA reads as a dot between labels.
// Composed and decomposed spellings of one letter (ü and u with U+0308) are
// made equal by NFC, as IDNA does.
//
// Domains are kept as written, lowercased: an IDN's A-label
// (xn--mller-kva.test) and its U-label (müller.test) name the same DNS
// domain but are different canonical forms, never converted into each
// other. That can only make two spellings of one address miss each other,
// never make two domains equal; the receiving server's Authentication-
// Results and DKIM's d= are compared in the form they are written in.
package address

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/coworkingvisa/mailbot/templates"
)

// Canonical returns the canonical form of an address (local@domain) or of a
// bare domain: NFC, Unicode lowercase. Its error ("it contains U+212A,
// which lowercases to ASCII") names the character it refuses. It checks no syntax: callers
// apply their own (RFC 5322 for a From, the roster's rules for a command).
// Canonical(Canonical(s)) is Canonical(s).
func Canonical(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", templates.Errorf("it is not valid UTF-8")
	}
	for _, r := range s {
		if r < utf8.RuneSelf {
			continue
		}
		if why := ambiguous(r); !why.IsZero() {
			return "", templates.Errorf("it contains %U, which %s", r, why)
		}
	}
	// NFC again after lowercasing: the lowercase of a composed letter need
	// not be in composed form.
	return norm.NFC.String(strings.ToLower(norm.NFC.String(s))), nil
}

// ambiguous says why the non-ASCII rune r has no place in a canonical
// address, or nothing (the zero Message).
func ambiguous(r rune) templates.Message {
	switch {
	case hasASCII(strings.ToLower(string(r))):
		return templates.Msg("lowercases to ASCII")
	case hasASCII(norm.NFKC.String(string(r))):
		return templates.Msg("is a compatibility form of ASCII")
	case foldsToASCII(r):
		return templates.Msg("case-folds to ASCII")
	case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) || r == '\u034f':
		return templates.Msg("is an invisible format character")
	case unicode.IsSpace(r) || unicode.IsControl(r):
		return templates.Msg("is a space or control character")
	case r == '\u3002' || r == '\uff61':
		return templates.Msg("is read as a dot between domain labels")
	}
	return templates.Message{}
}

func hasASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			return true
		}
	}
	return false
}

// foldsToASCII reports whether r's case-folding orbit holds an ASCII
// letter (K, k and the Kelvin sign form one orbit).
func foldsToASCII(r rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return true
		}
	}
	return false
}
