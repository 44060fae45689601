package message

import (
	"math"
	"strconv"
	"strings"
)

// rgba is a colour, channels 0 to 255, alpha 0 to 1.
type rgba struct{ r, g, b, a float64 }

var (
	black = rgba{0, 0, 0, 1}
	white = rgba{255, 255, 255, 1}
)

// over is the opaque colour c shows with opacity op over the opaque bg.
func (c rgba) over(bg rgba, op float64) rgba {
	a := min(max(c.a*op, 0), 1)
	mix := func(x, y float64) float64 { return x*a + y*(1-a) }
	return rgba{mix(c.r, bg.r), mix(c.g, bg.g), mix(c.b, bg.b), 1}
}

// maxInvisibleDiff is the largest difference in every channel at which
// text cannot be told from its background: #e0e0e0 on white still counts
// as hidden, #cccccc does not.
const maxInvisibleDiff = 32

// distinct reports whether text of colour fg can be seen on bg.
func distinct(fg, bg rgba) bool {
	d := max(math.Abs(fg.r-bg.r), math.Abs(fg.g-bg.g), math.Abs(fg.b-bg.b))
	return d > maxInvisibleDiff
}

// colorKind tells what parseColor made of a value.
type colorKind int

const (
	colorInvalid colorKind = iota // not a colour: a browser ignores the declaration
	colorKnown
	colorUnknown // a colour the bot cannot work out: var(), color-mix(), lab() …
)

// parseColor reads a CSS colour (CSS Color 4): a name, #rgb, #rgba,
// #rrggbb, #rrggbbaa, rgb(), rgba(), hsl(), hsla(), transparent.
func parseColor(v string) (rgba, colorKind) {
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case v == "transparent":
		return rgba{}, colorKnown
	case strings.HasPrefix(v, "#"):
		if c, ok := hexColor(v[1:]); ok {
			return c, colorKnown
		}
		return rgba{}, colorInvalid
	case strings.HasPrefix(v, "rgb(") || strings.HasPrefix(v, "rgba("):
		return rgbFunc(v)
	case strings.HasPrefix(v, "hsl(") || strings.HasPrefix(v, "hsla("):
		return hslFunc(v)
	case strings.Contains(v, "("):
		return rgba{}, colorUnknown
	}
	if c, ok := namedColor(v); ok {
		return c, colorKnown
	}
	return rgba{}, colorInvalid
}

// hexColor reads the digits of #rgb, #rgba, #rrggbb or #rrggbbaa.
func hexColor(h string) (rgba, bool) {
	if len(h) == 3 || len(h) == 4 {
		var b strings.Builder
		for _, c := range h {
			b.WriteRune(c)
			b.WriteRune(c)
		}
		h = b.String()
	}
	if len(h) != 6 && len(h) != 8 {
		return rgba{}, false
	}
	n, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return rgba{}, false
	}
	a := 1.0
	if len(h) == 8 {
		a, n = float64(n&0xff)/255, n>>8
	}
	return rgba{float64(n >> 16), float64(n >> 8 & 0xff), float64(n & 0xff), a}, true
}

// funcArgs splits "name(a, b, c / d)" into its arguments; the alpha after
// "/" comes fourth.
func funcArgs(v string) []string {
	_, inner, _ := strings.Cut(v, "(")
	inner, _, _ = strings.Cut(inner, ")")
	return strings.FieldsFunc(inner, func(r rune) bool { return r == ',' || r == ' ' || r == '/' })
}

// channel reads a number or a percentage of full; "none" is 0.
func channel(s string, full float64) (float64, bool) {
	if s == "none" {
		return 0, true
	}
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, false
	}
	if pct {
		f = f * full / 100
	}
	return min(max(f, 0), full), true
}

