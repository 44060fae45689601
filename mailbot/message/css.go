package message

import (
	"sort"
	"strings"

	"golang.org/x/net/html"
)

// A <style> element can hide text as well as a style attribute can:
// <style>.x{display:none}</style><span class="x">. The bot does not run a
// CSS engine. A rule whose selector is one plain element name, class or id
// (or several of them, "p.note#a"), outside @media, applies as in a browser.
// Every other rule (combinators, pseudo-classes, attribute selectors, rules
// under @media or @supports, which may or may not apply) is matched on its
// last compound selector alone, which matches more elements than the rule
// does, and is used only to hide: when its declarations would hide text.

// maxRules and maxRuleWork bound the work on hostile style sheets: a
// message with more rules is not read at all, and past maxRuleWork matches
// of a rule to an element the rest of it is not read.
const (
	maxRules    = 500
	maxRuleWork = 2_000_000
)

// sheet is what the bot keeps of a message's style sheets.
type sheet struct {
	plain   ruleSet // in the cascade
	hiding  ruleSet // only hide
	tooMany bool    // over maxRules or maxRuleWork: nothing more is read
	work    int     // rules matched to elements so far
	palette palette
}

// rule is one selector of a rule with the rule's declarations.
type rule struct {
	sel   compound
	decls []decl
}

// ruleSet holds rules indexed by the most telling part of their selector,
// so an element is checked only against rules that may match it.
type ruleSet struct {
	rules []rule
	index map[string][]int
}

func (rs *ruleSet) add(r rule) { rs.rules = append(rs.rules, r) }

// build indexes the rules, after ordering them with less.
func (rs *ruleSet) build(less func(a, b rule) bool) {
	if less != nil {
		sort.SliceStable(rs.rules, func(i, j int) bool { return less(rs.rules[i], rs.rules[j]) })
	}
	rs.index = map[string][]int{}
	for i, r := range rs.rules {
		rs.index[r.sel.key()] = append(rs.index[r.sel.key()], i)
	}
}

// matching returns the indexes of the rules matching an element, in order.
func (rs *ruleSet) matching(tag string, a attrs, classes []string) []int {
	if len(rs.rules) == 0 {
		return nil
	}
	var out []int
	check := func(key string) {
		for _, i := range rs.index[key] {
			if rs.rules[i].sel.matches(tag, a.id, classes) {
				out = append(out, i)
			}
		}
	}
	check("*")
	check(tag)
	if a.id != "" {
		check("#" + a.id)
	}
	seen := map[string]bool{}
	for _, c := range classes {
		if !seen[c] {
			seen[c] = true
			check("." + c)
		}
	}
	sort.Ints(out)
	return out
}

// compound is a compound selector reduced to what the bot matches on.
type compound struct {
	tag     string // "" for any
	id      string
	classes []string
}

// key is the part of the selector the rule is indexed by.
func (c compound) key() string {
	switch {
	case c.id != "":
		return "#" + c.id
	case len(c.classes) > 0:
		return "." + c.classes[0]
	case c.tag != "":
		return c.tag
	}
	return "*"
}

// specificity orders plain rules (Selectors 4 section 17).
func (c compound) specificity() int {
	s := len(c.classes) * 100
	if c.id != "" {
		s += 10000
	}
	if c.tag != "" {
		s++
	}
	return s
}

func (c compound) matches(tag, id string, classes []string) bool {
	if c.tag != "" && c.tag != tag || c.id != "" && c.id != id {
		return false
	}
	for _, want := range c.classes {
		found := false
		for _, h := range classes {
			found = found || h == want
		}
		if !found {
			return false
		}
	}
	return true
}

// palette holds every text and background colour a message sets, to judge
// a hiding-only rule's colour against any background it may land on.
type palette struct {
	texts, backgrounds []rgba
}

