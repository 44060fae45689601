package message

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// A command hidden in HTML (display:none, white on white, a 1px font …) is
// not what the sender saw, so the bot must not read it. look follows down
// the tree the properties that decide whether text is seen, as CSS computes
// them (CSS Cascading 4; inherited: color, font-size, visibility), and
// errs towards hiding: what it cannot work out (a var(), a colour function
// it does not know) counts as hidden.

// maxHiddenFontPx is the largest font size nobody reads.
const maxHiddenFontPx = 2

type look struct {
	color     rgba    // text colour
	bg        rgba    // the opaque colour behind the text
	fontPx    float64 // font size in CSS pixels
	opacity   float64 // product of the ancestors' opacities
	invisible bool    // visibility:hidden; a descendant may show itself again
	concealed bool    // clipped away, off screen, scaled to nothing: for good
	unknownFg bool    // a text colour that cannot be worked out (var() …)
	unknownBg bool    // a background colour that cannot be worked out
}

// defaultLook is a browser's: black 16px text on white.
func defaultLook() look {
	return look{color: black, bg: white, fontPx: 16, opacity: 1}
}

// showsText reports whether text in this look is seen by the reader.
func (l look) showsText() bool {
	if l.invisible || l.concealed || l.unknownFg || l.unknownBg || l.fontPx <= maxHiddenFontPx {
		return false
	}
	return distinct(l.color.over(l.bg, l.opacity), l.bg)
}

// hiddenTag tells elements a browser does not render (the HTML standard's
// rendering section, 15.3.1), and <noscript>, which mail clients differ on.
func hiddenTag(tag string) bool {
	switch tag {
	case "head", "script", "style", "title", "template", "noscript", "noembed", "noframes", "datalist",
		"iframe", "param", "rp":
		return true
	}
	return false
}

// decl is one CSS declaration, property and value lowercased.
type decl struct {
	prop, value string
	important   bool
}

// parseDecls reads a style attribute or a rule's block: "a: b; c: d
// !important".
func parseDecls(s string) []decl {
	var out []decl
	for _, part := range splitUnquoted(s, ';') {
		p, v, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		v = strings.ToLower(strings.Join(strings.Fields(v), " "))
		d := decl{prop: strings.ToLower(strings.TrimSpace(p))}
		if i := strings.LastIndex(v, "!"); i >= 0 && strings.TrimSpace(v[i+1:]) == "important" {
			v, d.important = strings.TrimSpace(v[:i]), true
		}
		d.value = v
		out = append(out, d)
	}
	return out
}

// box collects the declarations that hide only together: a size of zero
// with the overflow cut off.
type box struct {
	clips   bool    // overflow other than visible
	minSize float64 // smallest of width, height, max-width, max-height
}

// apply applies declarations in order to l, whose parent's look is parent.
// gone reports display:none or the like: the element is not rendered.
func apply(l *look, parent look, decls []decl) (gone bool) {
	b := box{minSize: 1e9}
	for _, d := range decls {
		if applyDecl(l, &b, parent, d) {
			return true
		}
	}
	if b.clips && b.minSize <= maxHiddenFontPx {
		l.concealed = true // max-height:0;overflow:hidden and the like
	}
	return false
}

// applyDecl applies one declaration; it reports whether it removes the
// element (display:none, Outlook's mso-hide:all).
func applyDecl(l *look, b *box, parent look, d decl) (gone bool) {
	v := d.value
	switch d.prop {
	case "display":
		return v == "none"
	case "mso-hide":
		return v != "none" // Outlook for Windows hides the element
	case "visibility":
		switch v {
		case "hidden", "collapse":
			l.invisible = true
		case "visible":
			l.invisible = false
		}
	case "content-visibility":
		l.concealed = l.concealed || v == "hidden"
	case "opacity":
		if f, ok := parseFraction(v); ok {
			l.opacity *= f
		} else if v != "inherit" && v != "initial" && v != "unset" {
			l.opacity = 0 // calc(), var(): not worked out, so counted as hidden
		}
	case "filter":
		if _, arg, ok := strings.Cut(v, "opacity("); ok {
			arg, _, _ = strings.Cut(arg, ")")
			if f, ok := parseFraction(strings.TrimSpace(arg)); ok {
				l.opacity *= f
			}
		}
	case "color", "-webkit-text-fill-color":
		setColor(&l.color, &l.unknownFg, v, parent.color)
	case "background-color", "background":
		setBackground(l, parent, v)
	case "font-size":
		setFontSize(l, parent, v)
	case "font":
		setFontSize(l, parent, fontShorthandSize(v))
	case "zoom":
		if f, ok := parseFraction(v); ok {
			l.fontPx *= f
		}
	case "overflow", "overflow-x", "overflow-y":
		b.clips = b.clips || v == "hidden" || v == "clip" || v == "scroll" || v == "auto"
	case "width", "height", "max-width", "max-height":
		if px, ok := parseLength(v, l.fontPx); ok {
			b.minSize = min(b.minSize, px)
		}
	case "clip":
		l.concealed = l.concealed || emptyRect(v)
	case "clip-path":
		l.concealed = l.concealed || clipsAll(v)
	case "left", "top", "margin-left", "margin-top", "text-indent":
		if px, ok := parseLength(v, l.fontPx); ok && px <= -500 {
			l.concealed = true // moved off the left or top edge, where no one can scroll
		}
	case "transform":
		l.concealed = l.concealed || scalesAway(v)
	}
	return false
}

