package message

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, name := range []string{
		"thunderbird-flowed.eml", "gmail-reply.eml", "outlook365-html.eml",
		"applemail-html.eml", "csv-attachment.eml", "attachments.eml",
	} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add(nested(12))
	f.Add([]byte("From: a@x\r\nContent-Type: text/html\r\n\r\n<blockquote style=\"border:none\">> quoted</blockquote>"))
	f.Add([]byte("<style>@media x{.h:not(.y){color:#fff}} p.a{font:0/0 a}</style><p class=h style=\"color:rgb(1 2 3/50%);background:url(x) #fff\">a</p><font color=chucknorris size=+9>b</font><details><summary>s</summary>d</details>"))

	lim := Limits{MaxLines: 50, MaxLineLength: 80, MaxParts: 20, MaxDepth: 5, MaxAttachmentBytes: 1 << 12}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, l := range OwnLines(string(raw)) {
			if strings.HasPrefix(l, ">") {
				t.Fatalf("OwnLines(raw) kept quoted line %q", l)
			}
		}
		// HTML nested too deep is read up to there; nothing else fails.
		if _, err := HTMLToText(bytes.NewReader(raw)); err != nil && !errors.Is(err, errHTMLTooDeep) {
			t.Fatalf("HTMLToText: %v", err)
		}

		m, err := Parse(raw, lim)
		if err != nil {
			return
		}
		if !utf8.ValidString(m.Text) || strings.ContainsRune(m.Text, 0) {
			t.Fatalf("Text not clean UTF-8: %q", m.Text)
		}
		lines := strings.Split(m.Text, "\n")
		if len(lines) > lim.MaxLines {
			t.Fatalf("Text has %d lines, limit %d", len(lines), lim.MaxLines)
		}
		for _, l := range lines {
			if len(l) > lim.MaxLineLength {
				t.Fatalf("Text line of %d bytes, limit %d", len(l), lim.MaxLineLength)
			}
		}
		for _, l := range OwnLines(m.Text) {
			if strings.HasPrefix(l, ">") {
				t.Fatalf("OwnLines(Text) kept quoted line %q", l)
			}
		}
		if strings.ContainsFunc(m.Subject, unicode.IsControl) {
			t.Fatalf("Subject has control characters: %q", m.Subject)
		}
		for _, a := range m.Attachments {
			if len(a.Data) > lim.MaxAttachmentBytes || a.TooLarge && a.Data != nil {
				t.Fatalf("attachment over the limit kept: %d bytes, TooLarge=%v", len(a.Data), a.TooLarge)
			}
		}
	})
}

// FuzzParseInSteps: the header read alone, from the start of the message
// that holds it, and the body read later give the same Message as Parse.
func FuzzParseInSteps(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if raw, err := os.ReadFile("testdata/" + e.Name()); err == nil && strings.HasSuffix(e.Name(), ".eml") {
			f.Add(raw)
		}
	}
	f.Add([]byte("From sender@x Mon Nov 30 10:00:00 2026\nFrom: a@x\nSubject: s\n\nverify b@y\n"))
	f.Add([]byte("From: a@x\r\nSubject: header only, no line end"))
	f.Add([]byte("From: a@x\n\nLF header\r\n\r\nthen CRLF"))

	lim := Limits{MaxLines: 50, MaxLineLength: 80, MaxParts: 20, MaxDepth: 5, MaxAttachmentBytes: 1 << 12}
	f.Fuzz(func(t *testing.T, raw []byte) {
		whole, err := Parse(raw, lim)
		if err != nil {
			return
		}
		// The start of the message through a blank line, CRLF first, as
		// the bot cuts it (it may hold the start of the body); or all of
		// a message that has no blank line.
		head := raw
		if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
			head = raw[:i+4]
		} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
			head = raw[:i+2]
		}
		m, err := ParseHeader(head, lim)
		if err != nil {
			t.Fatalf("ParseHeader: %v, but Parse read the message", err)
		}
		if err := m.ReadBody(raw, lim); err != nil {
			t.Fatalf("ReadBody: %v", err)
		}
		if !reflect.DeepEqual(m, whole) {
			t.Fatalf("in steps:\n%#v\nParse:\n%#v", m, whole)
		}
		text := m.Text
		if err := m.ReadBody([]byte("From: x@y\r\n\r\nsomething else"), lim); err != nil || m.Text != text {
			t.Fatalf("a second ReadBody changed the message: %v, %q", err, m.Text)
		}
	})
}
