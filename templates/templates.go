// Package templates holds every word a user reads: the reply transcript,
// the help text and notices, as text and HTML. The files are embedded in
// the binary; an operator may override any of them from a directory.
//
// Templates are parsed once (New), never per message.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

//go:embed files
var embedded embed.FS

// Entry is one command of a transcript and its result.
type Entry struct {
	Command string   // the line as the sender wrote it
	Status  string   // OK, VERIFIED, NOT VERIFIED, ERROR or DENIED
	Text    string   // the sentence after the status word
	Detail  []string // listing lines shown under the result
}

// Reply is what a reply to a command email shows.
type Reply struct {
	BotName    string
	BotAddress string
	// Lead is the answer in one line, shown first, above the transcript:
	// what a phone shows without scrolling (a single verify's VERIFIED or
	// NOT VERIFIED line, or why a message got the help). "" for none.
	Lead    string
	Entries []Entry
	Ignored []string // lines that were not commands
	Help    bool     // append the help text
	Cut     bool     // commands past the limit were not read
	MaxCmds int
	Summary string
	// For is whom the help is for: it shows each reader only what they may
	// do. Contact is whom to ask (bot.contact; "" names no one), Sender the
	// address the reply answers, ExampleDate a date ahead (YYYY-MM-DD) for
	// the help's examples.
	For         Audience
	Contact     string
	Sender      string
	ExampleDate string
}

// Audience is whom a help text is for: a member of a participating space,
// a space manager, a network admin, or, none of these, a stranger. A
// person may be several.
type Audience struct {
	Member, Manager, Admin bool
}

// Everyone is the audience of the whole help (mailbot help).
var Everyone = Audience{Member: true, Manager: true, Admin: true}

// Stranger reports whether the reader is none of the others: someone
// whose mail authenticates, on no roster and managing no space.
func (a Audience) Stranger() bool { return !a.Member && !a.Manager && !a.Admin }

// Notice is a one-off message from the bot, such as the rate-limit notice
// or a visit notice to a host's managers.
type Notice struct {
	BotName    string
	BotAddress string
	Text       string
	Lines      []string // shown below Text, one a line
}

// Set is the parsed templates and catalogs, in every language they have.
type Set struct {
	langs   map[string]*Lang // by language code
	codes   []string         // the codes, sorted
	matcher language.Matcher
	tags    []language.Tag // in the order of codes, for the matcher
	en      *Lang
}

// Lang is the templates of one language, with the printer that puts the
// code's sentences into its words.
type Lang struct {
	code string
	p    *message.Printer
	text *texttemplate.Template
	html *htmltemplate.Template
}

// New parses the embedded templates and catalogs, with files of the same
// name in overrideDir (if not "") taking their place. A catalog in
// overrideDir's i18n directory replaces the embedded one of its language,
// or adds a language (i18n/it.po).
func New(overrideDir string) (*Set, error) {
	files, err := fs.Sub(embedded, "files")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	read := func(name string) (string, error) {
		if overrideDir != "" {
			data, err := os.ReadFile(filepath.Join(overrideDir, filepath.FromSlash(name)))
			if err == nil {
				return string(data), nil
			}
			if !os.IsNotExist(err) {
				return "", fmt.Errorf("templates: %w", err)
			}
		}
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return "", fmt.Errorf("templates: %w", err)
		}
		return string(data), nil
	}
	cat, tags, err := loadCatalogs(files, overrideDir, read)
	if err != nil {
		return nil, err
	}
	// Parse once, with stand-ins for the functions that need a language;
	// each language gets a clone with its own.
	text, html := texttemplate.New("text").Funcs(funcs(nil)), htmltemplate.New("html").Funcs(funcs(nil))
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := read(e.Name())
		if err != nil {
			return nil, err
		}
		// Text templates go into both sets, so an HTML page can include
		// the help text (escaped) instead of keeping a second copy.
		if filepath.Ext(e.Name()) != ".html" {
			_, err = text.New(e.Name()).Parse(body)
		}
		if err == nil {
			_, err = html.New(e.Name()).Parse(body)
		}
		if err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", e.Name(), err)
		}
	}
	s := &Set{langs: map[string]*Lang{}, tags: tags}
	for _, tag := range tags {
		l := &Lang{code: tag.String(), p: message.NewPrinter(tag, message.Catalog(cat))}
		if l.text, err = text.Clone(); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if l.html, err = html.Clone(); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		l.text.Funcs(funcs(l))
		l.html.Funcs(funcs(l))
		s.langs[l.code] = l
		s.codes = append(s.codes, l.code)
	}
	s.en = s.langs[sourceLanguage]
	s.matcher = language.NewMatcher(tags)
	return s, nil
}

// loadCatalogs reads the catalogs: the embedded ones, each replaced by the
// operator's file of the same name, and the operator's other languages.
func loadCatalogs(files fs.FS, overrideDir string, read func(string) (string, error)) (*catalog.Builder, []language.Tag, error) {
	names := map[string]bool{}
	embeddedPO, err := fs.Glob(files, catalogDir+"/*.po")
	if err != nil {
		return nil, nil, fmt.Errorf("templates: %w", err)
	}
	for _, n := range embeddedPO {
		names[path.Base(n)] = true
	}
	if overrideDir != "" {
		own, err := filepath.Glob(filepath.Join(overrideDir, catalogDir, "*.po"))
		if err != nil {
			return nil, nil, fmt.Errorf("templates: %w", err)
		}
		for _, n := range own {
			names[filepath.Base(n)] = true
		}
	}
	langs := map[string][]entry{}
	for name := range names {
		body, err := read(catalogDir + "/" + name)
		if err != nil {
			return nil, nil, err
		}
		entries, err := parsePO(name, []byte(body))
		if err != nil {
			return nil, nil, fmt.Errorf("templates: %w", err)
		}
		langs[strings.ToLower(strings.TrimSuffix(name, ".po"))] = entries
	}
	b, tags, err := buildCatalog(langs)
	if err != nil {
		return nil, nil, fmt.Errorf("templates: %w", err)
	}
	return b, tags, nil
}

