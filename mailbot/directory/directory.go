// Package directory publishes the participating spaces on the bot's web
// listener (http.listen), for anyone: / lists them by country with a
// search by city or country, /spaces/ID shows one space's terms and how a
// member asks the bot for a visit, and /spaces.json gives the same data to
// other sites.
//
// The store is the truth: every request reads it (through a listing kept
// only while the store's generation is unchanged, see listing), so a space
// that is removed is gone from the next page served. Only spaces are
// shown: nothing of any member or manager.
//
// The pages are html/template files of package templates (directory.html,
// space.html), in the language the visitor's Accept-Language asks for
// where a catalog has it. They load nothing: no script, no font, no image,
// one inline style sheet allowed by its hash in the Content-Security-Policy.
package directory

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/text/language"

	"github.com/coworkingvisa/mailbot/mailbot/web"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// DefaultPageSize is how many spaces a page of the list shows. A network
// of 10,000 spaces then serves pages of about 60 KB (see BENCHMARKS.md).
const DefaultPageSize = 100

// maxQuery is the longest search the directory reads, in bytes.
const maxQuery = 100

// Options tune a Directory.
type Options struct {
	// BotAddress is where members write to ask for a visit (bot.address).
	BotAddress string
	// Language is the network's language (bot.language): the language
	// of a space that names none.
	Language string
	// PageSize is how many spaces a page lists; 0 means DefaultPageSize.
	PageSize int
	// Log receives the failures to read the store or render a page; nil
	// logs nothing.
	Log *slog.Logger
}

// Directory serves the public pages of the spaces.
type Directory struct {
	db   *storage.DB
	tmpl *templates.Set
	opts Options
	// codes are the languages of the catalogs, English first: the
	// matcher answers with its first language when none fits.
	codes   []string
	matcher language.Matcher
	// csp is the Content-Security-Policy of the pages: nothing from
	// anywhere, but the pages' own style sheet.
	csp string

	build sync.Mutex // one rebuild of the listing at a time
	cur   atomic.Pointer[listing]
	seed  maphash.Seed // of the hashes of the spaces' records
}

// New makes the directory of db's spaces, worded by tmpl.
func New(db *storage.DB, tmpl *templates.Set, opts Options) (*Directory, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	d := &Directory{db: db, tmpl: tmpl, opts: opts, codes: []string{"en"}, seed: maphash.MakeSeed()}
	for _, c := range tmpl.Languages() {
		if c != "en" {
			d.codes = append(d.codes, c)
		}
	}
	tags := make([]language.Tag, len(d.codes))
	for i, c := range d.codes {
		tags[i] = language.Make(c)
	}
	d.matcher = language.NewMatcher(tags)
	// The style sheet is the same in every language; its hash lets the
	// browser apply it while the policy forbids every other style.
	var css bytes.Buffer
	if err := tmpl.English().Page(&css, styleTemplate, nil); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	sum := sha256.Sum256(css.Bytes())
	d.csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	return d, nil
}

// styleTemplate is the template of the pages' style sheet, which they
// include in their <style> element.
const styleTemplate = "directory-style"

// Register adds the directory's routes to the web listener, for every
// peer.
func (d *Directory) Register(s *web.Server) {
	s.Handle("GET /{$}", http.HandlerFunc(d.serveIndex))
	s.Handle("GET /spaces/{id}", http.HandlerFunc(d.serveSpace))
	s.Handle("GET /spaces.json", http.HandlerFunc(d.serveJSON))
}

// current is the listing of the store as it is now: the kept one when
// no space has changed since it was built, else a new one.
func (d *Directory) current() (*listing, error) {
	var l *listing
	err := d.db.View(func(tx *storage.Tx) error {
		if cur := d.cur.Load(); cur != nil && cur.gen == tx.Generation() {
			l = cur
		}
		return nil
	})
	if err != nil || l != nil {
		return l, err
	}
	// The store changed: one request looks, the others wait for it
	// rather than reading every space at the same time.
	d.build.Lock()
	defer d.build.Unlock()
	err = d.db.View(func(tx *storage.Tx) error {
		gen := tx.Generation()
		cur := d.cur.Load()
		if cur != nil && cur.gen == gen {
			l = cur
			return nil
		}
		var h maphash.Hash
		h.SetSeed(d.seed)
		if err := tx.HashSpaces(&h); err != nil {
			return err
		}
		sum := h.Sum64()
		if cur != nil && cur.sum == sum {
			l = cur.at(gen) // other records changed, not the spaces
		} else {
			spaces, err := tx.Spaces()
			if err != nil {
				return err
			}
			l = newListing(gen, sum, spaces)
		}
		d.cur.Store(l)
		return nil
	})
	return l, err
}

// lang is the language the request's Accept-Language asks for among the
// catalogs; English when none fits.
func (d *Directory) lang(r *http.Request) *templates.Lang {
	_, i := language.MatchStrings(d.matcher, r.Header.Get("Accept-Language"))
	return d.tmpl.In(d.codes[i])
}

// unavailable answers when the store cannot be read.
func (d *Directory) unavailable(w http.ResponseWriter, l *templates.Lang, err error) {
	d.opts.Log.Error("directory: cannot read the store", "error", err)
	w.Header().Set("Retry-After", "30")
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, l.Sprintf("The directory cannot be read right now. Please try again in a moment."), http.StatusServiceUnavailable)
}

// page renders an HTML page and sends it.
func (d *Directory) page(w http.ResponseWriter, r *http.Request, l *templates.Lang, status int, name string, data any) {
	var b bytes.Buffer
	if err := l.Page(&b, name, data); err != nil {
		d.opts.Log.Error("directory: cannot render a page", "page", name, "error", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", l.Code())
	h.Set("Vary", "Accept-Language")
	h.Set("Content-Security-Policy", d.csp)
	h.Set("Referrer-Policy", "no-referrer")
	send(w, r, status, b.Bytes(), "")
}

// send writes a response body with its validator, tag (etag(body)
// when ""). Every answer may be
// stored, but must be checked with the server before each use
// (Cache-Control: no-cache, RFC 9111 §5.2.2.4): the directory is current
// at every load, and an unchanged page costs a 304 (RFC 9110 §13.1.2).
func send(w http.ResponseWriter, r *http.Request, status int, body []byte, tag string) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	if status == http.StatusOK {
		if tag == "" {
			tag = etag(body)
		}
		h.Set("ETag", tag)
		if noneMatch(r.Header.Get("If-None-Match"), tag) {
			h.Del("Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// etag is a strong entity tag over a body: the same bytes, the same tag,
// whatever else the store went through meanwhile.
func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// noneMatch reports whether an If-None-Match field names tag, by the weak
// comparison RFC 9110 §13.1.2 asks for ("*" names every tag).
func noneMatch(field, tag string) bool {
	for _, t := range strings.Split(field, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}