// readStyles collects the rules of the document's <style> elements and the
// colours its style attributes and colour attributes set.
func readStyles(doc *html.Node) *sheet {
	st := &sheet{palette: palette{texts: []rgba{black}, backgrounds: []rgba{white}}}
	var css strings.Builder
	var visit func(n *html.Node, depth int)
	visit = func(n *html.Node, depth int) {
		if n.Type == html.ElementNode && depth <= maxRenderDepth {
			if n.Data == "style" {
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					css.WriteString(c.Data)
				}
				css.WriteString("\n")
			}
			st.palette.addElement(n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c, depth+1)
		}
	}
	visit(doc, 0)
	st.parse(css.String(), false)
	for _, r := range append(append([]rule(nil), st.plain.rules...), st.hiding.rules...) {
		st.palette.addDecls(r.decls)
	}
	var hiding ruleSet
	for _, r := range st.hiding.rules {
		if st.hides(r.decls) {
			hiding.add(r)
		}
	}
	st.hiding = hiding
	st.hiding.build(nil)
	st.plain.build(func(a, b rule) bool { return a.sel.specificity() < b.sel.specificity() })
	return st
}

func (p *palette) addElement(n *html.Node) {
	for _, key := range []string{"bgcolor", "color", "text"} {
		if v, ok := attr(n, key); ok {
			if c, ok := legacyColor(v); ok {
				if key == "bgcolor" {
					p.backgrounds = append(p.backgrounds, c)
				} else {
					p.texts = append(p.texts, c)
				}
			}
		}
	}
	if v, ok := attr(n, "style"); ok {
		p.addDecls(parseDecls(v))
	}
}

func (p *palette) addDecls(decls []decl) {
	for _, d := range decls {
		switch d.prop {
		case "color", "-webkit-text-fill-color":
			if c, kind := parseColor(d.value); kind == colorKnown {
				p.texts = append(p.texts, c)
			}
		case "background", "background-color":
			for _, tok := range cssTokens(d.value) {
				if c, kind := parseColor(tok); kind == colorKnown {
					p.backgrounds = append(p.backgrounds, c)
				}
			}
		}
	}
	// Bound the work of hostile input: past this, more colours add little.
	p.texts = p.texts[:min(len(p.texts), 200)]
	p.backgrounds = p.backgrounds[:min(len(p.backgrounds), 200)]
}

// hides reports whether a hiding-only rule's declarations may hide text:
// on their own (display:none, a 1px font …), or because its text colour
// matches a background, or its background a text colour, set anywhere.
func (s *sheet) hides(decls []decl) bool {
	l := defaultLook()
	if apply(&l, defaultLook(), decls) || !l.showsText() {
		return true
	}
	own := palette{}
	own.addDecls(decls)
	seen := func(fg, bg rgba) bool {
		bg = bg.over(white, 1)
		return distinct(fg.over(bg, 1), bg)
	}
	for _, fg := range own.texts {
		for _, bg := range s.palette.backgrounds {
			if !seen(fg, bg) {
				return true
			}
		}
	}
	for _, bg := range own.backgrounds {
		for _, fg := range s.palette.texts {
			if !seen(fg, bg) {
				return true
			}
		}
	}
	return false
}

// parse reads a style sheet: rules, and at-rules whose blocks hold rules
// (@media, @supports …), whose rules only hide. Comments and the "<!--"
// Outlook wraps its sheet in are skipped.
func (s *sheet) parse(css string, conditional bool) {
	css = stripComments(css)
	for css != "" && !s.tooMany {
		open := strings.IndexByte(css, '{')
		if open < 0 {
			return
		}
		if at := strings.IndexByte(css, '@'); at >= 0 && at < open {
			if semi := strings.IndexByte(css[at:open], ';'); semi >= 0 {
				css = css[at+semi+1:] // @import url(…); and the like: no block
				continue
			}
		}
		prelude := strings.TrimSpace(strings.NewReplacer("<!--", "", "-->", "").Replace(css[:open]))
		block, rest := matchBrace(css[open+1:])
		css = rest
		if strings.HasPrefix(prelude, "@") {
			if strings.HasPrefix(prelude, "@media") || strings.HasPrefix(prelude, "@supports") ||
				strings.HasPrefix(prelude, "@layer") || strings.HasPrefix(prelude, "@container") ||
				strings.HasPrefix(prelude, "@document") || strings.HasPrefix(prelude, "@-moz-document") {
				s.parse(block, true)
			}
			continue // @font-face, @page: no elements
		}
		s.addRule(prelude, parseDecls(block), conditional)
	}
}

