// Package reply renders the bot's outgoing mail (command replies, notices,
// digests) to the exact bytes that go into the outbox. Rendering once and
// storing the bytes means a message sent again after a crash is identical to
// the first attempt, Message-ID included.
package reply

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"

	gomail "github.com/wneessen/go-mail"
)

// Attachment is a file sent with a message, such as a roster CSV.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Message describes one outgoing message.
type Message struct {
	From, FromName string // the bot
	To             string
	Subject        string
	InReplyTo      string   // Message-ID answered, without <>; "" for unsolicited mail
	References     []string // the original's References, without <>
	Text, HTML     string
	Attachments    []Attachment
	Date           time.Time
	// AutoSubmitted is "auto-replied" for answers and "auto-generated" for
	// digests and notices (RFC 3834 §5).
	AutoSubmitted string
}

// maxReferences bounds the References chain of a long thread.
const maxReferences = 10

// Render builds the message and returns its bytes and its Message-ID
// (without <>).
func Render(m Message) ([]byte, string, error) {
	msg := gomail.NewMsg()
	if err := msg.FromFormat(m.FromName, m.From); err != nil {
		return nil, "", fmt.Errorf("reply From %q: %w", m.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, "", fmt.Errorf("reply To %q: %w", m.To, err)
	}
	msg.Subject(oneLine(m.Subject, 250))
	id, err := newMessageID(m.From)
	if err != nil {
		return nil, "", err
	}
	msg.SetMessageIDWithValue(id)
	msg.SetDateWithValue(m.Date)
	msg.SetUserAgent("Coworking Visa mailbot")
	if m.InReplyTo != "" {
		msg.SetGenHeader(gomail.HeaderInReplyTo, "<"+m.InReplyTo+">")
		refs := append(append([]string(nil), m.References...), m.InReplyTo)
		if len(refs) > maxReferences {
			refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
		}
		for i, r := range refs {
			refs[i] = "<" + r + ">"
		}
		// One space-separated value: go-mail joins several with ", ".
		msg.SetGenHeader(gomail.HeaderReferences, strings.Join(refs, " "))
	}
	auto := m.AutoSubmitted
	if auto == "" {
		auto = "auto-replied"
	}
	// RFC 3834 §5: mark automatic mail so other robots do not answer it;
	// X-Loop lets the bot recognise its own mail coming back.
	msg.SetGenHeader("Auto-Submitted", auto)
	msg.SetGenHeader("X-Loop", m.From)
	msg.SetGenHeader("Precedence", "auto_reply")
	msg.SetGenHeader("X-Auto-Response-Suppress", "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	for _, a := range m.Attachments {
		ct := gomail.ContentType(a.ContentType)
		if err := msg.AttachReader(a.Name, bytes.NewReader(a.Data), gomail.WithFileContentType(ct)); err != nil {
			return nil, "", fmt.Errorf("attach %s: %w", a.Name, err)
		}
	}
	// Sized for the header, quoted-printable text and base64 attachments
	// at once: grown step by step, the buffer was most of a reply's
	// garbage.
	size := 4<<10 + (len(m.Text)+len(m.HTML))*11/10
	for _, a := range m.Attachments {
		size += len(a.Data)*4/3 + len(a.Data)/38 + 512
	}
	var buf bytes.Buffer
	buf.Grow(size)
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, "", fmt.Errorf("render reply: %w", err)
	}
	return buf.Bytes(), id, nil
}

// ReplySubject is the Subject of an answer: "Re: " and the original, once.
func ReplySubject(original string) string {
	s := oneLine(original, 200)
	if s == "" {
		return "Re: your message"
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

// IsOwnMessageID reports whether id (without <>) has the shape of the ids
// newMessageID makes for the sender from: 32 hex digits at from's domain. A
// person of the same domain does not write ids of that shape.
func IsOwnMessageID(id, from string) bool {
	at := strings.LastIndexByte(from, '@')
	local, domain, ok := strings.Cut(id, "@")
	if at < 0 || !ok || len(local) != 32 || !strings.EqualFold(domain, from[at+1:]) {
		return false
	}
	_, err := hex.DecodeString(local)
	return err == nil
}

// newMessageID makes a unique id in the bot's domain (RFC 5322 §3.6.4).
func newMessageID(from string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	domain := "mailbot.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		domain = from[i+1:]
	}
	return hex.EncodeToString(b) + "@" + domain, nil
}

// oneLine makes untrusted text safe for a header: control characters
// (CR and LF above all) become spaces, and it is cut to n runes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n])
	}
	return s
}
