package templates

import (
	htmltemplate "html/template"
	"strconv"
	"strings"

	"golang.org/x/text/message"
)

// What the HTML parts need beyond words: a status shown by colour and by a
// mark, so that it reads without colour too (WCAG 1.4.1), in colours whose
// contrast with their background is at least 4.5:1 (WCAG 1.4.3); the help
// text cut into blocks that wrap on a phone; bars of a chart. Mail clients
// drop <style> blocks, so every style is inline.

// statusMark is the mark shown before a status word in HTML: the word
// stays, for scripts and for readers; the mark says the same without
// colour.
func statusMark(status string) string {
	switch status {
	case "OK", "VERIFIED":
		return "✓"
	case "NOT VERIFIED":
		return "✗"
	case "ERROR":
		return "!"
	case "DENIED":
		return "⊘"
	}
	return "•"
}

// statusStyle is the inline style of a status word's badge: dark text on a
// light tint of its colour (contrast 6.7:1 to 8.3:1).
func statusStyle(status string) htmltemplate.CSS {
	fg, bg := "#1f1f1f", "#eeeeee"
	switch status {
	case "OK", "VERIFIED":
		fg, bg = "#0b5d1e", "#e3f5e6"
	case "NOT VERIFIED":
		fg, bg = "#8a1c1c", "#fde8e8"
	case "ERROR":
		fg, bg = "#7a4a00", "#fff1d6"
	case "DENIED":
		fg, bg = "#5b2c83", "#f1e8fa"
	}
	return htmltemplate.CSS("color:" + fg + ";background:" + bg + ";font-weight:bold;padding:1px 6px;border-radius:3px;white-space:nowrap")
}

// memberStyle is the inline style of a membership's status word (active,
// inactive, expired: the English values), on white.
func memberStyle(state string) htmltemplate.CSS {
	switch state {
	case "active":
		return "color:#0b5d1e"
	case "expired":
		return "color:#8a1c1c;font-weight:bold"
	}
	return "color:#4d4d4d"
}

// memberMark is the mark before a membership's status word.
func memberMark(state string) string {
	switch state {
	case "active":
		return "✓"
	case "expired":
		return "!"
	}
	return "–"
}

// signed writes a balance with its sign: +3, 0, -3.
func signed(n int) string {
	if n > 0 {
		return "+" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// barWidth is the width, in percent, of a bar of n where the longest bar
// is of most: at least 2 for a bar of more than nothing, so it shows.
func barWidth(n, most int) int {
	if n <= 0 || most <= 0 {
		return 0
	}
	return max(2, n*100/most)
}

// CSVDelimiter is the field separator of the CSV files the bot sends a
// reader of p's language: where a language writes decimals with a comma
// (French, German, Spanish …), spreadsheets such as Excel expect fields
// separated by semicolons; elsewhere by commas. Readers of either kind
// of file take both (commands/csvroster).
func CSVDelimiter(p *message.Printer) rune {
	if p != nil && strings.Contains(p.Sprint(1.5), ",") {
		return ';'
	}
	return ','
}

// CSVDelimiter is the field separator of the language's CSV files.
func (l *Lang) CSVDelimiter() rune { return CSVDelimiter(l.p) }

// HelpLine is one block of the help text as the HTML part shows it.
type HelpLine struct {
	Kind   string   // "title", "heading", "text" or "command"
	Text   string   // the words; for a command, what it does
	Syntax []string // for a command, its lines as typed
	Notes  []string // for a command, what its further syntax lines add, each a line of its own
}

// helpLines cuts the rendered help text (help.txt) into blocks, so that the
// HTML part shows each command above what it does instead of in columns
// wider than a phone. It reads the text's layout: an unindented line is a
// title (the first), a heading (ending with ':') or a sentence; a line
// indented by a few spaces is a command, its description after a run of
// spaces; a line indented further goes on: a command's syntax when it
// starts with '[', else its description. Whatever else is kept as text.
func helpLines(text string) []HelpLine {
	var out []HelpLine
	afterSyntax := false // the line before went on with a command's syntax
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		wasSyntax := afterSyntax
		afterSyntax = false
		switch {
		case indent == 0:
			kind := "text"
			if len(out) == 0 {
				kind = "title"
			} else if len(out) > 1 && strings.HasSuffix(trimmed, ":") {
				// A line ending in a colon heads the commands below
				// it, but the one under the title leads to an example.
				kind = "heading"
			}
			out = append(out, HelpLine{Kind: kind, Text: trimmed})
		case indent <= 4:
			syntax, what := columns(trimmed)
			out = append(out, HelpLine{Kind: "command", Syntax: []string{syntax}, Text: what})
		case len(out) > 0 && out[len(out)-1].Kind == "command":
			last := &out[len(out)-1]
			switch {
			case strings.HasPrefix(trimmed, "["):
				syntax, what := columns(trimmed)
				last.Syntax = append(last.Syntax, syntax)
				if what != "" {
					last.Notes = append(last.Notes, what)
				}
				afterSyntax = true
			case wasSyntax && (last.Text != "" || len(last.Notes) > 0):
				// What the syntax lines before it add, not the first
				// description going on.
				last.Notes = append(last.Notes, trimmed)
			case len(last.Notes) > 0:
				last.Notes[len(last.Notes)-1] = join(last.Notes[len(last.Notes)-1], trimmed, " ")
			default:
				last.Text = join(last.Text, trimmed, " ")
			}
		default:
			out = append(out, HelpLine{Kind: "text", Text: trimmed})
		}
	}
	return out
}

// columns splits a help line at its first run of two spaces or more: the
// command as typed, and what it does.
func columns(s string) (syntax, what string) {
	if i := strings.Index(s, "  "); i >= 0 {
		return s[:i], strings.TrimSpace(s[i:])
	}
	return s, ""
}

// join puts b after a with sep between, leaving out what is empty.
func join(a, b, sep string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + sep + b
}
