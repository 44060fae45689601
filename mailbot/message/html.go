package message

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/html"
)

// HTMLToText renders an HTML mail body as the text its reader sees, for the
// command parser. Paragraphs, divs, list items, table rows, headings and <br>
// make lines; whitespace collapses within a line as in a browser; scripts,
// styles and the head are dropped, and so is text the reader cannot see
// (see look.go). The text ends at the first quoted or forwarded message
// (Gmail, Outlook, Apple Mail, Thunderbird and Yahoo containers), and Gmail
// and Outlook signature blocks are left out. Typographic quotes and no-break
// spaces are normalised as in Message.Text. r must be UTF-8.
//
// HTML nested deeper than a browser's parser allows is read up to there,
// and the error (errHTMLTooDeep) says the rest was not.
func HTMLToText(r io.Reader) (string, error) {
	own, _, err := renderHTML(r)
	return own, err
}

// errHTMLTooDeep reports HTML cut where its elements nest too deep.
var errHTMLTooDeep = errors.New("message: HTML nested too deep: the rest is not read")

// renderHTML parses an HTML body once and renders what HTMLToText returns
// (own); visible renders, when called, every line the reader sees, quotes,
// forwarded messages and signatures included.
func renderHTML(r io.Reader) (own string, visible func() string, err error) {
	none := func() string { return "" }
	src, err := io.ReadAll(r)
	if err != nil {
		return "", none, fmt.Errorf("message: reading HTML: %w", err)
	}
	doc, err := parseBounded(string(src))
	if doc == nil {
		return "", none, err
	}
	st := readStyles(doc)
	return render(doc, st, true), func() string { return render(doc, st, false) }, err
}

// parseBounded parses HTML as a browser does (html.Parse, the HTML
// standard's tree construction). html.Parse refuses more than 512 open
// elements; then the document is cut before the start tag that nests too
// deep, counted naively, and parsed again, cutting earlier until it parses.
func parseBounded(src string) (*html.Node, error) {
	doc, err := html.Parse(strings.NewReader(src))
	if err == nil {
		return doc, nil
	}
	for limit := 400; limit >= 16; limit /= 2 {
		if doc, err := html.Parse(strings.NewReader(cutAtDepth(src, limit))); err == nil {
			return doc, errHTMLTooDeep
		}
	}
	return nil, fmt.Errorf("message: reading HTML: %w", err)
}

// cutAtDepth returns src up to the first start tag that opens more than
// limit elements, counting every start tag that is not void as opened and
// every end tag as closed.
func cutAtDepth(src string, limit int) string {
	z := html.NewTokenizer(strings.NewReader(src))
	depth, offset := 0, 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return src
		case html.StartTagToken:
			name, _ := z.TagName()
			if !isVoid(string(name)) {
				if depth++; depth > limit {
					return src[:offset]
				}
			}
		case html.EndTagToken:
			depth = max(depth-1, 0)
		}
		offset += len(z.Raw())
	}
}

// render walks the tree. With ownText it stops at the first quote and
// leaves signatures out.
func render(doc *html.Node, st *sheet, ownText bool) string {
	r := renderer{sheet: st, ownText: ownText}
	r.walk(doc, defaultLook(), 0)
	return r.out.String()
}

// maxRenderDepth bounds the recursion; parseBounded keeps the tree within
// 512 open elements already.
const maxRenderDepth = 600

type renderer struct {
	out     htmlText
	sheet   *sheet
	ownText bool
	stopped bool // a quote was reached: nothing more is the sender's
}

func (r *renderer) walk(n *html.Node, lk look, depth int) {
	switch n.Type {
	case html.TextNode:
		if lk.showsText() {
			r.out.text(n.Data)
		}
		return
	case html.DocumentNode:
		r.children(n, lk, depth)
		return
	case html.ElementNode:
	default:
		return // comments, doctype
	}
	if depth > maxRenderDepth {
		return
	}
	a := readAttrs(n)
	if r.ownText && isQuote(n.Data, a) {
		r.stopped = true
		return
	}
	if r.ownText && isSignature(a) {
		return
	}
	lk, gone := r.sheet.lookOf(n, a, lk)
	if gone {
		return
	}
	r.out.start(n.Data)
	r.children(n, lk, depth)
	r.out.end(n.Data)
}

