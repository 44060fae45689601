package directory

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// termsLine is how much of a space's terms the list shows, in characters.
const termsLine = 160

// spaceView is a space as a page shows it. The words around the values
// are the templates'.
type spaceView struct {
	ID, Name, City, Country string
	Href                    string // its page, relative to the list
	FreeDaysSaid            bool   // the space said how many free days
	Unlimited               bool
	FreeDays                int
	NoticeDays              int
	TermsLine               string // the first line of the terms, cut short
}

func viewOf(e entry) spaceView {
	v := spaceView{
		ID: e.ID, Name: e.Name, City: strings.TrimSpace(e.City), Country: strings.TrimSpace(e.Country),
		Href:       "spaces/" + url.PathEscape(e.ID),
		NoticeDays: e.NoticeDays,
		TermsLine:  firstLine(e.Terms, termsLine),
	}
	if e.FreeDays != nil {
		v.FreeDaysSaid = true
		v.Unlimited = *e.FreeDays == storage.FreeDaysUnlimited
		v.FreeDays = max(*e.FreeDays, 0)
	}
	if v.Name == "" {
		v.Name = e.ID
	}
	return v
}

// firstLine is the first line of s, cut at n characters with an ellipsis.
func firstLine(s string, n int) string {
	s, _, cut := strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > n {
		r := []rune(s)
		s, cut = strings.TrimSpace(string(r[:n-1])), true
	}
	if cut {
		s += "…"
	}
	return s
}

// indexView is the data of directory.html.
type indexView struct {
	Lang      string
	Bot       string
	BotHref   string        // a mailto: link to the bot
	Total     int           // spaces in the directory
	Countries []countryLink // the index, every country
	// What the visitor asked for, and what fits it.
	Query       string
	Country     *countryLink // the country asked for, if any
	Filtered    bool
	Matches     int
	Groups      []groupView // the spaces of this page, by country
	Page, Pages int
	Prev, Next  string // links to the pages around, "" at the ends
}

// countryLink is one country of the index.
type countryLink struct {
	Name    string
	Count   int
	Href    string
	Current bool
}

// groupView is the spaces of one country on a page.
type groupView struct {
	Name      string
	Continued bool // the country began on an earlier page
	Spaces    []spaceView
}

func (d *Directory) serveIndex(w http.ResponseWriter, r *http.Request) {
	l := d.lang(r)
	list, err := d.current()
	if err != nil {
		d.unavailable(w, l, err)
		return
	}
	q := r.URL.Query()
	f := filterOf(r)
	v := indexView{Lang: l.Code(), Bot: d.opts.BotAddress, BotHref: mailto(d.opts.BotAddress, "", ""),
		Total: len(list.spaces), Query: f.Query, Filtered: f.Query != "" || f.Country != ""}
	v.Countries = make([]countryLink, len(list.countries))
	for i, c := range list.countries {
		v.Countries[i] = countryLink{Name: countryName(l, c.Name, c.Key), Count: c.count,
			Href: "?" + url.Values{"country": {c.Key}}.Encode(), Current: c.Key == f.Country}
		if v.Countries[i].Current {
			v.Country = &v.Countries[i]
		}
	}
	if f.Country != "" && v.Country == nil {
		// A country no space names (any more): the list says so.
		v.Country = &countryLink{Name: clip(f.Country, maxQuery)}
	}
	matches := list.match(f)
	size := d.opts.PageSize
	v.Matches = len(matches)
	v.Pages = max(1, (len(matches)+size-1)/size)
	v.Page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil {
		v.Page = min(max(n, 1), v.Pages)
	}
	start, end := (v.Page-1)*size, min(v.Page*size, len(matches))
	link := func(page int) string {
		p := url.Values{}
		if f.Query != "" {
			p.Set("q", f.Query)
		}
		if f.Country != "" {
			p.Set("country", f.Country)
		}
		if page > 1 {
			p.Set("page", strconv.Itoa(page))
		}
		if len(p) == 0 {
			return "./"
		}
		return "?" + p.Encode()
	}
	if v.Page > 1 {
		v.Prev = link(v.Page - 1)
	}
	if v.Page < v.Pages {
		v.Next = link(v.Page + 1)
	}
	for i := start; i < end; i++ {
		e := matches[i]
		if n := len(v.Groups); n == 0 || matches[i-1].country != e.country {
			v.Groups = append(v.Groups, groupView{Name: countryName(l, e.Country, e.country),
				Continued: i > 0 && matches[i-1].country == e.country})
		}
		g := &v.Groups[len(v.Groups)-1]
		g.Spaces = append(g.Spaces, viewOf(e))
	}
	d.page(w, r, l, http.StatusOK, "directory.html", v)
}

