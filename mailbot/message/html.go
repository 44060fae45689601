package message

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/html"
)

// HTMLToText renders an HTML mail body as the text its reader sees, for the
// command parser. Paragraphs, divs, list items, table rows, headings and <br>
// make lines; whitespace collapses within a line as in a browser; scripts,
// styles and the head are dropped. The text ends at the first quoted message
// (Gmail, Outlook, Apple Mail, Thunderbird and Yahoo containers), and Gmail
// and Outlook signature blocks are left out. Typographic quotes and no-break
// spaces are normalised as in Message.Text. r must be UTF-8.
func HTMLToText(r io.Reader) (string, error) {
	z := html.NewTokenizer(r)
	var t htmlText
	skip, skipDepth := "", 0 // the element being left out, and its nesting
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return t.String(), fmt.Errorf("message: reading HTML: %w", err)
			}
			return t.String(), nil
		case html.TextToken:
			if skip == "" {
				t.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			if skip != "" {
				if tag == skip && tt == html.StartTagToken {
					skipDepth++
				}
				if skip != "head" || tag != "body" { // a <body> ends an unclosed <head>
					continue
				}
				skip = ""
			}
			a := readAttrs(z, hasAttr)
			if isQuote(tag, a) {
				return t.String(), nil
			}
			if tt == html.StartTagToken && !isVoid(tag) && (isHidden(tag) || isSignature(a)) {
				skip, skipDepth = tag, 1
				continue
			}
			t.start(tag)
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if skip != "" {
				if tag == skip {
					if skipDepth--; skipDepth == 0 {
						skip = ""
					}
				}
				continue
			}
			t.end(tag)
		}
	}
}

// attrs holds the attributes that tell quotes and signatures apart.
type attrs struct {
	id, class, typ, style, tabindex, smartmail string
}

func readAttrs(z *html.Tokenizer, more bool) attrs {
	var a attrs
	for more {
		var k, v []byte
		k, v, more = z.TagAttr()
		switch string(k) {
		case "id":
			a.id = strings.ToLower(string(v))
		case "class":
			a.class = strings.ToLower(string(v))
		case "type":
			a.typ = strings.ToLower(string(v))
		case "style":
			a.style = strings.ToLower(strings.Join(strings.Fields(string(v)), ""))
		case "tabindex":
			a.tabindex = string(v)
		case "data-smartmail":
			a.smartmail = string(v)
		}
	}
	return a
}

// isQuote tells the start of a quoted message, where the sender's text ends.
func isQuote(tag string, a attrs) bool {
	switch tag {
	case "blockquote":
		// Apple Mail and Thunderbird quote with type="cite", Gmail with a
		// border; their indent button makes a borderless blockquote.
		return a.typ == "cite" || !strings.Contains(a.style, "border:none")
	case "hr":
		return a.tabindex == "-1" // Outlook, above its reply header
	case "div":
		// Outlook desktop (Word): the reply header is in a div with a top border.
		if strings.Contains(a.style, "border:none") && strings.Contains(a.style, "border-top:solid") {
			return true
		}
	}
	switch a.id {
	case "divrplyfwdmsg", "appendonsend", // Outlook
		"mail-editor-reference-message-container", "olk_src_body_section": // Outlook for Mac
		return true
	}
	if strings.HasPrefix(a.id, "yahoo_quoted") {
		return true
	}
	for _, c := range strings.Fields(a.class) {
		switch c {
		case "gmail_quote", "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote":
			return true
		}
	}
	return false
}

// isSignature tells Gmail's and Outlook's signature blocks.
func isSignature(a attrs) bool {
	return a.id == "signature" || a.smartmail == "gmail_signature" ||
		strings.Contains(" "+a.class+" ", " gmail_signature ")
}

// isHidden tells elements whose content is not shown.
func isHidden(tag string) bool {
	switch tag {
	case "head", "script", "style", "title", "template":
		return true
	}
	return false
}

// isVoid tells elements without an end tag (HTML section 13.1.2).
func isVoid(tag string) bool {
	switch tag {
	case "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr":
		return true
	}
	return false
}

// isBlock tells elements that start and end a line.
func isBlock(tag string) bool {
	switch tag {
	case "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "div", "dl", "dt",
		"fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
		"html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tr", "ul":
		return true
	}
	return false
}

// htmlText collects rendered lines.
type htmlText struct {
	lines []string
	line  strings.Builder
	space bool // collapsed whitespace waiting for the next word
	pre   int  // depth inside <pre>, where whitespace is kept
}

func (t *htmlText) text(s string) {
	for _, r := range s {
		switch {
		case t.pre > 0 && r == '\n':
			t.newline()
		case t.pre > 0:
			if r != '\r' {
				t.line.WriteRune(r)
			}
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f':
			t.space = t.line.Len() > 0
		default:
			if t.space {
				t.line.WriteByte(' ')
				t.space = false
			}
			t.line.WriteRune(r)
		}
	}
}

func (t *htmlText) newline() {
	t.lines = append(t.lines, t.line.String())
	t.line.Reset()
	t.space = false
}

// block ends the current line, if it has anything.
func (t *htmlText) block() {
	if t.line.Len() > 0 {
		t.newline()
	}
}

func (t *htmlText) start(tag string) {
	switch {
	case tag == "br":
		t.newline()
	case tag == "td" || tag == "th":
		t.space = t.line.Len() > 0
	case isBlock(tag):
		t.block()
	}
	if tag == "pre" {
		t.pre++
	}
}

func (t *htmlText) end(tag string) {
	if isBlock(tag) {
		t.block()
	}
	if tag == "pre" && t.pre > 0 {
		t.pre--
	}
}

// String returns the lines so far, normalised, without blank lines around.
func (t *htmlText) String() string {
	t.block()
	lines := make([]string, len(t.lines))
	for i, l := range t.lines {
		lines[i] = strings.TrimRight(normaliseQuotes(l), " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}
