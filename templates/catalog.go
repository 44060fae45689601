package templates

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message/catalog"
)

// Catalogs. Every sentence has a message id: its English text as the code
// writes it, a fmt format ("added %s to %s."). A language's catalog,
// files/i18n/<code>.po, gives each id its words in that language, in a
// small format after GNU gettext's PO files:
//
//	# a comment
//	msgid "added %s to %s."
//	msgstr "%s ajouté à %s."
//
//	msgid "%d members"
//	msgstr[one] "%d membre"
//	msgstr[other] "%d membres"
//
// Strings are double-quoted with Go's escapes (\" \\ \n); a string may go
// on over following lines that hold only a quoted string, which are joined.
// Plural forms are named by their CLDR category (zero, one, two, few, many,
// other; other is required) and chosen by the first %d argument of the
// message id. Arguments may be reordered with %[n]s. A "${" must not occur
// in a translation: x/text reads it as a variable.
//
// en.po is the source: it has every message id (with the English plural
// forms). An id missing from another language's catalog is filled from it,
// so a reader sees English rather than a raw key.

// catalogDir is where the catalogs are, in the embedded files and in an
// operator's templates.dir.
const catalogDir = "i18n"

// sourceLanguage is the language of the message ids and of en.po.
const sourceLanguage = "en"

// pluralForms are the CLDR plural categories, in the order x/text tries
// them ("other" matches any number, so it comes last).
var pluralForms = []string{"zero", "one", "two", "few", "many", "other"}

// entry is one translated message.
type entry struct {
	id     string
	str    string            // the translation; "" for a plural entry
	plural map[string]string // by CLDR category; nil for a singular entry
	line   int               // where the entry starts in its file, for errors
}

// parsePO reads a catalog file.
func parsePO(name string, data []byte) ([]entry, error) {
	var (
		out  []entry
		cur  *entry
		part string // what a continuation line adds to: "id", "str" or a plural form
		seen = map[string]int{}
	)
	bad := func(n int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(format, args...))
	}
	add := func(s string) {
		switch part {
		case "id":
			cur.id += s
		case "str":
			cur.str += s
		default:
			cur.plural[part] += s
		}
	}
	finish := func() error {
		if cur == nil {
			return nil
		}
		e := *cur
		cur, part = nil, ""
		switch {
		case e.str == "" && e.plural == nil:
			return bad(e.line, "msgid %q has no msgstr", e.id)
		case e.plural != nil && e.str != "":
			return bad(e.line, "msgid %q has both msgstr and msgstr[…]", e.id)
		case e.plural != nil && e.plural["other"] == "":
			return bad(e.line, "msgid %q has plural forms but no msgstr[other]", e.id)
		}
		if first, dup := seen[e.id]; dup {
			return bad(e.line, "msgid %q is already on line %d", e.id, first)
		}
		seen[e.id] = e.line
		out = append(out, e)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		key, quoted := "", line
		if !strings.HasPrefix(line, `"`) {
			key, quoted, _ = strings.Cut(line, " ")
		}
		s, err := strconv.Unquote(strings.TrimSpace(quoted))
		if err != nil || !utf8.ValidString(s) {
			return nil, bad(n, "not a quoted UTF-8 string: %s", quoted)
		}
		switch {
		case key == "" && cur == nil:
			return nil, bad(n, "a string continues nothing")
		case key == "":
			add(s)
		case key == "msgid":
			if err := finish(); err != nil {
				return nil, err
			}
			cur, part = &entry{id: s, line: n}, "id"
		case cur == nil:
			return nil, bad(n, "%s before msgid", key)
		case key == "msgstr":
			cur.str, part = s, "str"
		case strings.HasPrefix(key, "msgstr[") && strings.HasSuffix(key, "]"):
			form := key[len("msgstr[") : len(key)-1]
			if !slices.Contains(pluralForms, form) {
				return nil, bad(n, "unknown plural form %q (use %s)", form, strings.Join(pluralForms, ", "))
			}
			if cur.plural == nil {
				cur.plural = map[string]string{}
			}
			cur.plural[form], part = s, form
		default:
			return nil, bad(n, "unknown keyword %q", key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// verb is one formatting verb of a format string.
type verb struct {
	arg  int  // the argument it formats, from 1
	kind rune // 's', 'd', 'q' …
}

// verbs lists the verbs of a fmt format string, with the argument each
// formats (explicit %[n] indexes included), so that a translation can be
// checked against its message id and a plural form can find its count.
func verbs(format string) []verb {
	var out []verb
	arg := 1
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0", format[i]) >= 0 {
			i++
		}
		index := func() {
			if i < len(format) && format[i] == '[' {
				if j := strings.IndexByte(format[i:], ']'); j > 0 {
					if n, err := strconv.Atoi(format[i+1 : i+j]); err == nil {
						arg = n
					}
					i += j + 1
				}
			}
		}
		index()
		for i < len(format) && (format[i] >= '0' && format[i] <= '9' || format[i] == '*' || format[i] == '.') {
			i++
		}
		index()
		if i >= len(format) {
			break
		}
		if format[i] == '%' {
			continue
		}
		r, size := utf8.DecodeRuneInString(format[i:])
		out = append(out, verb{arg: arg, kind: r})
		arg++
		i += size - 1
	}
	return out
}

// countArg is the argument whose number chooses among the plural forms of
// a message id: the first %d. 0 when there is none.
func countArg(id string) int {
	for _, v := range verbs(id) {
		if v.kind == 'd' {
			return v.arg
		}
	}
	return 0
}

// catalogMessage is an entry as x/text keeps it.
func catalogMessage(e entry) (catalog.Message, error) {
	if e.plural == nil {
		return catalog.String(e.str), nil
	}
	arg := countArg(e.id)
	if arg == 0 {
		return nil, fmt.Errorf("msgid %q has plural forms but no %%d to choose them", e.id)
	}
	var cases []any
	for _, f := range pluralForms {
		if s, ok := e.plural[f]; ok {
			cases = append(cases, f, s)
		}
	}
	return plural.Selectf(arg, "%d", cases...), nil
}

// buildCatalog makes one x/text catalog of the languages' entries. Each
// language gets every entry of the source language it lacks, so that a
// missing translation reads in English (x/text's own fallback does not
// reach into another language's entries).
func buildCatalog(langs map[string][]entry) (*catalog.Builder, []language.Tag, error) {
	src, ok := langs[sourceLanguage]
	if !ok {
		return nil, nil, fmt.Errorf("no %s.po catalog", sourceLanguage)
	}
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	codes := make([]string, 0, len(langs))
	for code := range langs {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	var tags []language.Tag
	for _, code := range codes {
		tag, err := language.Parse(code)
		if err != nil {
			return nil, nil, fmt.Errorf("catalog %s.po: %q is not a language code: %w", code, code, err)
		}
		have := map[string]bool{}
		set := func(e entry) error {
			m, err := catalogMessage(e)
			if err == nil {
				err = b.Set(tag, e.id, m)
			}
			if err != nil {
				return fmt.Errorf("catalog %s.po:%d: %w", code, e.line, err)
			}
			have[e.id] = true
			return nil
		}
		for _, e := range langs[code] {
			if err := set(e); err != nil {
				return nil, nil, err
			}
		}
		for _, e := range src {
			if !have[e.id] {
				if err := set(e); err != nil {
					return nil, nil, err
				}
			}
		}
		tags = append(tags, tag)
	}
	return b, tags, nil
}
