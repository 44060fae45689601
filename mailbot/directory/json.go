package directory

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/coworkingvisa/mailbot/storage"
)

// jsonDirectory is /spaces.json: the spaces the list shows, with the same
// filters (?q=, ?country=), in the list's order and without pages.
type jsonDirectory struct {
	Bot    string      `json:"bot"` // where members write to ask for a visit
	Spaces []jsonSpace `json:"spaces"`
}

// jsonSpace is one space. Every key is always there; "" where the space
// said nothing.
type jsonSpace struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	City     string `json:"city"`
	Country  string `json:"country"`
	TimeZone string `json:"time_zone"`
	Language string `json:"language"` // the code of the language its hosts speak with the bot
	Terms    string `json:"terms"`
	Hours    string `json:"hours"`
	// Free days a visitor has per calendar month: a number, or null
	// when the space has not said or gives unlimited days (then
	// free_days_unlimited is true).
	FreeDaysPerMonth  *int   `json:"free_days_per_month"`
	FreeDaysUnlimited bool   `json:"free_days_unlimited"`
	NoticeDays        int    `json:"notice_days"` // days ahead a visit must be asked for
	Page              string `json:"page"`        // the space's page, relative to /spaces.json
	Visit             struct {
		Command string `json:"command"` // the line to write to the bot, the day in place of YYYY-MM-DD
		Mailto  string `json:"mailto"`  // a mailto: URL that writes it
	} `json:"visit"`
}

func (d *Directory) serveJSON(w http.ResponseWriter, r *http.Request) {
	list, err := d.current()
	if err != nil {
		d.unavailable(w, d.lang(r), err)
		return
	}
	f := filterOf(r)
	var body []byte
	var tag string
	if f == (filter{}) {
		c := list.json
		c.once.Do(func() {
			if c.body, c.err = d.encodeJSON(list.spaces); c.err == nil {
				c.tag = etag(c.body)
			}
		})
		body, tag, err = c.body, c.tag, c.err
	} else {
		body, err = d.encodeJSON(list.match(f))
	}
	if err != nil {
		d.opts.Log.Error("directory: cannot encode the spaces", "error", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	// Public data, for other sites' pages to fetch.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	send(w, r, http.StatusOK, body, tag)
}

// encodeJSON is /spaces.json of the spaces.
func (d *Directory) encodeJSON(spaces []entry) ([]byte, error) {
	out := jsonDirectory{Bot: d.opts.BotAddress, Spaces: make([]jsonSpace, len(spaces))}
	for i, e := range spaces {
		s := jsonSpace{ID: e.ID, Name: e.Name, City: strings.TrimSpace(e.City), Country: strings.TrimSpace(e.Country),
			TimeZone: e.TZ, Language: e.Language, Terms: strings.TrimSpace(e.Terms), Hours: strings.TrimSpace(e.Hours),
			NoticeDays: e.NoticeDays, Page: "spaces/" + url.PathEscape(e.ID)}
		if s.Language == "" {
			s.Language = d.opts.Language
		}
		if e.FreeDays != nil {
			if *e.FreeDays == storage.FreeDaysUnlimited {
				s.FreeDaysUnlimited = true
			} else {
				n := max(*e.FreeDays, 0)
				s.FreeDaysPerMonth = &n
			}
		}
		s.Visit.Command = visitCommand(e.ID)
		s.Visit.Mailto = mailto(d.opts.BotAddress, visitSubject, s.Visit.Command)
		out.Spaces[i] = s
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // a reader of JSON needs no \u0026 for &
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return body.Bytes(), nil
}
