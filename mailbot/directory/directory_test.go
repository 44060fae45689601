package directory

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/coworkingvisa/mailbot/mailbot/web"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

const botAddress = "visa+dir@example.org"

func days(n int) *int { return &n }

// network is a small network with every kind of terms: free days said,
// unlimited and not said, notice or none, countries spelt in different
// cases, accents, and a space that names no country.
func network() []storage.Space {
	return []storage.Space{
		{ID: "betahaus", Name: "betahaus", City: "Berlin", Country: "DE", TZ: "Europe/Berlin", Language: "de",
			FreeDays: days(3), NoticeDays: 2, Hours: "Mon–Fri 9:00–19:00",
			Terms: "Weekdays only; bring an ID.\nThe café is not part of the visa."},
		{ID: "hamburg", Name: "Betahaus Hamburg", City: "Hamburg", Country: "de", FreeDays: days(storage.FreeDaysUnlimited)},
		{ID: "dresden", Name: "Rosenwerk", City: "Dresden", Country: "DE", FreeDays: days(1), NoticeDays: 1},
		{ID: "lacantine", Name: "La Cantine", City: "Paris", Country: "FR", TZ: "Europe/Paris", Language: "fr", FreeDays: days(2)},
		{ID: "indyhall", Name: "Indy Hall", City: "Philadelphia", Country: "US", TZ: "America/New_York"},
		{ID: "citizenspace", Name: "Citizen Space", City: "San Francisco", Country: "US"},
		{ID: "impacthub", Name: "Impact Hub Zürich", City: "Zürich", Country: "CH", NoticeDays: 7},
		{ID: "nomad", Name: "The Nomad Table"},
	}
}

type fixture struct {
	db  *storage.DB
	dir *Directory
	srv *web.Server
}

