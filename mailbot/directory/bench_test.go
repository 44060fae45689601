package directory

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/coworkingvisa/mailbot/storage"
)

// benchSpaces are n spaces in 150 countries, as unevenly spread as real
// networks are (country k has about 1/k of the first one's spaces: the
// first holds 17% of all), in 20 cities each, every space with terms of
// a few lines and opening hours.
func benchSpaces(n int) []storage.Space {
	const countries = 150
	var weights [countries]float64
	total := 0.0
	for k := range weights {
		weights[k] = 1 / float64(k+1)
		total += weights[k]
	}
	out := make([]storage.Space, 0, n)
	for k := 0; k < countries && len(out) < n; k++ {
		count := max(1, int(float64(n)*weights[k]/total+0.5))
		if k == countries-1 {
			count = n - len(out)
		}
		for i := 0; i < count && len(out) < n; i++ {
			id := fmt.Sprintf("s%05d", len(out))
			free := days(i % 6)
			if i%7 == 0 {
				free = days(storage.FreeDaysUnlimited)
			}
			out = append(out, storage.Space{
				ID: id, Name: fmt.Sprintf("Coworking Space %s", id), City: fmt.Sprintf("City %03d-%02d", k, i%20),
				Country: fmt.Sprintf("C%03d", k), TZ: "Europe/Berlin", Language: "en",
				FreeDays: free, NoticeDays: i % 4, Hours: "Mon–Fri 8:00–20:00, Sat 10:00–16:00",
				Terms: "Weekdays only, bring your member card or an ID; phone booths are for members.\n" +
					"Meeting rooms at the member rate. Ask at the front desk for the Wi-Fi.",
			})
		}
	}
	return out
}

// BenchmarkDirectory10k serves the directory of 10,000 spaces: time per
// request and bytes per page (BENCHMARKS.md). "after-other-write" is the
// first request after a write to the store that changed no space (every
// message the bot handles writes): it hashes the spaces' records and keeps
// its sorted copy. "after-space-change" is the first request after a
// space changed: it decodes and sorts every space again. The others find
// the copy kept.
func BenchmarkDirectory10k(b *testing.B) {
	spaces := benchSpaces(10_000)
	f := newFixture(b, Options{}, spaces...)
	largest := countryKey(spaces[0].Country)
	for _, bc := range []struct {
		name, path string
		written    func()
		header     []string
	}{
		{name: "list", path: "/"},
		{name: "list-after-other-write", path: "/", written: func() { f.dir.cur.Store(f.dir.cur.Load().at(0)) }},
		{name: "list-after-space-change", path: "/", written: func() { f.dir.cur.Store(nil) }},
		{name: "list-page-50", path: "/?page=50"},
		{name: "largest-country", path: "/?country=" + largest},
		{name: "search-city", path: "/?q=city+017-05"},
		{name: "search-country", path: "/?q=c001"},
		{name: "space", path: "/spaces/s05000"},
		{name: "list-not-modified", path: "/", header: []string{"If-None-Match", f.get(b, "/").Header().Get("ETag")}},
		{name: "json-all", path: "/spaces.json"},
		{name: "json-country", path: "/spaces.json?country=" + largest},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				if bc.written != nil {
					bc.written()
				}
				rec := f.get(b, bc.path, bc.header...)
				if rec.Code != http.StatusOK && rec.Code != http.StatusNotModified {
					b.Fatalf("%s: %d", bc.path, rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
