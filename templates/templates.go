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
	"path/filepath"
	"strings"
	texttemplate "text/template"
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
	Entries    []Entry
	Ignored    []string // lines that were not commands
	Help       bool     // append the help text
	Cut        bool     // commands past the limit were not read
	MaxCmds    int
	Summary    string
}

// Notice is a one-off message from the bot, such as the rate-limit notice.
type Notice struct {
	BotName    string
	BotAddress string
	Text       string
}

// Set is the parsed templates.
type Set struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// New parses the embedded templates, with files of the same name in
// overrideDir (if not "") taking their place.
func New(overrideDir string) (*Set, error) {
	files, err := fs.Sub(embedded, "files")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	read := func(name string) (string, error) {
		if overrideDir != "" {
			data, err := os.ReadFile(filepath.Join(overrideDir, name))
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
	s := &Set{text: texttemplate.New("text"), html: htmltemplate.New("html")}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for _, e := range entries {
		body, err := read(e.Name())
		if err != nil {
			return nil, err
		}
		// Text templates go into both sets, so an HTML page can include
		// the help text (escaped) instead of keeping a second copy.
		if filepath.Ext(e.Name()) != ".html" {
			_, err = s.text.New(e.Name()).Parse(body)
		}
		if err == nil {
			_, err = s.html.New(e.Name()).Parse(body)
		}
		if err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", e.Name(), err)
		}
	}
	return s, nil
}

// Reply renders a reply transcript as text and HTML.
func (s *Set) Reply(r Reply) (text, html string, err error) {
	return s.render("reply", r)
}

// Notice renders a one-off notice as text and HTML.
func (s *Set) Notice(n Notice) (text, html string, err error) {
	return s.render("notice", n)
}

// Phrase renders one of the sentences of phrases.txt with its data: the
// words the pipeline puts into a transcript line or a notice.
func (s *Set) Phrase(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := s.text.ExecuteTemplate(&b, name, data); err != nil {
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

// Help renders the help text alone, for `mailbot help`.
func (s *Set) Help(botAddress string) (string, error) {
	var b bytes.Buffer
	if err := s.text.ExecuteTemplate(&b, "help.txt", Reply{BotAddress: botAddress}); err != nil {
		return "", fmt.Errorf("render help: %w", err)
	}
	return b.String(), nil
}

func (s *Set) render(name string, data any) (string, string, error) {
	var t, h bytes.Buffer
	if err := s.text.ExecuteTemplate(&t, name+".txt", data); err != nil {
		return "", "", fmt.Errorf("render %s.txt: %w", name, err)
	}
	if err := s.html.ExecuteTemplate(&h, name+".html", data); err != nil {
		return "", "", fmt.Errorf("render %s.html: %w", name, err)
	}
	// Templates open with their first block on a line of its own.
	return strings.TrimLeft(t.String(), "\n"), h.String(), nil
}