func rgbFunc(v string) (rgba, colorKind) {
	args := funcArgs(v)
	if len(args) != 3 && len(args) != 4 {
		return rgba{}, colorUnknown
	}
	c := rgba{a: 1}
	var ok [4]bool
	c.r, ok[0] = channel(args[0], 255)
	c.g, ok[1] = channel(args[1], 255)
	c.b, ok[2] = channel(args[2], 255)
	ok[3] = true
	if len(args) == 4 {
		c.a, ok[3] = channel(args[3], 1)
	}
	if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
		return rgba{}, colorUnknown
	}
	return c, colorKnown
}

func hslFunc(v string) (rgba, colorKind) {
	args := funcArgs(v)
	if len(args) != 3 && len(args) != 4 {
		return rgba{}, colorUnknown
	}
	h, err := strconv.ParseFloat(strings.TrimSuffix(args[0], "deg"), 64)
	s, okS := channel(args[1], 1)
	l, okL := channel(args[2], 1)
	a, okA := 1.0, true
	if len(args) == 4 {
		a, okA = channel(args[3], 1)
	}
	if err != nil || !okS || !okL || !okA {
		return rgba{}, colorUnknown
	}
	// CSS Color 4 section 7.1.
	h = math.Mod(math.Mod(h, 360)+360, 360)
	f := func(n float64) float64 {
		k := math.Mod(n+h/30, 12)
		return 255 * (l - s*min(l, 1-l)*max(-1, min(k-3, 9-k, 1)))
	}
	return rgba{f(0), f(8), f(4), a}, colorKnown
}

// legacyColor reads a colour attribute (bgcolor, <font color>) as HTML's
// rules for parsing a legacy colour value do (HTML section 2.3.6.4), so
// that "ffffff" without "#" is white, as in every browser.
func legacyColor(v string) (rgba, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" || v == "transparent" {
		return rgba{}, false
	}
	if c, ok := namedColor(v); ok {
		return c, true
	}
	if len(v) == 4 && v[0] == '#' {
		if c, ok := hexColor(v[1:]); ok {
			return c, true
		}
	}
	if len(v) > 128 {
		v = v[:128]
	}
	v = strings.TrimPrefix(v, "#")
	digits := []byte(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'f' {
			return r
		}
		return '0'
	}, v))
	for len(digits) == 0 || len(digits)%3 != 0 {
		digits = append(digits, '0')
	}
	n := len(digits) / 3
	parts := [3][]byte{digits[:n], digits[n : 2*n], digits[2*n:]}
	if n > 8 {
		for i := range parts {
			parts[i] = parts[i][n-8:]
		}
		n = 8
	}
	for n > 2 && parts[0][0] == '0' && parts[1][0] == '0' && parts[2][0] == '0' {
		for i := range parts {
			parts[i] = parts[i][1:]
		}
		n--
	}
	var ch [3]float64
	for i, p := range parts {
		if n > 2 {
			p = p[:2]
		}
		x, _ := strconv.ParseUint(string(p), 16, 8)
		ch[i] = float64(x)
	}
	return rgba{ch[0], ch[1], ch[2], 1}, true
}

// namedColor looks a colour name up: the 148 of CSS Color 4 and the
// system colours Outlook writes (windowtext).
func namedColor(name string) (rgba, bool) {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
		return rgba{}, false
	}
	i := strings.Index(cssColors, " "+name+" ")
	if i < 0 {
		return rgba{}, false
	}
	i += len(name) + 2
	return hexColor(cssColors[i : i+6])
}