// countryName is a country as the list names it: as its spaces spell
// it, or in words for the spaces that name none.
func countryName(l *templates.Lang, name, key string) string {
	if key == noCountry {
		return l.Sprintf("Country not given")
	}
	return strings.TrimSpace(name)
}

// clip cuts s to at most n bytes, at a character boundary.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// spacePage is the data of space.html.
type spacePage struct {
	spaceView
	Lang        string
	TimeZone    string
	Language    string // the code of the language its hosts speak with the bot
	Hours       string
	Terms       string
	CountryHref string // the list of its country
	// How to ask for a visit: the bot's address, the command to write,
	// and a mailto: link that writes it.
	Bot, BotHref, Command, Mailto string
}

// spaceMissing is the data of the page of a space that is not (or no
// longer) in the directory.
type spaceMissing struct {
	Lang string
	ID   string
}

func (d *Directory) serveSpace(w http.ResponseWriter, r *http.Request) {
	l := d.lang(r)
	list, err := d.current()
	if err != nil {
		d.unavailable(w, l, err)
		return
	}
	id := strings.ToLower(r.PathValue("id"))
	e, ok := list.space(id)
	if !ok {
		d.page(w, r, l, http.StatusNotFound, "directory-missing", spaceMissing{Lang: l.Code(), ID: clip(id, 64)})
		return
	}
	v := spacePage{spaceView: viewOf(e), Lang: l.Code(), TimeZone: e.TZ, Language: e.Language,
		Hours: strings.TrimSpace(e.Hours), Terms: strings.TrimSpace(e.Terms),
		CountryHref: "../?" + url.Values{"country": {e.country}}.Encode(),
		Bot:         d.opts.BotAddress, BotHref: mailto(d.opts.BotAddress, "", ""),
		Command: visitCommand(e.ID), Mailto: mailto(d.opts.BotAddress, visitSubject, visitCommand(e.ID))}
	if v.Language == "" {
		v.Language = d.opts.Language
	}
	d.page(w, r, l, http.StatusOK, "space.html", v)
}

// The request a member writes to the bot for a visit (the bot's `visit`
// command): the member puts the day in place of YYYY-MM-DD. The Subject
// alone does not parse as a command, so the bot reads the body's line.
const visitSubject = "visit"

func visitCommand(id string) string { return "visit " + id + " YYYY-MM-DD" }

// mailto is a mailto: URL (RFC 6068) to addr with a subject and a body,
// each left out when empty. Everything but unreserved characters is
// percent-encoded (§2), a space as %20, never "+" (§5).
func mailto(addr, subject, body string) string {
	var b strings.Builder
	b.WriteString("mailto:")
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		if isUnreserved(c) || c == '@' || c == '+' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
		}
	}
	sep := "?"
	for _, f := range [][2]string{{"subject", subject}, {"body", body}} {
		if f[1] == "" {
			continue
		}
		b.WriteString(sep + f[0] + "=" + strings.ReplaceAll(url.QueryEscape(f[1]), "+", "%20"))
		sep = "&"
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
