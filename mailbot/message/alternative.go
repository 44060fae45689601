package message

import (
	"slices"
	"strings"
	"unicode"
)

// A multipart/alternative carries the same message twice, and the sender's
// client shows the HTML one. A plain part that says more than the HTML
// shows (a command the HTML hides, or a line its client wrapped in two)
// is not what the sender saw, so the bot reads the HTML instead.

// shownBy reports whether every line the bot would read from plain (the
// sender's own lines, and those below a reply quote) starts a line of the
// HTML's visible text, after comparable() on both sides. A plain line
// may stop short of the HTML line, where a client wrapped it, but only at
// a word's end. When not, unseen is the first line that is not shown.
func shownBy(plain, visible string) (unseen string, shown bool) {
	lines := strings.Split(visible, "\n")
	for i, l := range lines {
		lines[i] = comparable(l)
	}
	slices.Sort(lines)
	for _, l := range append(OwnLines(plain), BelowQuote(plain)...) {
		c := comparable(l)
		if c == "" {
			continue
		}
		i, found := slices.BinarySearch(lines, c)
		if !found && (i == len(lines) || !strings.HasPrefix(lines[i], c+" ")) {
			return l, false
		}
	}
	return "", true
}

// comparable reduces a line to what a plain rendering and an HTML one of
// it share: lower case, single spaces, no link targets ("text<mailto:x>",
// "text <https://x>", as Outlook and Gmail write links in plain text), no
// "*bold*", "/italic/" or "_underline_" marks (Thunderbird), no ">" quote
// marks.
func comparable(l string) string {
	l = dropLinkTargets(normaliseQuotes(l))
	l = strings.TrimLeft(l, "> \t")
	words := strings.Fields(strings.ToLower(l))
	for i, w := range words {
		words[i] = strings.Trim(w, "*_/")
	}
	return strings.Join(slices.DeleteFunc(words, func(w string) bool { return w == "" }), " ")
}

// dropLinkTargets removes "<mailto:…>" and "<http(s)://…>".
func dropLinkTargets(l string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(l, '<')
		if i < 0 {
			b.WriteString(l)
			return b.String()
		}
		j := strings.IndexByte(l[i:], '>')
		target := strings.ToLower(l[i+1 : i+max(j, 1)])
		if j < 0 || !strings.HasPrefix(target, "mailto:") && !strings.HasPrefix(target, "http://") &&
			!strings.HasPrefix(target, "https://") || strings.ContainsFunc(target, unicode.IsSpace) {
			b.WriteString(l[:i+1])
			l = l[i+1:]
			continue
		}
		b.WriteString(l[:i])
		l = l[i+j+1:]
	}
}
