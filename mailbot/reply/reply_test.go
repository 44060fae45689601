package reply

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

func TestRenderThreadsAndMarksAutomatic(t *testing.T) {
	raw, id, err := Render(Message{
		From: "visa@visa.test", FromName: "Coworking Visa", To: "alex@indyhall.test",
		Subject:   ReplySubject("verify bob@x.test"),
		InReplyTo: "m2@indyhall.test", References: []string{"m1@indyhall.test"},
		Text: "VERIFIED: bob", HTML: "<p>VERIFIED: bob</p>",
		Attachments: []Attachment{{Name: "roster.csv", ContentType: "text/csv", Data: []byte("email\nbob@x.test\n")}},
		Date:        time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header
	for k, want := range map[string]string{
		"Subject":        "Re: verify bob@x.test",
		"In-Reply-To":    "<m2@indyhall.test>",
		"References":     "<m1@indyhall.test> <m2@indyhall.test>",
		"Auto-Submitted": "auto-replied",
		"X-Loop":         "visa@visa.test",
		"Message-Id":     "<" + id + ">",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasSuffix(id, "@visa.test") {
		t.Errorf("Message-ID %q is not in the bot's domain", id)
	}
	var parts []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(interface {
			ContentType() (string, map[string]string, error)
		}).ContentType()
		parts = append(parts, ct)
	}
	if strings.Join(parts, ",") != "text/plain,text/html,text/csv" {
		t.Errorf("parts = %v", parts)
	}
}

// Whatever a sender puts in the subject, the reply's header stays one line.
func TestSubjectCannotInjectHeaders(t *testing.T) {
	raw, _, err := Render(Message{From: "visa@visa.test", To: "a@x.test",
		Subject: ReplySubject("hi\r\nBcc: victim@x.test\r\n\r\nbody"), Text: "x", Date: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	head := string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))])
	if strings.Contains(head, "\nBcc:") {
		t.Errorf("header injection:\n%s", head)
	}
	if got := ReplySubject("RE: x"); got != "RE: x" {
		t.Errorf("ReplySubject(RE: x) = %q", got)
	}
	if got := ReplySubject(""); got != "Re: your message" {
		t.Errorf("ReplySubject(\"\") = %q", got)
	}
}

func TestIsOwnMessageID(t *testing.T) {
	_, id, err := Render(Message{From: "visa@visa.test", To: "a@x.test", Subject: "x", Text: "x", Date: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want bool
	}{
		{id, true},
		{strings.ToUpper(id[:32]) + id[32:], true},
		{"abc@visa.test", false},                              // a person of the bot's domain
		{"0123456789abcdef0123456789abcdef@evil.test", false}, // another domain
		{"0123456789abcdef0123456789abcdeg@visa.test", false},
	} {
		if got := IsOwnMessageID(c.id, "visa@visa.test"); got != c.want {
			t.Errorf("IsOwnMessageID(%q) = %v, want %v", c.id, got, c.want)
		}
	}
}