// newFixture is a store holding spaces, and the web listener's mux with
// the directory's routes, as the daemon sets them up.
func newFixture(t testing.TB, opts Options, spaces ...storage.Space) *fixture {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	put(t, db, spaces...)
	if opts.BotAddress == "" {
		opts.BotAddress = botAddress
	}
	if opts.Language == "" {
		opts.Language = "en"
	}
	dir, err := New(db, templates.Embedded(), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := web.New(web.Options{})
	dir.Register(srv)
	return &fixture{db: db, dir: dir, srv: srv}
}

func put(t testing.TB, db *storage.DB, spaces ...storage.Space) {
	t.Helper()
	now := time.Now()
	err := db.Update(func(tx *storage.Tx) error {
		for _, s := range spaces {
			s.Created, s.Updated = now, now
			if err := tx.PutSpace(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// get requests path from a remote peer, with header pairs.
func (f *fixture) get(t testing.TB, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = "192.0.2.10:40000"
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, r)
	return rec
}

// page is a parsed HTML answer.
type page struct {
	t    testing.TB
	root *html.Node
	body string
}

func (f *fixture) page(t testing.TB, path string, status int, header ...string) page {
	t.Helper()
	rec := f.get(t, path, header...)
	if rec.Code != status {
		t.Fatalf("GET %s: %d, want %d\n%s", path, rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	root, err := html.Parse(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return page{t: t, root: root, body: rec.Body.String()}
}

// all are the elements for which match holds, in document order.
func (p page) all(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for n := range p.root.Descendants() {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	}
	return out
}

// texts are the texts of the elements with tag and (if not "") class,
// whitespace collapsed.
func (p page) texts(tag, class string) []string {
	var out []string
	for _, n := range p.all(func(n *html.Node) bool { return n.Data == tag && (class == "" || hasClass(n, class)) }) {
		out = append(out, textOf(n))
	}
	return out
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// spaceNames are the spaces a list page shows, by country heading.
func (p page) spaceNames() map[string][]string {
	out := map[string][]string{}
	for _, sec := range p.all(func(n *html.Node) bool { return n.Data == "section" && hasClass(n, "country") }) {
		sp := page{root: sec}
		heading := sp.texts("h3", "")
		if len(heading) != 1 {
			p.t.Fatalf("a country section has headings %q", heading)
		}
		out[heading[0]] = sp.texts("h4", "")
	}
	return out
}

// href is the target of the link whose text is text.
func (p page) href(text string) string {
	for _, a := range p.all(func(n *html.Node) bool { return n.Data == "a" }) {
		if textOf(a) == text {
			return attr(a, "href")
		}
	}
	p.t.Errorf("no link %q", text)
	return ""
}

func (p page) headings() []string { return p.texts("h3", "country-name") }

func TestListGroupsByCountry(t *testing.T) {
	f := newFixture(t, Options{}, network()...)
	p := f.page(t, "/", http.StatusOK)
	// Countries in order, spellings that differ in case grouped, the
	// spaces that name none last; cities in order within a country.
	if got, want := p.headings(), []string{"CH", "DE", "FR", "US", "Country not given"}; !slices.Equal(got, want) {
		t.Errorf("country headings %q, want %q", got, want)
	}
	want := map[string][]string{
		"CH": {"Impact Hub Zürich"}, "DE": {"betahaus", "Rosenwerk", "Betahaus Hamburg"}, "FR": {"La Cantine"},
		"US": {"Indy Hall", "Citizen Space"}, "Country not given": {"The Nomad Table"},
	}
	if got := p.spaceNames(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("spaces by country:\n%v\nwant\n%v", got, want)
	}
	// The index of countries links to each, with its count.
	if got, want := p.texts("li", ""), "DE (3)"; !slices.Contains(got, want) {
		t.Errorf("no country index entry %q in %q", want, got)
	}
	// Each space: city, free days, notice and its terms' first line.
	for _, want := range []string{
		`<h4><a href="spaces/betahaus">betahaus</a></h4>`,
		`<p class="muted">Berlin</p>`,
		"<li>3 free days a month</li>", "<li>2 days&#39; notice</li>",
		"<p>Weekdays only; bring an ID.…</p>",
		"<li>unlimited free days</li>", "<li>no notice needed</li>",
		"<li>1 free day a month</li>", "<li>1 day&#39;s notice</li>",
		"<li>free days: ask the host</li>",
		`<html lang="en">`, "<title>Participating spaces – Coworking Visa</title>",
		"8 participating spaces · 5 countries",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the list lacks %s", want)
		}
	}
	if strings.Contains(p.body, "The café") {
		t.Error("the list shows more than the terms' first line")
	}
	if got := p.href(botAddress); got != "mailto:"+botAddress {
		t.Errorf("the bot's link: %q", got)
	}
}

func TestEmptyDirectory(t *testing.T) {
	f := newFixture(t, Options{})
	p := f.page(t, "/", http.StatusOK)
	if !strings.Contains(p.body, "No space takes part yet.") || len(p.headings()) != 0 {
		t.Errorf("an empty directory:\n%s", p.body)
	}
}

func TestSearchByCityOrCountry(t *testing.T) {
	f := newFixture(t, Options{}, network()...)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"berlin", []string{"betahaus"}},
		{"  BERLIN ", []string{"betahaus"}},
		{"zurich", []string{"Impact Hub Zürich"}}, // accents do not matter
		{"san fr", []string{"Citizen Space"}},     // a word's beginning
		{"francisco", []string{"Citizen Space"}},
		{"de", []string{"betahaus", "Rosenwerk", "Betahaus Hamburg"}}, // the country DE, not "Dresden"'s "de"
		{"us", []string{"Indy Hall", "Citizen Space"}},
		{"erlin", nil}, // not a word's beginning
		{"betahaus", nil},
	} {
		p := f.page(t, "/?q="+strings.ReplaceAll(tc.query, " ", "+"), http.StatusOK)
		var got []string
		for _, names := range p.spaceNames() {
			got = append(got, names...)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("search %q: %q, want %q", tc.query, got, want)
		}
		if len(want) == 0 && !strings.Contains(p.body, "No space is in a city or country matching") {
			t.Errorf("search %q: no word that nothing matched", tc.query)
		}
		// The form keeps what was searched.
		if v := attr(p.all(func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == "q" })[0], "value"); v != strings.TrimSpace(tc.query) {
			t.Errorf("search %q: the field holds %q", tc.query, v)
		}
	}
	p := f.page(t, "/?q=berlin", http.StatusOK)
	for _, want := range []string{"1 space matches “berlin”", `<a href="./">Show all spaces</a>`, "<title>berlin – "} {
		if !strings.Contains(p.body, want) {
			t.Errorf("search: the page lacks %q", want)
		}
	}
	// The country index's links filter by country.
	p = f.page(t, "/?country=de", http.StatusOK)
	if got := p.spaceNames(); len(got) != 1 || len(got["DE"]) != 3 || !strings.Contains(p.body, "3 spaces in DE") {
		t.Errorf("?country=de: %v", got)
	}
	if !strings.Contains(p.body, `<a href="?country=de" aria-current="page">DE</a>`) {
		t.Error("?country=de: the index does not mark DE")
	}
	if got := f.page(t, "/?country=De", http.StatusOK).spaceNames(); len(got["DE"]) != 3 {
		t.Errorf("?country=De: %v", got)
	}
	p = f.page(t, "/?country=-", http.StatusOK)
	if got := p.spaceNames(); len(got) != 1 || len(got["Country not given"]) != 1 {
		t.Errorf("?country=-: %v", got)
	}
	p = f.page(t, "/?country=atlantis", http.StatusOK)
	if len(p.spaceNames()) != 0 || !strings.Contains(p.body, "No space is in this country.") {
		t.Errorf("?country=atlantis:\n%s", p.body)
	}
}

func TestPages(t *testing.T) {
	var spaces []storage.Space
	for i := range 7 {
		spaces = append(spaces, storage.Space{ID: fmt.Sprintf("de%d", i), Name: fmt.Sprintf("Space DE %d", i), City: fmt.Sprintf("City %d", i), Country: "DE"})
	}
	spaces = append(spaces, storage.Space{ID: "fr", Name: "Space FR", City: "Paris", Country: "FR"})
	f := newFixture(t, Options{PageSize: 3}, spaces...)

	p := f.page(t, "/", http.StatusOK)
	if got := p.spaceNames()["DE"]; len(got) != 3 || !strings.Contains(p.body, "Page 1 of 3") ||
		!strings.Contains(p.body, `<a href="?page=2" rel="next">`) || strings.Contains(p.body, `rel="prev"`) {
		t.Errorf("page 1: %q\n%s", got, p.body)
	}
	p = f.page(t, "/?page=2", http.StatusOK)
	if got := p.headings(); !slices.Equal(got, []string{"DE (continued)"}) || !strings.Contains(p.body, `<a href="./" rel="prev">`) {
		t.Errorf("page 2: %q", got)
	}
	p = f.page(t, "/?page=3", http.StatusOK)
	if got := p.headings(); !slices.Equal(got, []string{"DE (continued)", "FR"}) || strings.Contains(p.body, `rel="next"`) {
		t.Errorf("page 3: %q", got)
	}
	// Past the end, or nonsense: the nearest page.
	if got := f.page(t, "/?page=99", http.StatusOK).headings(); !slices.Equal(got, []string{"DE (continued)", "FR"}) {
		t.Errorf("page 99: %q", got)
	}
	if got := f.page(t, "/?page=x", http.StatusOK).headings(); !slices.Equal(got, []string{"DE"}) {
		t.Errorf("page x: %q", got)
	}
	// The links keep the filter.
	p = f.page(t, "/?country=de&q=city", http.StatusOK)
	if !strings.Contains(p.body, `<a href="?country=de&amp;page=2&amp;q=city" rel="next">`) {
		t.Errorf("a filtered page's next link:\n%s", p.body)
	}
}

func TestSpacePage(t *testing.T) {
	f := newFixture(t, Options{Language: "fr"}, network()...)
	p := f.page(t, "/spaces/betahaus", http.StatusOK)
	for _, want := range []string{
		"<title>betahaus, Berlin – Coworking Visa</title>",
		"<h1>betahaus</h1>", `<p class="muted">Berlin, DE</p>`,
		`<a href="../?country=de">DE</a>`, `<a href="../">Participating spaces</a>`,
		"<dt>Free days</dt>\n<dd>3 free days a month</dd>",
		"<dt>Notice</dt>\n<dd>2 days&#39; notice</dd>",
		"<dt>Opening hours</dt>\n<dd>Mon–Fri 9:00–19:00</dd>",
		"<dt>Language</dt>\n<dd>German</dd>",
		"<dt>Time zone</dt>\n<dd>Europe/Berlin</dd>",
		"<p class=\"terms-text\">Weekdays only; bring an ID.\nThe café is not part of the visa.</p>",
		"<pre class=\"command\"><code>visit betahaus YYYY-MM-DD</code></pre>",
		"This space needs 2 days&#39; notice.",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the space page lacks %s", want)
		}
	}
	if got := p.href(botAddress); got != "mailto:"+botAddress {
		t.Errorf("the bot's link: %q", got)
	}
	if got, want := p.href("Write the email"), "mailto:visa+dir@example.org?subject=visit&body=visit%20betahaus%20YYYY-MM-DD"; got != want {
		t.Errorf("the visit link: %q, want %q", got, want)
	}
	// A space with nothing said: the network's language, no hours, no
	// notice, no terms.
	p = f.page(t, "/spaces/nomad", http.StatusOK)
	for _, want := range []string{
		"<dd>free days: ask the host</dd>", "<dd>no notice needed</dd>", "<dd>not given; ask the host</dd>",
		"<dt>Language</dt>\n<dd>French</dd>",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the nomad's page lacks %s", want)
		}
	}
	for _, bad := range []string{"Time zone", "The host&#39;s terms", "needs", "&#34;muted&#34;"} {
		if strings.Contains(p.body, bad) {
			t.Errorf("the nomad's page shows %q", bad)
		}
	}
	// Ids are case-insensitive, as in commands.
	f.page(t, "/spaces/BetaHaus", http.StatusOK)
	p = f.page(t, "/spaces/atlantis", http.StatusNotFound)
	if !strings.Contains(p.body, "There is no space “atlantis” in the directory") {
		t.Errorf("a missing space:\n%s", p.body)
	}
}

func TestMailto(t *testing.T) {
	for _, tc := range []struct{ addr, subject, body, want string }{
		{"visa@example.org", "", "", "mailto:visa@example.org"},
		{"visa+dir@example.org", "visit", "visit betahaus YYYY-MM-DD",
			"mailto:visa+dir@example.org?subject=visit&body=visit%20betahaus%20YYYY-MM-DD"},
		// What would end the address or a field is escaped.
		{"a?b#c%d&e@example.org", "x y", "a&b=c+d/é", "mailto:a%3Fb%23c%25d%26e@example.org?subject=x%20y&body=a%26b%3Dc%2Bd%2F%C3%A9"},
	} {
		if got := mailto(tc.addr, tc.subject, tc.body); got != tc.want {
			t.Errorf("mailto(%q, %q, %q) = %s, want %s", tc.addr, tc.subject, tc.body, got, tc.want)
		}
	}
}

func TestJSON(t *testing.T) {
	f := newFixture(t, Options{Language: "es"}, network()...)
	rec := f.get(t, "/spaces.json")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" ||
		rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("/spaces.json: %d %v", rec.Code, rec.Header())
	}
	var got struct {
		Bot    string           `json:"bot"`
		Spaces []map[string]any `json:"spaces"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Bot != botAddress || len(got.Spaces) != len(network()) {
		t.Fatalf("bot %q, %d spaces", got.Bot, len(got.Spaces))
	}
	byID := map[string]map[string]any{}
	var order []string
	for _, s := range got.Spaces {
		byID[s["id"].(string)] = s
		order = append(order, s["id"].(string))
	}
	// The list's order.
	if want := []string{"impacthub", "betahaus", "dresden", "hamburg", "lacantine", "indyhall", "citizenspace", "nomad"}; !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	b := byID["betahaus"]
	for k, want := range map[string]any{
		"name": "betahaus", "city": "Berlin", "country": "DE", "time_zone": "Europe/Berlin", "language": "de",
		"hours": "Mon–Fri 9:00–19:00", "free_days_per_month": 3.0, "free_days_unlimited": false, "notice_days": 2.0,
		"terms": "Weekdays only; bring an ID.\nThe café is not part of the visa.", "page": "spaces/betahaus",
	} {
		if b[k] != want {
			t.Errorf("betahaus %s: %#v, want %#v", k, b[k], want)
		}
	}
	visit := b["visit"].(map[string]any)
	if visit["command"] != "visit betahaus YYYY-MM-DD" ||
		visit["mailto"] != "mailto:visa+dir@example.org?subject=visit&body=visit%20betahaus%20YYYY-MM-DD" {
		t.Errorf("betahaus visit: %v", visit)
	}
	if h := byID["hamburg"]; h["free_days_per_month"] != nil || h["free_days_unlimited"] != true {
		t.Errorf("hamburg's unlimited days: %v", h)
	}
	if n := byID["nomad"]; n["free_days_per_month"] != nil || n["free_days_unlimited"] != false || n["language"] != "es" || n["country"] != "" {
		t.Errorf("nomad, who said nothing: %v", n)
	}
	// The list's filters.
	rec = f.get(t, "/spaces.json?q=berlin")
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Spaces) != 1 || got.Spaces[0]["id"] != "betahaus" {
		t.Errorf("?q=berlin: %s", rec.Body)
	}
}

func TestLanguageFromAcceptLanguage(t *testing.T) {
	f := newFixture(t, Options{}, network()...)
	for _, tc := range []struct{ accept, lang, word string }{
		{"", "en", "Search by city or country"},
		{"fr-CH, fr;q=0.9, en;q=0.8", "fr", "Rechercher par ville ou par pays"},
		{"de-AT", "de", "Nach Stadt oder Land suchen"},
		{"ja, es;q=0.5", "es", "Buscar por ciudad o país"},
		{"ja", "en", "Search by city or country"},
		{"*", "en", "Search by city or country"},
		{"not a header;;q=x", "en", "Search by city or country"},
	} {
		rec := f.get(t, "/", "Accept-Language", tc.accept)
		body := rec.Body.String()
		if !strings.Contains(body, `<html lang="`+tc.lang+`">`) || !strings.Contains(body, tc.word) ||
			rec.Header().Get("Content-Language") != tc.lang {
			t.Errorf("Accept-Language %q: want %s (%q); Content-Language %q\n%.600s", tc.accept, tc.lang, tc.word,
				rec.Header().Get("Content-Language"), body)
		}
		if rec.Header().Get("Vary") != "Accept-Language" {
			t.Errorf("Accept-Language %q: Vary %q", tc.accept, rec.Header().Get("Vary"))
		}
	}
	// The plural forms and the space page in French.
	p := f.page(t, "/spaces/betahaus", http.StatusOK, "Accept-Language", "fr")
	for _, want := range []string{"<dd>3 jours gratuits par mois</dd>", "<dd>préavis de 2 jours</dd>", "<dd>allemand</dd>", "Demander une visite"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("French space page lacks %s", want)
		}
	}
	p = f.page(t, "/?country=de", http.StatusOK, "Accept-Language", "de")
	if !strings.Contains(p.body, "DE: 3 Spaces") {
		t.Errorf("German country list lacks its count:\n%s", p.body)
	}
}

// Names and terms are the admins' words, shown as text, never as markup.
func TestEscaping(t *testing.T) {
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	f := newFixture(t, Options{}, storage.Space{ID: "evil", Name: evil, City: evil, Country: evil, Terms: evil, Hours: evil})
	for _, path := range []string{"/", "/spaces/evil", "/?q=" + "%3Cscript%3E"} {
		p := f.page(t, path, http.StatusOK)
		if strings.Contains(p.body, "<script") || strings.Contains(p.body, "<img") {
			t.Errorf("%s lets markup through:\n%s", path, p.body)
		}
		if len(p.all(func(n *html.Node) bool { return n.Data == "script" || n.Data == "img" })) > 0 {
			t.Errorf("%s has a script or an image element", path)
		}
	}
}

// Nothing of any member or manager is ever shown, whatever is asked.
func TestNoMemberData(t *testing.T) {
	f := newFixture(t, Options{}, network()...)
	now := time.Now()
	err := f.db.Update(func(tx *storage.Tx) error {
		if err := tx.AddManager(storage.Manager{Email: "manager-secret@betahaus.test", Space: "betahaus", Added: now}); err != nil {
			return err
		}
		return tx.PutMember(storage.Member{Space: "betahaus", Email: "member-secret@betahaus.test", Name: "Secret Member",
			Status: storage.StatusActive, Added: now, Updated: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/?q=berlin", "/?country=de", "/spaces/betahaus", "/spaces.json", "/spaces.json?q=berlin"} {
		body := f.get(t, path).Body.String()
		for _, secret := range []string{"secret", "Secret"} {
			if strings.Contains(body, secret) {
				t.Errorf("%s shows a member or manager:\n%s", path, body)
			}
		}
	}
}

// A space removed from the store is gone from the next answer, and the
// validators change with what the page shows.
func TestCurrentAtEveryRequest(t *testing.T) {
	f := newFixture(t, Options{}, network()...)
	first := f.get(t, "/")
	tag := first.Header().Get("ETag")
	if !strings.Contains(first.Body.String(), "La Cantine") || tag == "" {
		t.Fatalf("before: ETag %q\n%s", tag, first.Body)
	}
	jsonTag := f.get(t, "/spaces.json").Header().Get("ETag")
	// A write that changes no space keeps the tag, and the spaces as
	// read before: they are not decoded again.
	before := f.dir.cur.Load()
	if err := f.db.Probe(time.Now()); err != nil {
		t.Fatal(err)
	}
	if rec := f.get(t, "/", "If-None-Match", tag); rec.Code != http.StatusNotModified {
		t.Errorf("an unrelated write changed the page: %d", rec.Code)
	}
	if after := f.dir.cur.Load(); after.gen <= before.gen || &after.spaces[0] != &before.spaces[0] {
		t.Errorf("after an unrelated write: generation %d (was %d), spaces read again: %v",
			after.gen, before.gen, &after.spaces[0] != &before.spaces[0])
	}
	err := f.db.Update(func(tx *storage.Tx) error { return tx.DeleteSpace("lacantine") })
	if err != nil {
		t.Fatal(err)
	}
	after := f.get(t, "/", "If-None-Match", tag)
	if after.Code != http.StatusOK || strings.Contains(after.Body.String(), "La Cantine") || after.Header().Get("ETag") == tag {
		t.Errorf("after removal: %d, ETag %q (was %q)\n%s", after.Code, after.Header().Get("ETag"), tag, after.Body)
	}
	if strings.Contains(f.get(t, "/spaces.json", "If-None-Match", jsonTag).Body.String(), "lacantine") {
		t.Error("/spaces.json still lists the removed space")
	}
	f.page(t, "/spaces/lacantine", http.StatusNotFound)
	// A new space shows at once too.
	put(t, f.db, storage.Space{ID: "cowork-lisboa", Name: "Cowork Lisboa", City: "Lisbon", Country: "PT"})
	if !strings.Contains(f.get(t, "/?q=lisbon").Body.String(), "Cowork Lisboa") {
		t.Error("a new space is not listed")
	}
}

func TestHeaders(t *testing.T) {
	f := newFixture(t, Options{}, network()...)
	for _, path := range []string{"/", "/spaces/betahaus", "/spaces.json", "/?q=berlin"} {
		rec := f.get(t, path)
		h := rec.Header()
		tag := h.Get("ETag")
		if rec.Code != http.StatusOK || h.Get("Cache-Control") != "no-cache" || !strings.HasPrefix(tag, `"`) ||
			h.Get("Content-Length") != fmt.Sprint(rec.Body.Len()) {
			t.Errorf("%s: %d %v", path, rec.Code, h)
		}
		if !strings.HasPrefix(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, h.Get("Content-Security-Policy"))
		}
		for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
			rec := f.get(t, path, "If-None-Match", inm)
			if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 || rec.Header().Get("ETag") != tag ||
				rec.Header().Get("Cache-Control") != "no-cache" {
				t.Errorf("%s If-None-Match %s: %d %v", path, inm, rec.Code, rec.Header())
			}
		}
		if rec := f.get(t, path, "If-None-Match", `"other"`); rec.Code != http.StatusOK {
			t.Errorf("%s with another tag: %d", path, rec.Code)
		}
		// The tag follows the language of the words.
		if fr := f.get(t, path, "Accept-Language", "fr").Header().Get("ETag"); path != "/spaces.json" && fr == tag {
			t.Errorf("%s: the French page has the English page's tag", path)
		}
	}
	// The policy lets the page's own style sheet in, by its hash, and
	// nothing else.
	p := f.page(t, "/", http.StatusOK)
	style := p.all(func(n *html.Node) bool { return n.Data == "style" })
	if len(style) != 1 {
		t.Fatalf("%d style elements", len(style))
	}
	sum := sha256.Sum256([]byte(style[0].FirstChild.Data))
	csp := f.get(t, "/").Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("the policy %q does not allow the style sheet", csp)
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
		t.Errorf("the policy %q allows more than it should", csp)
	}
	// The operator's pages stay the operator's.
	if rec := f.get(t, "/metrics"); rec.Code != http.StatusNotFound {
		t.Errorf("/metrics from the directory's mux: %d", rec.Code)
	}
	// HEAD answers as GET does, without the body.
	r := httptest.NewRequest("HEAD", "/", nil)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || rec.Header().Get("ETag") == "" {
		t.Errorf("HEAD /: %d %v", rec.Code, rec.Header())
	}
}

