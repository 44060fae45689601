package directory

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/coworkingvisa/mailbot/storage"
)

// listing is the store's spaces as the directory shows them: sorted by
// country, city and name, each with the folded forms the search compares.
// It is built from one read transaction and kept while the spaces stay
// the same: while the store's generation has not moved, or, after a write,
// while the hash of the spaces' records is the one it was built from (the
// bot writes the store for every message it handles; decoding and sorting
// 10,000 spaces takes 100 ms, hashing their records 1 ms: BENCHMARKS.md).
type listing struct {
	gen       uint64 // the store's generation it was read at
	sum       uint64 // the hash of the spaces' records (storage.Tx.HashSpaces)
	spaces    []entry
	countries []country // in the order of the spaces
	json      *cachedJSON
}

// cachedJSON is /spaces.json of every space, encoded once per listing:
// at 10,000 spaces it is 5.6 MB, encoded in 40 ms.
type cachedJSON struct {
	once sync.Once
	body []byte
	tag  string
	err  error
}

// at is the listing as read at a later generation that changed no space.
func (l *listing) at(gen uint64) *listing {
	c := *l
	c.gen = gen
	return &c
}

// entry is one space of a listing.
type entry struct {
	storage.Space
	country    string // the country's key (see countryKey)
	cityFold   string
	countryFld string
	nameFold   string
}

// country is one group of the listing: the spaces from first to first+count.
type country struct {
	Key   string // countryKey of the spaces' Country
	Name  string // as the first space (by id) spells it; "" for spaces that name none
	first int
	count int
}

// noCountry is the key of the spaces that name no country: a key no
// folded country name has, so that ?country= can name the group.
const noCountry = "-"

// countryKey groups spellings that differ in case and accents only.
func countryKey(c string) string {
	if k := fold(c); k != "" {
		return k
	}
	return noCountry
}

// newListing sorts the spaces of one read of the store.
func newListing(gen, sum uint64, spaces []storage.Space) *listing {
	l := &listing{gen: gen, sum: sum, spaces: make([]entry, len(spaces)), json: &cachedJSON{}}
	names := map[string]string{} // country key -> its spelling
	for i, s := range spaces {
		e := entry{Space: s, country: countryKey(s.Country), cityFold: fold(s.City), countryFld: fold(s.Country),
			nameFold: fold(s.Name)}
		if _, ok := names[e.country]; !ok {
			names[e.country] = strings.TrimSpace(s.Country)
		}
		l.spaces[i] = e
	}
	slices.SortFunc(l.spaces, func(a, b entry) int {
		// Spaces that name no country come last.
		if (a.country == noCountry) != (b.country == noCountry) {
			if a.country == noCountry {
				return 1
			}
			return -1
		}
		return cmp.Or(
			cmp.Compare(a.country, b.country),
			cmp.Compare(a.cityFold, b.cityFold),
			cmp.Compare(a.nameFold, b.nameFold),
			cmp.Compare(a.ID, b.ID),
		)
	})
	for i, e := range l.spaces {
		if n := len(l.countries); n > 0 && l.countries[n-1].Key == e.country {
			l.countries[n-1].count++
			continue
		}
		name := names[e.country]
		l.countries = append(l.countries, country{Key: e.country, Name: name, first: i, count: 1})
	}
	return l
}

// filter is what a request asks to see.
type filter struct {
	Query   string // matched against city and country
	Country string // a country key; "" for every country
}

// filterOf is what a request's ?q= and ?country= ask for. A country is
// named by its key, as the index links name it; any spelling of it does
// (?country=DE).
func filterOf(r *http.Request) filter {
	q := r.URL.Query()
	return filter{Query: clip(q.Get("q"), maxQuery), Country: fold(clip(q.Get("country"), maxQuery))}
}

// match returns the spaces the filter lets through, in listing order.
func (l *listing) match(f filter) []entry {
	spaces := l.spaces
	if f.Country != "" {
		i := slices.IndexFunc(l.countries, func(c country) bool { return c.Key == f.Country })
		if i < 0 {
			return nil
		}
		c := l.countries[i]
		spaces = l.spaces[c.first : c.first+c.count]
	}
	q := fold(f.Query)
	if q == "" {
		return spaces
	}
	var out []entry
	for _, e := range spaces {
		if wordPrefix(e.cityFold, q) || wordPrefix(e.countryFld, q) {
			out = append(out, e)
		}
	}
	return out
}

// space finds a space by id.
func (l *listing) space(id string) (entry, bool) {
	for _, e := range l.spaces {
		if e.ID == id {
			return e, true
		}
	}
	return entry{}, false
}

// wordPrefix reports whether q starts s or one of its words: "berlin"
// finds "Berlin", "san fr" finds "San Francisco", "york" finds "New York",
// and "de" finds "DE" and "Den Haag" but not "Dresden".
func wordPrefix(s, q string) bool {
	prev := ' '
	for i, r := range s {
		if !isWordRune(prev) && isWordRune(r) && strings.HasPrefix(s[i:], q) {
			return true
		}
		prev = r
	}
	return false
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// fold is s as the search compares it: trimmed, case-folded, without
// accents ("Zürich" and "zurich", "São Paulo" and "sao paulo" are equal).
func fold(s string) string {
	s = strings.TrimSpace(s)
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// Most names: a tenth of the time of the general case.
		return strings.ToLower(s)
	}
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return norm.NFC.String(cases.Fold().String(b.String()))
}