const cssColors = " aliceblue f0f8ff antiquewhite faebd7 aqua 00ffff aquamarine 7fffd4 azure f0ffff" +
	" beige f5f5dc bisque ffe4c4 black 000000 blanchedalmond ffebcd blue 0000ff blueviolet 8a2be2" +
	" brown a52a2a burlywood deb887 cadetblue 5f9ea0 chartreuse 7fff00 chocolate d2691e coral ff7f50" +
	" cornflowerblue 6495ed cornsilk fff8dc crimson dc143c cyan 00ffff darkblue 00008b darkcyan 008b8b" +
	" darkgoldenrod b8860b darkgray a9a9a9 darkgreen 006400 darkgrey a9a9a9 darkkhaki bdb76b" +
	" darkmagenta 8b008b darkolivegreen 556b2f darkorange ff8c00 darkorchid 9932cc darkred 8b0000" +
	" darksalmon e9967a darkseagreen 8fbc8f darkslateblue 483d8b darkslategray 2f4f4f" +
	" darkslategrey 2f4f4f darkturquoise 00ced1 darkviolet 9400d3 deeppink ff1493 deepskyblue 00bfff" +
	" dimgray 696969 dimgrey 696969 dodgerblue 1e90ff firebrick b22222 floralwhite fffaf0" +
	" forestgreen 228b22 fuchsia ff00ff gainsboro dcdcdc ghostwhite f8f8ff gold ffd700 goldenrod daa520" +
	" gray 808080 green 008000 greenyellow adff2f grey 808080 honeydew f0fff0 hotpink ff69b4" +
	" indianred cd5c5c indigo 4b0082 ivory fffff0 khaki f0e68c lavender e6e6fa lavenderblush fff0f5" +
	" lawngreen 7cfc00 lemonchiffon fffacd lightblue add8e6 lightcoral f08080 lightcyan e0ffff" +
	" lightgoldenrodyellow fafad2 lightgray d3d3d3 lightgreen 90ee90 lightgrey d3d3d3 lightpink ffb6c1" +
	" lightsalmon ffa07a lightseagreen 20b2aa lightskyblue 87cefa lightslategray 778899" +
	" lightslategrey 778899 lightsteelblue b0c4de lightyellow ffffe0 lime 00ff00 limegreen 32cd32" +
	" linen faf0e6 magenta ff00ff maroon 800000 mediumaquamarine 66cdaa mediumblue 0000cd" +
	" mediumorchid ba55d3 mediumpurple 9370db mediumseagreen 3cb371 mediumslateblue 7b68ee" +
	" mediumspringgreen 00fa9a mediumturquoise 48d1cc mediumvioletred c71585 midnightblue 191970" +
	" mintcream f5fffa mistyrose ffe4e1 moccasin ffe4b5 navajowhite ffdead navy 000080 oldlace fdf5e6" +
	" olive 808000 olivedrab 6b8e23 orange ffa500 orangered ff4500 orchid da70d6 palegoldenrod eee8aa" +
	" palegreen 98fb98 paleturquoise afeeee palevioletred db7093 papayawhip ffefd5 peachpuff ffdab9" +
	" peru cd853f pink ffc0cb plum dda0dd powderblue b0e0e6 purple 800080 rebeccapurple 663399" +
	" red ff0000 rosybrown bc8f8f royalblue 4169e1 saddlebrown 8b4513 salmon fa8072 sandybrown f4a460" +
	" seagreen 2e8b57 seashell fff5ee sienna a0522d silver c0c0c0 skyblue 87ceeb slateblue 6a5acd" +
	" slategray 708090 slategrey 708090 snow fffafa springgreen 00ff7f steelblue 4682b4 tan d2b48c" +
	" teal 008080 thistle d8bfd8 tomato ff6347 turquoise 40e0d0 violet ee82ee wheat f5deb3" +
	" white ffffff whitesmoke f5f5f5 yellow ffff00 yellowgreen 9acd32" +
	" canvas ffffff canvastext 000000 window ffffff windowtext 000000 field ffffff fieldtext 000000" +
	" buttonface f0f0f0 buttontext 000000 graytext 6d6d6d highlight 3399ff highlighttext ffffff" +
	" linktext 0000ee visitedtext 551a8b activetext ff0000 infobackground ffffe1 infotext 000000" +
	" menu f0f0f0 menutext 000000 captiontext 000000 "

// cssTokens splits a value at spaces outside parentheses: "url(a b) #fff
// no-repeat" gives three words.
func cssTokens(v string) []string {
	var out []string
	depth, start := 0, -1
	for i, r := range v {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case r == ' ' && depth == 0:
			if start >= 0 {
				out = append(out, v[start:i])
			}
			start = -1
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, v[start:])
	}
	return out
}
