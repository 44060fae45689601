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

// A time zone that is not one gets the zones it may mean.
func TestTimeZoneSuggestions(t *testing.T) {
	for tz, want := range map[string]string{
		"Europe/Paris":     "",
		"UTC":              "",
		"Tokyo":            "did you mean tz=Asia/Tokyo?",
		"tokyo":            "did you mean tz=Asia/Tokyo?",
		"New York":         "did you mean tz=America/New_York?",
		"europe/paris":     "did you mean tz=Europe/Paris?",
		"Europe/Pari":      "did you mean tz=Europe/Paris?",
		"Asia/Tokio":       "did you mean tz=Asia/Tokyo?",
		"Buenos Aires":     "tz=America/Argentina/Buenos_Aires or tz=America/Buenos_Aires",
		"Mars/Olympus":     "use a name like Europe/Paris",
		"Springfield":      "use a name like Europe/Paris",
		"":                 "use a name like Europe/Paris",
		"../../etc/passwd": "use a name like Europe/Paris",
	} {
		err := TimeZone(tz)
		switch {
		case want == "" && err != nil:
			t.Errorf("TimeZone(%q) = %v", tz, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("TimeZone(%q) = %v, want %q", tz, err, want)
		}
	}
}

// A country is its two-letter ISO 3166 code; a name, in the catalogs'
// languages, or a three-letter code gets the code it means.
func TestCountry(t *testing.T) {
	for in, want := range map[string]string{
		"JP": "JP", "de": "DE", " Fr ": "FR", "": "",
		"Japan":          "ERROR:did you mean country=JP?",
		"japon":          "ERROR:did you mean country=JP?",
		"Deutschland":    "ERROR:did you mean country=DE?",
		"États-Unis":     "ERROR:did you mean country=US?",
		"Estados Unidos": "ERROR:did you mean country=US?",
		"United Kingdom": "ERROR:did you mean country=GB?",
		"USA":            "ERROR:did you mean country=US?",
		"XX":             "ERROR:such as DE, FR or US",
		"Atlantis":       "ERROR:such as DE, FR or US",
	} {
		got, err := Country(in)
		if w, isErr := strings.CutPrefix(want, "ERROR:"); isErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Country(%q) = %q, %v; want an error with %q", in, got, err, w)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("Country(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"Germany": "DE", "alemania": "DE", "de": "DE"} {
		if got, ok := CountryOf(in); !ok || got != want {
			t.Errorf("CountryOf(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := CountryOf("Atlantis"); ok {
		t.Error("CountryOf(Atlantis) is a country")
	}
}