// setColor sets a text colour. currentcolor and inherit keep the
// inherited one; a function the bot cannot evaluate makes it unknown; an
// invalid value is ignored, as by a browser.
func setColor(c *rgba, unknown *bool, v string, inherited rgba) {
	switch v {
	case "currentcolor", "inherit", "unset":
		*c = inherited
	case "initial":
		*c = black
	default:
		col, kind := parseColor(v)
		switch kind {
		case colorKnown:
			*c, *unknown = col, false
		case colorUnknown:
			*unknown = true
		}
	}
}

// setBackground paints a background colour (also from the background
// shorthand) over the parent's. A translucent one is blended; an image is
// left out (it may not load), a gradient is a colour not worked out.
func setBackground(l *look, parent look, v string) {
	for _, tok := range cssTokens(v) {
		switch {
		case tok == "currentcolor":
			l.bg = l.color.over(parent.bg, 1)
			return
		case tok == "inherit", tok == "unset", tok == "initial", tok == "none", strings.HasPrefix(tok, "url("):
			continue
		}
		col, kind := parseColor(tok)
		switch kind {
		case colorKnown:
			l.bg, l.unknownBg = col.over(parent.bg, 1), false
			return
		case colorUnknown:
			l.unknownBg = true
			return
		}
	}
}

// setFontSize reads a font-size value relative to the parent's size.
func setFontSize(l *look, parent look, v string) {
	if v == "" || v == "inherit" || v == "unset" {
		return
	}
	if px, ok := fontKeywords[v]; ok {
		l.fontPx = px
		return
	}
	switch v {
	case "smaller":
		l.fontPx = parent.fontPx / 1.2
		return
	case "larger":
		l.fontPx = parent.fontPx * 1.2
		return
	}
	if strings.HasSuffix(v, "%") {
		if f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64); err == nil {
			l.fontPx = parent.fontPx * f / 100
			return
		}
	}
	if px, ok := parseLength(v, parent.fontPx); ok {
		l.fontPx = px
		return
	}
	if strings.Contains(v, "(") {
		l.fontPx = 0 // calc(), var(), clamp(): not worked out, so counted as hidden
	}
}

var fontKeywords = map[string]float64{
	"xx-small": 9, "x-small": 10, "small": 13, "medium": 16, "initial": 16, "large": 18, "x-large": 24,
	"xx-large": 32, "xxx-large": 48,
}

// fontShorthandSize finds the size in a font shorthand ("bold 0/0 a",
// "12px/1.5 Arial"): the first word that is a length, a percentage or a
// size keyword.
func fontShorthandSize(v string) string {
	for _, w := range strings.Fields(v) {
		w, _, _ = strings.Cut(w, "/")
		if _, ok := fontKeywords[w]; ok {
			return w
		}
		if _, ok := parseLength(w, 16); ok {
			return w
		}
	}
	return ""
}

