package norm

import (
	"strings"
	"testing"
)

// TestAddress: roster addresses take the canonical form (the sender's
// form too: mailbot/trust), and refuse what would make one domain read as
// another.
func TestAddress(t *testing.T) {
	for _, tc := range []struct {
		in, want, refusal string // want "" = refused
	}{
		{"Alice@Example.ORG", "alice@example.org", ""},
		{"<mailto:Bob@Example.org>,", "bob@example.org", ""},
		{"MÜLLER@x.test", "müller@x.test", ""},
		{"MU\u0308LLER@x.test", "müller@x.test", ""},
		{"ИВАН@пример.рф", "иван@пример.рф", ""},
		{"a@XN--MLLER-KVA.test", "a@xn--mller-kva.test", ""},
		{"a@\u212aindyhall.test", "", "U+212A"},
		{"a@\u0130ndyhall.test", "", "U+0130"},
		{"a@\uff45xample.test", "", "U+FF45"},
		{"a@exam\u00adple.test", "", "U+00AD"},
		{"a@x", "", "needs a dot"},
		{"", "", "empty"},
	} {
		got, err := Address(tc.in)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), tc.refusal) || !strings.Contains(err.Error(), "is not a valid email address") {
				t.Errorf("Address(%q) = %q, %v; want a refusal saying %q", tc.in, got, err, tc.refusal)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Address(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