func TestWordPrefix(t *testing.T) {
	for _, tc := range []struct {
		s, q string
		want bool
	}{
		{"berlin", "ber", true}, {"new york", "york", true}, {"saint-denis", "denis", true},
		{"dresden", "den", false}, {"", "a", false}, {"a", "", true},
	} {
		if got := wordPrefix(tc.s, tc.q); got != tc.want {
			t.Errorf("wordPrefix(%q, %q) = %v", tc.s, tc.q, got)
		}
	}
	if fold(" Zürich ") != "zurich" || fold("STRASSE") != fold("straße") || fold("São Paulo") != "sao paulo" {
		t.Errorf("fold: %q %q %q %q", fold(" Zürich "), fold("STRASSE"), fold("straße"), fold("São Paulo"))
	}
}

// Requests in parallel with writes read consistent listings (run with
// -race): every answer is a whole page of one state of the store.
func TestConcurrentRequestsAndWrites(t *testing.T) {
	f := newFixture(t, Options{}, network()...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			s := storage.Space{ID: fmt.Sprintf("new%02d", i), Name: fmt.Sprintf("New %02d", i), City: "Lisbon", Country: "PT"}
			if err := f.db.Update(func(tx *storage.Tx) error { return tx.PutSpace(s) }); err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
		}
	}()
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			for range 20 {
				rec := f.get(t, "/?q=lisbon")
				if rec.Code != http.StatusOK || !strings.HasSuffix(rec.Body.String(), "</html>\n") {
					errs <- fmt.Sprintf("%d\n%s", rec.Code, rec.Body)
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	<-done
	if n := strings.Count(f.get(t, "/?q=lisbon").Body.String(), "<h4>"); n != 20 {
		t.Errorf("after the writes: %d spaces in Lisbon, want 20", n)
	}
}
