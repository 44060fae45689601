package address

import (
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want "" = refused
		refusal        string
	}{
		{"ASCII", "Alice.Smith@Example.ORG", "alice.smith@example.org", ""},
		{"German", "MÜLLER@Straße.TEST", "müller@straße.test", ""},
		{"German decomposed", "MU\u0308LLER@x.test", "müller@x.test", ""},
		{"capital sharp s", "\u1e9eTRASSE@x.test", "ßtrasse@x.test", ""},
		{"Cyrillic", "ИВАН@ПРИМЕР.РФ", "иван@пример.рф", ""},
		{"Cyrillic look-alike stays apart", "a@indyh\u0430ll.test", "a@indyh\u0430ll.test", ""},
		{"Greek", "ΣΟΦΙΑ@x.test", "σοφια@x.test", ""},
		{"dotless i stays apart", "a@l\u0131nk.test", "a@l\u0131nk.test", ""},
		{"Kelvin sign in domain", "a@\u212aindyhall.test", "", "U+212A, which lowercases to ASCII"},
		{"Kelvin sign in local part", "\u212aate@x.test", "", "U+212A"},
		{"dotted capital I", "a@\u0130ndyhall.test", "", "U+0130, which lowercases to ASCII"},
		{"long s", "a@\u017fpace.test", "", "U+017F"},
		{"full-width letters", "a@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.test", "", "U+FF45, which is a compatibility form of ASCII"},
		{"full-width capital", "\uff21@x.test", "", "U+FF21"},
		{"ligature", "a@\ufb01le.test", "", "U+FB01"},
		{"one-dot leader", "a@example\u2024test", "", "U+2024"},
		{"ideographic full stop", "a@example\u3002test", "", "U+3002, which is read as a dot"},
		{"soft hyphen", "a@exam\u00adple.test", "", "U+00AD, which is an invisible format character"},
		{"zero-width joiner", "a@exam\u200dple.test", "", "U+200D"},
		{"bidi override", "a@\u202eexample.test", "", "U+202E"},
		{"variation selector", "a@exa\ufe0fmple.test", "", "U+FE0F"},
		{"no-break space", "a\u00a0b@x.test", "", "U+00A0"},
		{"not UTF-8", "a\xff@x.test", "", "not valid UTF-8"},
		{"A-label kept, lowercased", "a@XN--MLLER-KVA.test", "a@xn--mller-kva.test", ""},
		{"U-label kept", "a@MÜLLER.test", "a@müller.test", ""},
		{"bare domain", "Example.ORG", "example.org", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical(tc.in)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.refusal) {
					t.Fatalf("Canonical(%q) = %q, %v; want a refusal saying %q", tc.in, got, err, tc.refusal)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Canonical(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if again, err := Canonical(got); err != nil || again != got {
				t.Errorf("Canonical is not idempotent: %q -> %q, %v", got, again, err)
			}
		})
	}
}

// TestAlabelAndUlabelStayApart: the two spellings of one IDN are not
// converted into each other (see the package comment).
func TestAlabelAndUlabelStayApart(t *testing.T) {
	a, _ := Canonical("a@xn--mller-kva.test")
	u, _ := Canonical("a@müller.test")
	if a == u {
		t.Errorf("A-label and U-label made equal: %q", a)
	}
}

// TestNoDomainTurnsIntoAnother: no accepted non-ASCII character has ASCII
// in its canonical form, so no accepted domain can become an ASCII one.
func TestNoDomainTurnsIntoAnother(t *testing.T) {
	for r := rune(0x80); r <= 0x2ffff; r++ {
		s, err := Canonical(string(r))
		if err != nil {
			continue
		}
		if hasASCII(s) {
			t.Errorf("%U accepted with canonical form %q", r, s)
		}
	}
}