// parseLength reads a CSS length in pixels (CSS Values 4 section 6). em is
// the font size em and % refer to; viewport units assume a 600px wide
// mail pane.
func parseLength(v string, em float64) (float64, bool) {
	v = strings.TrimSpace(v)
	if v == "0" {
		return 0, true
	}
	i := strings.IndexFunc(v, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+') })
	if i <= 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(v[:i], 64)
	if err != nil {
		return 0, false
	}
	unit := unitPx(v[i:], em)
	if unit == 0 {
		return 0, false
	}
	return f * unit, true
}

// unitPx is the size of one unit in pixels, or 0 for an unknown unit.
func unitPx(unit string, em float64) float64 {
	switch unit {
	case "px":
		return 1
	case "pt":
		return 4.0 / 3
	case "pc":
		return 16
	case "in":
		return 96
	case "cm":
		return 96 / 2.54
	case "mm":
		return 96 / 25.4
	case "q":
		return 96 / 101.6
	case "em":
		return em
	case "rem":
		return 16
	case "ex", "ch":
		return em / 2
	case "%":
		return em / 100
	case "vw", "vh", "vmin", "vmax":
		return 6
	}
	return 0
}

// parseFraction reads an opacity or zoom: a number or a percentage.
func parseFraction(v string) (float64, bool) {
	pct := strings.HasSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil {
		return 0, false
	}
	if pct {
		f /= 100
	}
	return max(0, f), true
}

// emptyRect tells clip:rect(…) with no area left, as "visually hidden"
// snippets write it: rect(0 0 0 0), rect(1px,1px,1px,1px).
func emptyRect(v string) bool {
	inner, ok := strings.CutPrefix(v, "rect(")
	if !ok {
		return false
	}
	f := strings.FieldsFunc(strings.TrimSuffix(inner, ")"), func(r rune) bool { return r == ',' || r == ' ' })
	if len(f) != 4 {
		return false
	}
	return f[0] == f[2] || f[1] == f[3] // top = bottom or right = left
}

// clipsAll tells a clip-path that leaves nothing: inset(50%) or more, a
// circle or ellipse of radius 0.
func clipsAll(v string) bool {
	if inner, ok := strings.CutPrefix(v, "inset("); ok {
		f := strings.Fields(strings.TrimSuffix(inner, ")"))
		if len(f) > 0 && strings.HasSuffix(f[0], "%") {
			p, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
			return err == nil && p >= 50
		}
		return false
	}
	return strings.HasPrefix(v, "circle(0") || strings.HasPrefix(v, "ellipse(0")
}

// scalesAway tells a transform that scales to (almost) nothing, or moves
// the element off the left or top edge.
func scalesAway(v string) bool {
	for _, fn := range []string{"scale(", "scalex(", "scaley(", "scale3d("} {
		if i := strings.Index(v, fn); i >= 0 {
			args := strings.FieldsFunc(strings.SplitN(v[i+len(fn):], ")", 2)[0], func(r rune) bool { return r == ',' || r == ' ' })
			for _, a := range args {
				if f, err := strconv.ParseFloat(a, 64); err == nil && f > -0.2 && f < 0.2 {
					return true
				}
			}
		}
	}
	for _, fn := range []string{"translate(", "translatex(", "translatey("} {
		if i := strings.Index(v, fn); i >= 0 {
			args := strings.FieldsFunc(strings.SplitN(v[i+len(fn):], ")", 2)[0], func(r rune) bool { return r == ',' || r == ' ' })
			for _, a := range args {
				if px, ok := parseLength(a, 16); ok && px <= -500 {
					return true
				}
			}
		}
	}
	return false
}

// presentational applies the HTML attributes that style text (the
// rendering section's presentational hints, 15.3): bgcolor, <font color>
// and size, <body text>. CSS overrides them.
func presentational(n *html.Node, l *look, parent look) {
	if v, ok := attr(n, "bgcolor"); ok {
		if c, ok := legacyColor(v); ok {
			l.bg = c.over(parent.bg, 1)
		}
	}
	var textColor string
	switch n.Data {
	case "font":
		textColor, _ = attr(n, "color")
		if v, ok := attr(n, "size"); ok {
			l.fontPx = fontSizeAttr(v, l.fontPx)
		}
	case "body":
		textColor, _ = attr(n, "text")
	}
	if c, ok := legacyColor(textColor); ok {
		l.color = c
	}
}

// fontSizeAttr reads <font size>: 1 to 7, or +n/-n from 3 (HTML section
// 15.3.4); every size is legible.
func fontSizeAttr(v string, current float64) float64 {
	v = strings.TrimSpace(v)
	n, err := strconv.Atoi(strings.TrimPrefix(v, "+"))
	if err != nil {
		return current
	}
	if strings.HasPrefix(v, "+") || strings.HasPrefix(v, "-") {
		n += 3
	}
	return []float64{10, 10, 13, 16, 18, 24, 32, 48}[min(max(n, 1), 7)]
}
