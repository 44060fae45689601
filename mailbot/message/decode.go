package message

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	htmlcharset "golang.org/x/net/html/charset"
)

// qpReader decodes quoted-printable (RFC 2045 section 6.7) as leniently as
// mail clients do: lines of any length, "=" not followed by two hex digits
// kept as it is, any control byte passed through. Whitespace at the end of a
// line is transport padding and dropped (rule 3); a hard line break is CRLF.
type qpReader struct {
	br  *bufio.Reader
	out []byte // decoded, not yet returned
	err error
}

func newQPReader(r io.Reader) io.Reader {
	return &qpReader{br: bufio.NewReader(r)}
}

func (q *qpReader) Read(p []byte) (int, error) {
	for len(q.out) == 0 && q.err == nil {
		var line []byte
		line, q.err = readLine(q.br)
		q.out = decodeQPLine(q.out[:0], line)
	}
	n := copy(p, q.out)
	q.out = q.out[n:]
	if n > 0 {
		return n, nil
	}
	return 0, q.err
}

// readLine reads up to and including the next LF, however long the line is.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

func decodeQPLine(dst, line []byte) []byte {
	hard := bytes.HasSuffix(line, []byte("\n"))
	line = bytes.TrimRight(line, " \t\r\n")
	if bytes.HasSuffix(line, []byte("=")) {
		line, hard = line[:len(line)-1], false // soft line break
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '=' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
			c = unhex(line[i+1])<<4 | unhex(line[i+2])
			i += 2
		}
		dst = append(dst, c)
	}
	if hard {
		dst = append(dst, '\r', '\n')
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// base64Alphabet drops what is not in the base64 alphabet, which RFC 2045
// section 6.8 says to ignore (line ends, but also stray spaces and junk).
type base64Alphabet struct{ r io.Reader }

func newBase64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, base64Alphabet{r})
}

func (a base64Alphabet) Read(p []byte) (int, error) {
	for {
		n, err := a.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// decodeCharset converts b from the named charset to UTF-8. An unknown
// charset leaves b as it is, and the error says so.
func decodeCharset(b []byte, label string) (string, error) {
	label = strings.ToLower(strings.TrimSpace(label))
	switch label {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return string(b), nil
	}
	r, err := charset.Reader(label, bytes.NewReader(b))
	if err != nil {
		return string(b), fmt.Errorf("unknown charset %q: read as UTF-8", label)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return string(out), fmt.Errorf("decoding charset %q: %w (keeping what was read)", label, err)
	}
	return string(out), nil
}

// htmlPartText converts an HTML body part to text: own is what HTMLToText
// gives; visible renders every line the reader sees (for comparing a plain
// text alternative). Without a declared charset it looks for a BOM or
// <meta charset> as a browser does, else tells UTF-8 from windows-1252.
func htmlPartText(b []byte, label string) (own string, visible func() string, err error) {
	if label == "" {
		_, label, _ = htmlcharset.DetermineEncoding(b, "text/html")
	}
	s, err := decodeCharset(b, label)
	own, visible, herr := renderHTML(strings.NewReader(cleanText(s)))
	return own, visible, errors.Join(err, herr)
}

// cleanText makes decoded text safe to work on: valid UTF-8 (U+FFFD for the
// rest), LF line ends, no NUL, byte order marks or zero-width spaces.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r':
			return '\n'
		case 0, '\uFEFF', '\u200B':
			return -1
		}
		return r
	}, s)
}

// normaliseQuotes turns the typographic quotes Word and Outlook put in for
// typed ones back into ASCII, and no-break spaces into spaces, so that
// name=“Alice Smith” pasted from Word parses as name="Alice Smith".
func normaliseQuotes(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\u201C', '\u201D', '\u201E', '\u201F', '\u2033':
			return '"'
		case '\u2018', '\u2019', '\u201A', '\u201B', '\u2032':
			return '\''
		case '\u00A0', '\u2007', '\u202F':
			return ' '
		}
		return r
	}, s)
}

// unflow joins the soft line breaks of format=flowed text (RFC 3676 section
// 4): a line ending in a space continues on the next one, unless it is the
// signature separator "-- " or the quote depth changes (section 4.5). A
// leading space is stuffing (section 4.4); with DelSp=yes the trailing space
// was added by the sender and goes too (section 4.2).
func unflow(s string, delSp bool) string {
	var out []string
	var para strings.Builder
	open, openDepth := false, 0
	end := func() {
		prefix := ""
		if openDepth > 0 {
			prefix = strings.Repeat(">", openDepth) + " "
		}
		out = append(out, prefix+para.String())
		para.Reset()
		open = false
	}
	for _, line := range strings.Split(s, "\n") {
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		text := strings.TrimPrefix(line[depth:], " ")
		flowed := strings.HasSuffix(text, " ") && text != "-- "
		if flowed && delSp {
			text = text[:len(text)-1]
		}
		if open && depth != openDepth {
			end()
		}
		para.WriteString(text)
		open, openDepth = true, depth
		if !flowed {
			end()
		}
	}
	if open {
		end()
	}
	return strings.Join(out, "\n")
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