// children walks n's children, leaving out what a closed <details> and
// Outlook's conditional comments hide.
func (r *renderer) children(n *html.Node, lk look, depth int) {
	notOutlook := false
	for c := n.FirstChild; c != nil && !r.stopped; c = c.NextSibling {
		if c.Type == html.CommentNode {
			notOutlook = outlookHides(c.Data, notOutlook)
			continue
		}
		if notOutlook || closedDetails(n, c) {
			continue
		}
		r.walk(c, lk, depth+1)
	}
}

// outlookHides follows Outlook's conditional comments among siblings:
// between <!--[if !mso]><!--> and <!--<![endif]--> is HTML that Outlook
// for Windows does not show (the other clients do; the bot reads neither).
func outlookHides(comment string, inside bool) bool {
	c := strings.ToLower(strings.Join(strings.Fields(comment), ""))
	switch {
	case strings.HasPrefix(c, "[if!mso") || strings.HasPrefix(c, "[if!(mso"):
		return true
	case strings.Contains(c, "[endif]"):
		return false
	}
	return inside
}

// closedDetails tells the content of a <details> element without the open
// attribute, which shows only its first <summary> (HTML section 4.11.1).
func closedDetails(parent, c *html.Node) bool {
	if parent.Type != html.ElementNode || parent.Data != "details" || hasAttr(parent, "open") {
		return false
	}
	for s := parent.FirstChild; s != nil; s = s.NextSibling {
		if s.Type == html.ElementNode && s.Data == "summary" {
			return c != s
		}
	}
	return true
}

func hasAttr(n *html.Node, key string) bool {
	_, ok := attr(n, key)
	return ok
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// attrs holds the attributes that tell quotes and signatures apart. Ids and
// classes lose the "x_" prefixes Outlook on the web puts before those of
// a message it quotes.
type attrs struct {
	id, class, typ, style, tabindex, smartmail string
}

func readAttrs(n *html.Node) attrs {
	var a attrs
	for _, at := range n.Attr {
		switch at.Key {
		case "id":
			a.id = stripOWA(strings.ToLower(at.Val))
		case "class":
			a.class = strings.ToLower(at.Val)
		case "type":
			a.typ = strings.ToLower(at.Val)
		case "style":
			a.style = strings.ToLower(strings.Join(strings.Fields(at.Val), ""))
		case "tabindex":
			a.tabindex = at.Val
		case "data-smartmail":
			a.smartmail = at.Val
		}
	}
	return a
}

// classes are the element's class names, lowercased, without "x_".
func (a attrs) classes() []string {
	cs := strings.Fields(a.class)
	for i, c := range cs {
		cs[i] = stripOWA(c)
	}
	return cs
}

func stripOWA(s string) string {
	for strings.HasPrefix(s, "x_") {
		s = s[2:]
	}
	return s
}

// isQuote tells the start of a quoted or forwarded message, where the
// sender's text ends.
func isQuote(tag string, a attrs) bool {
	switch tag {
	case "blockquote":
		// Apple Mail and Thunderbird quote with type="cite" (Apple Mail
		// puts its forwards there too), Gmail with a border; their indent
		// button makes a borderless blockquote.
		return a.typ == "cite" || !strings.Contains(a.style, "border:none")
	case "hr":
		return a.tabindex == "-1" // Outlook, above its reply header
	case "div":
		// Outlook desktop (Word): the reply or forward header is in a div
		// with a top border.
		if strings.Contains(a.style, "border:none") && strings.Contains(a.style, "border-top:solid") {
			return true
		}
	}
	switch a.id {
	case "divrplyfwdmsg", "appendonsend", // Outlook
		"mail-editor-reference-message-container", "olk_src_body_section": // Outlook for Mac
		return true
	}
	if strings.Contains(a.id, "yahoo_quoted") {
		return true // Yahoo, also as "ydp…yahoo_quoted_…" when quoted again
	}
	for _, c := range a.classes() {
		switch {
		case c == "gmail_quote", c == "gmail_quote_container", // Gmail's replies and forwards
			c == "moz-cite-prefix", c == "moz-forward-container", c == "moz-email-headers-table", // Thunderbird
			c == "outlookmessageheader",  // older Outlook
			c == "appleoriginalcontents", // Apple Mail
			c == "protonmail_quote",
			strings.Contains(c, "yahoo_quoted"):
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
	if isVoid(tag) {
		return
	}
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