// addRule adds one rule for each selector of its list.
func (s *sheet) addRule(selectors string, decls []decl, conditional bool) {
	for _, sel := range splitSelectors(selectors) {
		if len(s.plain.rules)+len(s.hiding.rules) >= maxRules {
			s.tooMany = true
			return
		}
		c, plain := lastCompound(strings.ToLower(strings.TrimSpace(sel)))
		if plain && !conditional {
			s.plain.add(rule{sel: c, decls: decls})
		} else {
			s.hiding.add(rule{sel: c, decls: decls})
		}
	}
}

// splitSelectors splits a selector list at commas outside parentheses.
func splitSelectors(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(', '[':
			depth++
		case ')', ']':
			depth = max(depth-1, 0)
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// lastCompound reduces a selector to its last compound selector, without
// pseudo-classes, pseudo-elements and attribute selectors; plain says
// nothing was left out.
func lastCompound(sel string) (c compound, plain bool) {
	plain = true
	// Cut at the last combinator outside brackets.
	depth, start := 0, 0
	for i, r := range sel {
		switch {
		case r == '(' || r == '[':
			depth++
		case r == ')' || r == ']':
			depth = max(depth-1, 0)
		case depth == 0 && (r == ' ' || r == '>' || r == '+' || r == '~'):
			start, plain = i+1, false
		}
	}
	part := sel[start:]
	var cur byte // the kind of name being read: 't', '#', '.', or 0 to skip
	var name strings.Builder
	flush := func() {
		switch cur {
		case 't':
			if name.Len() > 0 && name.String() != "*" {
				c.tag = name.String()
			}
		case '#':
			c.id = stripOWA(name.String())
		case '.':
			c.classes = append(c.classes, stripOWA(name.String()))
		}
		name.Reset()
	}
	cur, depth = 't', 0
	for _, r := range part {
		switch {
		case depth > 0:
			if r == ')' || r == ']' {
				depth--
			} else if r == '(' || r == '[' {
				depth++
			}
		case r == '#' || r == '.':
			flush()
			cur = byte(r)
		case r == ':' || r == '[' || r == '(':
			flush()
			cur, plain = 0, false
			if r != ':' {
				depth++
			}
		default:
			if cur != 0 {
				name.WriteRune(r)
			}
		}
	}
	flush()
	return c, plain
}

// stripComments removes /* … */ comments.
func stripComments(css string) string {
	var b strings.Builder
	for {
		i := strings.Index(css, "/*")
		if i < 0 {
			b.WriteString(css)
			return b.String()
		}
		b.WriteString(css[:i])
		j := strings.Index(css[i+2:], "*/")
		if j < 0 {
			return b.String()
		}
		css = css[i+2+j+2:]
	}
}

// matchBrace splits s after the "}" that closes an open "{" before it.
func matchBrace(s string) (block, rest string) {
	depth := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// lookOf works out the look of n's content from its parent's: hidden tags
// and the hidden attribute remove it (gone); then colour attributes, the
// plain rules by specificity, the style attribute, !important
// declarations last (CSS Cascading 4 section 6).
func (s *sheet) lookOf(n *html.Node, a attrs, parent look) (l look, gone bool) {
	if hiddenTag(n.Data) || hasAttr(n, "hidden") || n.Data == "dialog" && !hasAttr(n, "open") {
		return parent, true
	}
	l = parent
	presentational(n, &l, parent)
	var normal, important []decl
	add := func(decls []decl) {
		for _, d := range decls {
			if d.important {
				important = append(important, d)
			} else {
				normal = append(normal, d)
			}
		}
	}
	classes := a.classes()
	matched := s.plain.matching(n.Data, a, classes)
	if s.work += len(matched); s.work > maxRuleWork {
		s.tooMany = true
	}
	for _, i := range matched {
		add(s.plain.rules[i].decls)
	}
	if v, ok := attr(n, "style"); ok {
		add(parseDecls(v))
	}
	if apply(&l, parent, append(normal, important...)) {
		return l, true
	}
	if s.tooMany {
		l.concealed = true
	}
	if len(s.hiding.matching(n.Data, a, classes)) > 0 {
		l.concealed = true
	}
	return l, false
}
