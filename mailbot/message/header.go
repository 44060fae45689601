package message

import (
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
)

// readHeader fills the fields taken from the top-level header.
func (m *Message) readHeader() {
	// On an unknown charset Subject returns the raw field: keep it.
	subject, _ := m.Header.Subject()
	m.Subject = oneLine(subject)

	id, err := m.Header.MessageID()
	if err != nil {
		if ids := looseMsgIDs(m.Header.Get("Message-Id")); len(ids) > 0 {
			id = ids[0]
		}
	}
	m.MessageID = id
	m.InReplyTo = msgIDList(m, "In-Reply-To")
	m.References = msgIDList(m, "References")
}

// oneLine makes a decoded header value safe to show and to echo in a reply
// header: valid UTF-8, no control characters (a decoded "=0D=0A" must not
// start a new header line), normalised quotes, trimmed.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(normaliseQuotes(s))
}

// msgIDList reads In-Reply-To or References (RFC 5322 section 3.6.4), falling
// back to a loose reading when the strict one fails on junk.
func msgIDList(m *Message, key string) []string {
	ids, err := m.Header.MsgIDList(key)
	if err != nil {
		return looseMsgIDs(m.Header.Get(key))
	}
	return ids
}

// looseMsgIDs takes every "<...>" of v as a message id or, when v has no
// angle brackets at all as some mailers write it, every word with an "@".
func looseMsgIDs(v string) []string {
	var ids []string
	add := func(id string) {
		id = strings.TrimSpace(id)
		if id != "" && !strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '<' || r == '>' }) {
			ids = append(ids, id)
		}
	}
	if !strings.Contains(v, "<") {
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if strings.Contains(f, "@") {
				add(f)
			}
		}
		return ids
	}
	for {
		_, rest, ok := strings.Cut(v, "<")
		if !ok {
			return ids
		}
		id, after, ok := strings.Cut(rest, ">")
		if !ok {
			return ids
		}
		add(id)
		v = after
	}
}

// contentType returns the lowercased media type and its parameters. A missing
// or unreadable Content-Type is text/plain (RFC 2045 section 5.2).
func contentType(h gomessage.Header) (string, map[string]string) {
	t, params := parseParams(h.Get("Content-Type"))
	if !strings.Contains(t, "/") {
		t = "text/plain"
	}
	return t, params
}

// parseParams parses a Content-Type or Content-Disposition value. Parameter
// values are decoded from RFC 2231 and, as many clients send them, RFC 2047.
// Values that mime.ParseMediaType rejects (unquoted spaces, duplicates, 8-bit
// bytes, RFC 2231 in a charset other than UTF-8) are read leniently.
func parseParams(v string) (string, map[string]string) {
	t, params, err := mime.ParseMediaType(v)
	if err != nil || strings.Contains(v, "*") {
		lt, lp := looseParams(v)
		if err != nil {
			t, params = lt, map[string]string{}
		}
		lower := strings.ToLower(v)
		for k, p := range lp {
			if _, ok := params[k]; !ok || strings.Contains(lower, k+"*") {
				params[k] = p
			}
		}
	}
	for k, p := range params {
		params[k] = decodeWords(p)
	}
	return strings.ToLower(t), params
}

// decodeWords decodes RFC 2047 encoded words, keeping s as it is when they
// cannot be decoded.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d := mime.WordDecoder{CharsetReader: charset.Reader}
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}

// looseParams splits "type; k=v; k*=charset'lang'%xx; k*0*=..." by hand
// (RFC 2045 section 5.1, RFC 2231 sections 3 and 4).
func looseParams(v string) (string, map[string]string) {
	fields := splitUnquoted(v, ';')
	t := strings.TrimSpace(fields[0])
	type section struct {
		n   int
		val string
		enc bool // extended: percent-encoded, the first one with charset'lang'
	}
	sections := map[string][]section{}
	for _, f := range fields[1:] {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
		}
		s := section{val: val}
		if strings.HasSuffix(k, "*") {
			k, s.enc = k[:len(k)-1], true
		}
		if name, num, ok := strings.Cut(k, "*"); ok {
			n, err := strconv.Atoi(num)
			if err != nil || n > 100 {
				continue
			}
			k, s.n = name, n
		}
		sections[k] = append(sections[k], s)
	}
	params := make(map[string]string, len(sections))
	for k, ss := range sections {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].n < ss[j].n })
		var cs string
		var b []byte
		for i, s := range ss {
			if !s.enc {
				b = append(b, s.val...)
				continue
			}
			val := s.val
			if i == 0 {
				if parts := strings.SplitN(val, "'", 3); len(parts) == 3 {
					cs, val = parts[0], parts[2]
				}
			}
			if u, err := url.PathUnescape(val); err == nil {
				val = u
			}
			b = append(b, val...)
		}
		if s, err := decodeCharset(b, cs); err == nil {
			params[k] = s
		} else {
			params[k] = strings.ToValidUTF8(string(b), "\uFFFD")
		}
	}
	return t, params
}

// splitUnquoted splits s at sep outside double quotes.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// filename is the attachment's name from Content-Disposition (RFC 2183
// section 2.3) or else the older Content-Type name parameter, without any
// directory part.
func filename(dparams, params map[string]string) string {
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name))
}
