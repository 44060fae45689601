package trust

import (
	"errors"
	"fmt"
	"strings"
)

// This file parses Authentication-Results field values (RFC 8601 §2.2).
// It replaces go-msgauth's authres.Parse, which splits on every ";" and
// space: OpenDKIM's "(1024-bit key; unprotected)" comment, quoted values with
// spaces (reason="signature verification failed") and version numbers other
// than a bare "1" either break it or end up as bogus results.
//
// The parser is tolerant where tolerance cannot make a result pass: a resinfo
// it does not understand is dropped, never guessed at.

// result is one resinfo: a method, its result and its properties.
type result struct {
	method string            // lowercase, without method-version ("dkim")
	value  string            // lowercase ("pass")
	props  map[string]string // lowercase "ptype.property" → value, and "reason"
}

// String gives a short, loggable form ("dkim=pass header.d=example.org").
func (r result) String() string {
	s := r.method + "=" + r.value
	for _, k := range []string{"header.from", "header.d", "header.i"} {
		if v, ok := r.props[k]; ok {
			s += " " + k + "=" + v
		}
	}
	return loggable(s, 120)
}

// parseAuthResults parses an Authentication-Results field value. It returns
// the authserv-id whenever there is one, even with an error for the rest, so
// that a malformed field of ours still shadows any lower one.
func parseAuthResults(v string) (authservID string, results []result, err error) {
	parts := splitOutsideQuotes(stripComments(v), func(c byte) bool { return c == ';' })

	// authserv-id [CFWS authres-version]
	head := fields(parts[0])
	if len(head) == 0 || strings.ContainsRune(head[0], '=') {
		// Some Microsoft 365 servers start with "spf=pass ...": no id.
		return "", nil, errors.New("no authserv-id")
	}
	authservID = unquote(head[0])
	switch {
	case len(head) > 2:
		return authservID, nil, fmt.Errorf("unexpected %q after authserv-id", loggable(head[2], 40))
	case len(head) == 2 && head[1] != "1":
		return authservID, nil, fmt.Errorf("unsupported version %q", loggable(head[1], 40))
	}

	for _, part := range parts[1:] {
		words := fields(joinEquals(part))
		if len(words) == 0 || (len(words) == 1 && strings.EqualFold(words[0], "none")) {
			continue // no-result (RFC 8601 §2.2)
		}
		if r, ok := parseResinfo(words); ok {
			results = append(results, r)
		}
	}
	return authservID, results, nil
}

// parseResinfo parses "method[/version]=result [reason=...] ptype.prop=value...".
// A property given twice with different values makes the resinfo ambiguous,
// and it is dropped.
func parseResinfo(words []string) (result, bool) {
	method, value, ok := strings.Cut(words[0], "=")
	if !ok || method == "" || value == "" {
		return result{}, false
	}
	method, _, _ = strings.Cut(method, "/")
	r := result{
		method: asciiLower(strings.TrimSpace(method)),
		value:  asciiLower(unquote(value)),
		props:  make(map[string]string),
	}
	for _, w := range words[1:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		k, v = asciiLower(k), unquote(v)
		if old, dup := r.props[k]; dup && old != v {
			return result{}, false
		}
		r.props[k] = v
	}
	return r, true
}

// stripComments replaces RFC 5322 §3.2.2 comments with a space: they nest,
// "\" quotes the next character, and parentheses inside a quoted string are
// not comments. An unterminated comment runs to the end.
func stripComments(s string) string {
	var b strings.Builder
	depth, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth > 0:
			switch c {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
		case inQuote:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				inQuote = false
			}
		case c == '(':
			depth = 1
			b.WriteByte(' ')
		default:
			if c == '"' {
				inQuote = true
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitOutsideQuotes splits s at the bytes sep accepts, except inside quoted
// strings. It always returns at least one part.
func splitOutsideQuotes(s string, sep func(byte) bool) []string {
	var parts []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && sep(c):
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// fields splits s at white space outside quoted strings, dropping empty words.
func fields(s string) []string {
	var words []string
	for _, w := range splitOutsideQuotes(s, isSpace) {
		if w != "" {
			words = append(words, w)
		}
	}
	return words
}

// joinEquals removes the white space around "=" outside quoted strings, which
// RFC 8601's grammar allows ("dkim = pass"), so that fields keeps each
// key=value together.
func joinEquals(s string) string {
	out := make([]byte, 0, len(s))
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(s):
			out = append(out, c)
			i++
			c = s[i]
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '=':
			for len(out) > 0 && isSpace(out[len(out)-1]) {
				out = out[:len(out)-1]
			}
			for i+1 < len(s) && isSpace(s[i+1]) {
				i++
			}
		}
		out = append(out, c)
	}
	return string(out)
}

// unquote removes the double quotes of quoted strings in a word and resolves
// their quoted-pairs (RFC 5322 §3.2.4).
func unquote(w string) string {
	if !strings.ContainsAny(w, "\"\\") {
		return w
	}
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case c == '"':
			inQuote = !inQuote
		case inQuote && c == '\\' && i+1 < len(w):
			i++
			b.WriteByte(w[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