// embeddedSet is the embedded files alone, parsed on first use.
var embeddedSet = sync.OnceValues(func() (*Set, error) { return New("") })

// Embedded is the set of the embedded files alone, parsed once: the words
// of code that has no configured set at hand (a command run without a
// printer, a test). It panics if the embedded files do not parse, which
// the package's tests rule out.
func Embedded() *Set {
	s, err := embeddedSet()
	if err != nil {
		panic(err)
	}
	return s
}

// Languages are the codes of the languages the set speaks, sorted.
func (s *Set) Languages() []string { return slices.Clone(s.codes) }

// Supports reports whether code names one of the set's languages exactly.
func (s *Set) Supports(code string) bool {
	_, ok := s.langs[code]
	return ok
}

// In is the set in a language: the one code names ("fr"), or the closest
// ("fr-CA" gets fr); English when there is none.
func (s *Set) In(code string) *Lang {
	if l, ok := s.langs[code]; ok {
		return l
	}
	tag, err := language.Parse(code)
	if err != nil {
		return s.en
	}
	_, i, conf := s.matcher.Match(tag)
	if conf == language.No {
		return s.en
	}
	return s.langs[s.codes[i]]
}

// English is the set in English.
func (s *Set) English() *Lang { return s.en }

// Code is the language's code, as a space's language= names it.
func (l *Lang) Code() string { return l.code }

// Printer puts message ids into the language's words.
func (l *Lang) Printer() *message.Printer { return l.p }

// Sprintf renders a message id in the language.
func (l *Lang) Sprintf(id string, args ...any) string { return Sprintf(l.p, id, args...) }

// The Set's own rendering methods speak English, the network's language
// where nothing else is known.

// Reply renders a reply transcript in English.
func (s *Set) Reply(r Reply) (text, html string, err error) { return s.en.Reply(r) }

// Notice renders a notice in English.
func (s *Set) Notice(n Notice) (text, html string, err error) { return s.en.Notice(n) }

// Phrase renders a phrase in English.
func (s *Set) Phrase(name string, data any) (string, error) { return s.en.Phrase(name, data) }

// Help renders the help text in English.
func (s *Set) Help(botAddress string) (string, error) { return s.en.Help(botAddress) }

// Printer is the English printer.
func (s *Set) Printer() *message.Printer { return s.en.p }

// Reply renders a reply transcript as text and HTML.
func (l *Lang) Reply(r Reply) (text, html string, err error) {
	view := ReplyView{Reply: r}
	if r.Help {
		// With the reply itself: the help says what its reader may do.
		help, err := l.helpText(r)
		if err != nil {
			return "", "", err
		}
		view.HelpLines = helpLines(help)
	}
	return l.renderEach("reply", r, view)
}

// ReplyView is what reply.html shows: the reply, and its help text cut
// into blocks that fit a phone (HelpLines, when Help is set).
type ReplyView struct {
	Reply
	HelpLines []HelpLine
}

// Notice renders a one-off notice as text and HTML.
func (l *Lang) Notice(n Notice) (text, html string, err error) {
	return l.render("notice", n)
}

// Phrase renders one of the sentences of phrases.txt with its data: the
// words the pipeline puts into a transcript line or a notice.
func (l *Lang) Phrase(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := l.text.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render phrase %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// Count is how many results of one status a transcript has, for the
// summary phrase.
type Count struct {
	N      int
	Status string
}

// Summary is the data of the summary phrase, the closing line of a
// transcript.
type Summary struct {
	Total   int     // commands
	Counts  []Count // by status, in the order of the status words
	Ignored int     // lines that were not commands
}

// Statuses are the counts by status word, as every language shows them
// ("3 OK, 1 ERROR"): the status words stay, for scripts.
func (s Summary) Statuses() string {
	parts := make([]string, len(s.Counts))
	for i, c := range s.Counts {
		parts[i] = strconv.Itoa(c.N) + " " + c.Status
	}
	return strings.Join(parts, ", ")
}

// Help renders the help text alone, for `mailbot help`: everything, for
// everyone.
func (l *Lang) Help(botAddress string) (string, error) {
	return l.helpText(Reply{BotAddress: botAddress, For: Everyone, ExampleDate: time.Now().AddDate(0, 0, 14).Format(time.DateOnly)})
}

func (l *Lang) helpText(r Reply) (string, error) {
	var b bytes.Buffer
	if err := l.text.ExecuteTemplate(&b, "help.txt", r); err != nil {
		return "", fmt.Errorf("render help: %w", err)
	}
	return strings.TrimRight(b.String(), "\n") + "\n", nil
}

func (l *Lang) render(name string, data any) (string, string, error) {
	return l.renderEach(name, data, data)
}

// renderEach renders name.txt with textData and name.html with htmlData.
func (l *Lang) renderEach(name string, textData, htmlData any) (string, string, error) {
	var t, h bytes.Buffer
	if err := l.text.ExecuteTemplate(&t, name+".txt", textData); err != nil {
		return "", "", fmt.Errorf("render %s.txt: %w", name, err)
	}
	if err := l.html.ExecuteTemplate(&h, name+".html", htmlData); err != nil {
		return "", "", fmt.Errorf("render %s.html: %w", name, err)
	}
	// Templates open with their first block on a line of its own.
	return strings.TrimLeft(t.String(), "\n"), h.String(), nil
}
