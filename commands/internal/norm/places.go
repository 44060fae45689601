package norm

import (
	_ "embed"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"

	"github.com/coworkingvisa/mailbot/templates"
)

//go:generate go run genplaces.go

// zoneNames are the time zones of Go's own database (time/tzdata), by
// area: what TimeZone suggests for a name that is not one.
//
//go:embed zones.txt
var zoneNames string

// countryTable is each country's code and names in the catalogs'
// languages (CLDR): what Country suggests for a name.
//
//go:embed countries.txt
var countryTable string

// zones lists zoneNames, read once.
var zones = sync.OnceValue(func() []string {
	var out []string
	for _, l := range strings.Split(zoneNames, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
})

// TimeZone checks an IANA time zone name such as Europe/Paris. A name that
// is not one gets the zones it may mean: "Tokyo" is Asia/Tokyo,
// "europe/paris" Europe/Paris, "Europe/Pari" Europe/Paris.
func TimeZone(tz string) error {
	if tz != "" && !(strings.ContainsAny(tz, " .\\") && tz != "UTC") && !strings.HasPrefix(tz, "/") {
		if _, err := time.LoadLocation(tz); err == nil {
			return nil
		}
	}
	if s := suggestZones(tz); len(s) > 0 {
		return templates.Errorf("%q is not a time zone name; did you mean tz=%s?", Truncate(tz, 40), strings.Join(s, " or tz="))
	}
	return templates.Errorf("%q is not a time zone: use a name like Europe/Paris", Truncate(tz, 40))
}

// maxSuggestions bounds the names a suggestion offers.
const maxSuggestions = 3

// suggestZones lists the zones tz may mean: the same name in another case,
// the zones of a city ("Tokyo", "new york", "Buenos Aires"), else names
// and cities one or two typing mistakes away.
func suggestZones(tz string) []string {
	key := zoneKey(tz)
	city := key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		city = key[i+1:]
	}
	if len(city) < 3 {
		return nil
	}
	var exact, near []string
	for _, z := range zones() {
		zk := zoneKey(z)
		zcity := zk[strings.LastIndexByte(zk, '/')+1:]
		switch {
		case zk == key:
			return []string{z}
		case zcity == city:
			exact = append(exact, z)
		case typos(zcity, city) || len(key) >= 8 && editDistance(zk, key) <= 2:
			near = append(near, z)
		}
	}
	if len(exact) == 0 {
		exact = near
	}
	return exact[:min(len(exact), maxSuggestions)]
}

// typos reports whether a city name is a typing mistake or two away from a
// zone's: one in a short name, two in a longer one.
func typos(zoneCity, city string) bool {
	switch n := len(city); {
	case n >= 6:
		return editDistance(zoneCity, city) <= 2
	case n >= 4:
		return editDistance(zoneCity, city) <= 1
	}
	return false
}

// zoneKey is a zone name as it compares: lowercase, "_" for spaces.
func zoneKey(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", "_"))
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Country checks a country as a space's country= names it: the two-letter
// ISO 3166 code, in any case, returned in capitals; "" clears it. A
// country's name (in English, French, German or Spanish) or its
// three-letter code gets the code it means: "Japan" is JP.
func Country(s string) (string, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return "", nil
	}
	if code, ok := countryCode(v); ok && len(v) == 2 {
		return code, nil
	} else if ok {
		return "", templates.Errorf("%q is not a two-letter country code (ISO 3166); did you mean country=%s?", Truncate(v, 40), code)
	}
	if code, ok := countryNames()[nameKey(v)]; ok {
		return "", templates.Errorf("%q is not a two-letter country code (ISO 3166); did you mean country=%s?", Truncate(v, 40), code)
	}
	return "", templates.Errorf("%q is not a two-letter country code (ISO 3166), such as DE, FR or US", Truncate(v, 40))
}

// CountryOf reads a country as a search for spaces may name it: a code, or
// a country's name; ok is false for neither.
func CountryOf(s string) (code string, ok bool) {
	v := strings.TrimSpace(s)
	if code, ok := countryCode(v); ok {
		return code, true
	}
	code, ok = countryNames()[nameKey(v)]
	return code, ok
}

// countryCode reads an ISO 3166 code of two or three letters ("jp",
// "JPN") as the two-letter code of a country.
func countryCode(v string) (string, bool) {
	if len(v) != 2 && len(v) != 3 {
		return "", false
	}
	r, err := language.ParseRegion(v)
	if err != nil || !r.IsCountry() {
		return "", false
	}
	code := r.Canonicalize().String() // UK is GB
	if cr, err := language.ParseRegion(code); err != nil || !cr.IsCountry() {
		return "", false
	}
	return code, len(code) == 2
}

// countryNames maps the countries' names, in the languages of the bot's
// catalogs, to their codes, read once.
var countryNames = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(countryTable, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fields := strings.Split(l, "\t")
		for _, name := range fields[1:] {
			out[nameKey(name)] = fields[0]
		}
	}
	return out
})

// nameKey is a country name as it compares: lowercase letters only,
// without accents ("États-Unis" is "etatsunis").
func nameKey(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if unicode.IsLetter(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}
