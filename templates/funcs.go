package templates

import (
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/message"
)

// funcs are the template functions. t renders a message id in the
// template's language ({{t "Not commands (ignored):"}}, with arguments
// {{t "%d members" .Counts.Total}}; plural forms come from the catalog);
// wrap fills a text to a width with a hanging indent, so that a
// translation longer than the English keeps the help text's columns.
// l is nil for the stand-ins the templates are parsed with.
func funcs(l *Lang) map[string]any {
	t := func(id string, args ...any) string { return Sprintf(nil, id, args...) }
	if l != nil {
		t = l.Sprintf
	}
	lang := sourceLanguage
	if l != nil {
		lang = l.code
	}
	return map[string]any{
		"t": t, "wrap": wrap, "lang": func() string { return lang },
		"mark": statusMark, "statusStyle": statusStyle, "memberStyle": memberStyle, "memberMark": memberMark,
		"bar": barWidth, "signed": signed,
	}
}

// wrap fills s to width columns, its first line starting at column indent
// and the others indented to it.
func wrap(indent, width int, s string) string {
	var b strings.Builder
	col := indent
	for i, w := range strings.Fields(s) {
		n := utf8.RuneCountInString(w)
		if i > 0 {
			if col+1+n > width {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(w)
		col += n
	}
	return b.String()
}

// The abbreviated names of days and months, message ids of their own so
// that dates read in the reader's language.
var (
	weekdayIDs = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	monthIDs   = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// FormatTime formats t by a Go layout that is itself a message id (each
// language orders a date its own way: "Mon 2 Jan 15:04" is "lun. 2 janv.
// 15:04" in French), with the abbreviated day and month names ("Mon",
// "Jan") in the language. Full names ("Monday") are not translated: the
// layouts use none.
func (l *Lang) FormatTime(t time.Time, layout string) string { return FormatTime(l.p, t, layout) }

// FormatTime is Lang.FormatTime for code that holds a language's printer
// (Lang.Printer) rather than the language.
func FormatTime(p *message.Printer, t time.Time, layout string) string {
	if p == nil {
		p = Embedded().English().Printer()
	}
	layout = p.Sprintf(layout)
	var b strings.Builder
	for layout != "" {
		switch {
		case strings.HasPrefix(layout, "Mon"):
			b.WriteString(p.Sprintf(weekdayIDs[t.Weekday()]))
			layout = layout[3:]
		case strings.HasPrefix(layout, "Jan"):
			b.WriteString(p.Sprintf(monthIDs[t.Month()-1]))
			layout = layout[3:]
		default:
			i := len(layout)
			for _, tok := range []string{"Mon", "Jan"} {
				if j := strings.Index(layout, tok); j >= 0 && j < i {
					i = j
				}
			}
			b.WriteString(t.Format(layout[:i]))
			layout = layout[i:]
		}
	}
	return b.String()
}

// StatusWord is a membership status ("active", "inactive", "expired") as
// a reader of p's language reads it. Files and commands keep the English
// values: they are what managers type.
func StatusWord(p *message.Printer, status string) string {
	switch status {
	case "active":
		return Sprintf(p, "active")
	case "inactive":
		return Sprintf(p, "inactive")
	case "expired":
		return Sprintf(p, "expired")
	}
	return status
}
