package message

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
)

// eml builds a raw message with CRLF line ends, as it comes from IMAP.
func eml(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}

func TestParseCorpus(t *testing.T) {
	tests := []struct {
		file        string
		subject     string
		messageID   string
		inReplyTo   []string
		references  []string
		mediaType   string
		fromHTML    bool
		own         []string
		attachments []Attachment
	}{{
		file:      "thunderbird-flowed.eml",
		subject:   "New members for March",
		messageID: "3f1c2a9e-7b4d-4c1e-9a53-2d8e6f0b1c77@spacebar.example",
		mediaType: "text/plain",
		own: []string{
			"Hello,",
			"",
			`add member alice.smith@example.org name="Alice Smith" status=active until=2026-12-31`,
			"add member Zoë Müller <zoe.mueller@example.net>",
			"From now on please send the transcript to both of us.",
			"verify bob@example.org",
			"",
			"Thanks!",
			"",
		},
	}, {
		file:       "gmail-reply.eml",
		subject:    "Re: Your Coworking Visa transcript",
		messageID:  "CAF8yq=3kXo9gD_Zp1+Lr0vQ4XbM@mail.gmail.com",
		inReplyTo:  []string{"20260303090012.4F2A1C0B3D@visa.coworkingvisa.example"},
		references: []string{"20260303090012.4F2A1C0B3D@visa.coworkingvisa.example", "CAJx+4cU2=Vp0aQ7mQe6vN0kZt8@mail.gmail.com"},
		mediaType:  "multipart/alternative",
		own: []string{
			"verify bob@example.org",
			`add member carol@example.org name="Carol Díaz"`,
			"",
			"Thanks,",
			"Marta",
			"",
		},
	}, {
		file:       "outlook365-html.eml",
		subject:    "RE: Members",
		messageID:  "AM9PR07MB7153A1B2C3D4E5F60718293A4B5CAM9PR07MB7153@AM9PR07MB7153.eurprd07.prod.outlook.com",
		inReplyTo:  []string{"20260302173012.9C1D2E3F40@visa.coworkingvisa.example"},
		references: []string{"20260302173012.9C1D2E3F40@visa.coworkingvisa.example"},
		mediaType:  "text/html",
		fromHTML:   true,
		own: []string{
			"Hi,",
			"",
			`add member tom.baker@example.com name="Tom Baker" until=2026-06-30`,
			"update member lisa@example.com status=inactive",
			`add member o.connor@example.ie name="Siobhán O'Connor"`,
			"",
			"Kind regards,",
		},
	}, {
		file:       "applemail-html.eml",
		subject:    "Re: Roster",
		messageID:  "6E1F0C2B-8A4D-4F3B-9D6E-2C7A1B0F9E83@atelier-lyon.example",
		inReplyTo:  []string{"20260302173000.1A2B3C4D5E@visa.coworkingvisa.example"},
		references: []string{"20260302173000.1A2B3C4D5E@visa.coworkingvisa.example"},
		mediaType:  "text/html",
		fromHTML:   true,
		own:        []string{"remove member sam@example.org", "list members", "", "Merci,", "Claire", ""},
	}, {
		file:      "latin1-qp.eml",
		subject:   "Neue Mitglieder für März",
		messageID: "c8a1d0f3e2b4a5968778@werkraum.example",
		mediaType: "text/plain",
		own: []string{
			"Guten Tag,",
			"",
			`add member zoe@example.de name="Zoë Müller" until=2026-12-31`,
			"update member jürgen@example.de status=inactive",
			"",
			"Mit freundlichen Grüßen",
			"Björn",
		},
	}, {
		file:      "cp1252-base64.eml",
		subject:   "altas",
		messageID: "000001dc8b2a$4c3f1e20$e4bd5a60$@coworksevilla.example",
		mediaType: "text/plain",
		own: []string{
			`add member jose@example.es name="José Pérez" until=2026-09-30`,
			"verify ana@example.es",
			"",
			"Saludos,",
			"Ana – Cowork Sevilla (cuota 49 €)",
		},
	}, {
		file:      "iso2022jp.eml",
		subject:   "会員の追加",
		messageID: "20260303181000.A1B2.C3D4E5F6@cowork-shibuya.example",
		mediaType: "text/plain",
		own: []string{
			"お疲れ様です。",
			"",
			`add member taro@example.jp name="山田 太郎"`,
			"verify hanako@example.jp",
			"",
			"よろしくお願いします。",
			"佐藤",
		},
	}, {
		file:      "csv-attachment.eml",
		subject:   "roster",
		messageID: "8d2b7c41-5e3a-4f09-b6c1-a9e0f3d27b15@spacebar.example",
		mediaType: "multipart/mixed",
		own:       []string{"import members", ""},
		attachments: []Attachment{{
			Filename:    "members.csv",
			ContentType: "text/csv",
			Charset:     "iso-8859-1",
			Data: []byte("email;name;status;until\r\n" +
				"zoe@example.de;Zo\xeb M\xfcller;active;\r\n" +
				"francois@example.fr;Fran\xe7ois Lef\xe8vre;active;2026-12-31\r\n"),
		}},
	}, {
		file:      "csv-inline.eml",
		subject:   "import members replace",
		messageID: "177250320104.2178.6251897345120019512@backoffice.spacebar.example",
		mediaType: "multipart/mixed",
		own:       []string{"import members replace"},
		attachments: []Attachment{{
			ContentType: "text/csv",
			Charset:     "utf-8",
			Data: []byte("email,name,status,until\r\n" +
				"alice.smith@example.org,Alice Smith,active,\r\n" +
				"bob@example.org,Bob Jones,inactive,2026-03-31\r\n"),
		}},
	}, {
		file:       "outlook-de-plain.eml",
		subject:    "AW: Mitglieder",
		messageID:  "FR3P281MB1602B7C8D9E0F1A2B3C4D5E6F7A8FR3P281MB1602@FR3P281MB1602.DEUP281.PROD.OUTLOOK.COM",
		inReplyTo:  []string{"20260302173000.7E8F9A0B1C@visa.coworkingvisa.example"},
		references: []string{"20260302173000.7E8F9A0B1C@visa.coworkingvisa.example"},
		mediaType:  "text/plain",
		own: []string{
			"update member lena@example.de until=2026-08-31",
			"remove member max@example.de",
			"",
			"Viele Grüße",
			"Sabine Keller",
			"",
		},
	}, {
		file:      "rfc2047-subject.eml",
		subject:   `add member zoe@example.be name="Zoë Janssens"`,
		messageID: "D4C3B2A1-0F9E-4D8C-B7A6-5E4D3C2B1A09@cowork-gent.example",
		mediaType: "text/plain",
		own:       []string{"", "", "Sent from my iPhone"},
	}, {
		file:      "attachments.eml",
		subject:   "Fwd: Can I work from your space?",
		messageID: "fwd-1@spacebar.example",
		mediaType: "multipart/mixed",
		own:       []string{"verify someone@example.org"},
		attachments: []Attachment{
			{Filename: "image001.png", ContentType: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")},
			{Filename: "Mitglieder März.csv", ContentType: "application/vnd.ms-excel", Data: []byte("email,name\r\n")},
			{Filename: "Mitglieder Zürich.csv", ContentType: "application/octet-stream", Data: []byte("email,name\r\n")},
			{Filename: "Zoë.csv", ContentType: "text/plain", Charset: "iso-8859-1", Data: []byte("email,name\r\nzoe@example.de,Zo\xeb\r\n")},
			{ContentType: "message/rfc822", Data: eml(`From: Someone <someone@example.org>
To: Jana Novak <jana@spacebar.example>
Subject: Can I work from your space?
Date: Mon, 2 Mar 2026 09:00:00 +0100
Message-ID: <inner-1@example.org>
Content-Type: text/plain; charset=utf-8

add member attacker@example.org
`)},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(raw, Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(m.Problems) > 0 {
				t.Errorf("Problems = %q, want none", m.Problems)
			}
			if m.Truncated {
				t.Error("Truncated = true")
			}
			check := func(name string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", name, got, want)
				}
			}
			check("Subject", m.Subject, tc.subject)
			check("MessageID", m.MessageID, tc.messageID)
			check("InReplyTo", m.InReplyTo, tc.inReplyTo)
			check("References", m.References, tc.references)
			check("MediaType", m.MediaType, tc.mediaType)
			check("FromHTML", m.FromHTML, tc.fromHTML)
			check("OwnLines", OwnLines(m.Text), tc.own)
			check("Attachments", m.Attachments, tc.attachments)
			if m.Header.Get("From") == "" {
				t.Error("Header has no From")
			}
		})
	}
}

func TestParseText(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		text string
	}{{
		name: "flowed DelSp=yes joins without the space",
		raw: `From: a@example.org
Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes

add member alice@example.org name="Alice Sm 
ith"
`,
		text: `add member alice@example.org name="Alice Smith"`,
	}, {
		name: "not flowed keeps soft breaks",
		raw: `From: a@example.org
Content-Type: text/plain; charset=utf-8

add member alice@example.org 
name="Alice Smith"
`,
		text: "add member alice@example.org \nname=\"Alice Smith\"",
	}, {
		name: "koi8-r",
		raw:  "From: a@example.org\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\nadd member ivan@example.ru name=\"\xe9\xd7\xc1\xce\"\n",
		text: `add member ivan@example.ru name="Иван"`,
	}, {
		name: "iso-8859-15 euro sign",
		raw:  "From: a@example.org\nContent-Type: text/plain; charset=iso-8859-15\nContent-Transfer-Encoding: quoted-printable\n\n49 =A4 a month\n",
		text: "49 € a month",
	}, {
		name: "utf-16 with BOM",
		raw: "From: a@example.org\nContent-Type: text/plain; charset=utf-16\nContent-Transfer-Encoding: base64\n\n" +
			base64.StdEncoding.EncodeToString([]byte("\xff\xfev\x00e\x00r\x00i\x00f\x00y\x00 \x00b\x00@\x00x\x00\r\x00\n\x00")) + "\n",
		text: "verify b@x",
	}, {
		name: "invalid UTF-8 becomes U+FFFD and NUL bytes go",
		raw:  "From: a@example.org\nContent-Type: text/plain; charset=utf-8\n\nname=\"Zo\xeb\" \x00verify\x00 b@x\n",
		text: "name=\"Zo\uFFFD\" verify b@x",
	}, {
		name: "no-break spaces and smart quotes in plain text",
		raw:  "From: a@example.org\nContent-Type: text/plain; charset=utf-8\n\nadd\u00a0member a@x name=\u201cAl\u2019s\u201d\n",
		text: `add member a@x name="Al's"`,
	}, {
		name: "HTML without a charset parameter: meta charset",
		raw:  "From: a@example.org\nContent-Type: text/html\n\n<html><head><meta charset=\"iso-8859-1\"></head><body><p>Zo\xeb</p></body></html>\n",
		text: "Zoë",
	}, {
		name: "empty text/plain loses to HTML",
		raw: `From: a@example.org
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain

--b
Content-Type: text/html

<p>verify b@x</p>
--b--
`,
		text: "verify b@x",
	}, {
		name: "HTML first, text/plain later: text/plain wins",
		raw: `From: a@example.org
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/html

<p>verify b@x</p><p>from both</p>
--b
Content-Type: text/plain

verify b@x

from both
--b--
`,
		text: "verify b@x\n\nfrom both",
	}, {
		name: "a multipart/digest part without a Content-Type is a forwarded message",
		raw: `From: a@example.org
Content-Type: multipart/digest; boundary=b

--b

From: v@evil.test
Subject: hi

add member mallory@evil.test
--b--
`,
		text: "",
	}, {
		name: "message/rfc822 is not the body",
		raw: `From: a@example.org
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: message/rfc822

From: x@example.org
Subject: inner

add member inner@example.org
--b
Content-Type: text/plain

outer
--b--
`,
		text: "outer",
	}, {
		name: "lenient quoted-printable keeps a bare = and long lines",
		raw: "From: a@example.org\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nadd member a@x name=\"Al\" " +
			strings.Repeat("x", 5000) + "=\n=41\n",
		text: "add member a@x name=\"Al\" " + strings.Repeat("x", 1000-len(`add member a@x name="Al" `)),
	}, {
		name: "base64 with stray spaces",
		raw:  "From: a@example.org\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n dmVy aWZ5 IGJA eA==\n",
		text: "verify b@x",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(eml(tc.raw), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.Text != tc.text {
				t.Errorf("Text = %q, want %q", m.Text, tc.text)
			}
		})
	}
}

// nested builds a multipart nested depth deep with text at the bottom.
func nested(depth int) []byte {
	var b strings.Builder
	b.WriteString("From: a@example.org\nMIME-Version: 1.0\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\n\nverify deep@example.org\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return eml(b.String())
}

func TestParseHostile(t *testing.T) {
	big := strings.Repeat("QUJDREVGR0hJ\n", 20<<20/9) // 20 MiB decoded
	bigMsg := eml("From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nverify b@x\n--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" + big + "--b--\n")
	var manyParts strings.Builder
	manyParts.WriteString("From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n")
	for i := range 150 {
		fmt.Fprintf(&manyParts, "--b\nContent-Type: text/plain\nContent-Disposition: attachment\n\n%d\n", i)
	}
	manyParts.WriteString("--b--\n")

	tests := []struct {
		name  string
		raw   []byte
		lim   Limits
		err   error // nil: no error wanted; errAny: any error
		check func(t *testing.T, m *Message)
	}{{
		name: "100 nested multiparts",
		raw:  nested(100),
		check: func(t *testing.T, m *Message) {
			if !m.Truncated || m.Text != "" || len(m.Problems) == 0 {
				t.Errorf("Truncated=%v Text=%q Problems=%q", m.Truncated, m.Text, m.Problems)
			}
		},
	}, {
		name: "9 nested multiparts are read",
		raw:  nested(9),
		check: func(t *testing.T, m *Message) {
			if m.Truncated || m.Text != "verify deep@example.org" {
				t.Errorf("Truncated=%v Text=%q Problems=%q", m.Truncated, m.Text, m.Problems)
			}
		},
	}, {
		name: "multipart without boundary parameter",
		raw:  eml("From: a@example.org\nContent-Type: multipart/mixed\n\nverify b@x\n"),
		check: func(t *testing.T, m *Message) {
			if len(m.Problems) != 1 || m.Text != "" {
				t.Errorf("Text=%q Problems=%q", m.Text, m.Problems)
			}
		},
	}, {
		name: "boundary never in the body",
		raw:  eml("From: a@example.org\nContent-Type: multipart/mixed; boundary=nowhere\n\nverify b@x\n"),
		check: func(t *testing.T, m *Message) {
			if len(m.Problems) == 0 {
				t.Errorf("Text=%q Problems=%q", m.Text, m.Problems)
			}
		},
	}, {
		name: "unterminated multipart keeps the part read",
		raw:  eml("From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nverify b@x\n"),
		check: func(t *testing.T, m *Message) {
			if m.Text != "verify b@x" {
				t.Errorf("Text=%q Problems=%q", m.Text, m.Problems)
			}
		},
	}, {
		name: "broken base64 keeps what decodes",
		raw:  eml("From: a@example.org\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\ndmVyaWZ5IGJAeA==dmVyaWZ5\n"),
		check: func(t *testing.T, m *Message) {
			if m.Text != "verify b@x" || len(m.Problems) != 1 {
				t.Errorf("Text=%q Problems=%q", m.Text, m.Problems)
			}
		},
	}, {
		name: "unknown charset is read as UTF-8 and noted",
		raw:  eml("From: a@example.org\nContent-Type: text/plain; charset=x-klingon\n\nverify b@x\n"),
		check: func(t *testing.T, m *Message) {
			if m.Text != "verify b@x" || len(m.Problems) != 1 {
				t.Errorf("Text=%q Problems=%q", m.Text, m.Problems)
			}
		},
	}, {
		name: "unknown transfer encoding is read as is and noted",
		raw:  eml("From: a@example.org\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nverify b@x\n"),
		check: func(t *testing.T, m *Message) {
			if m.Text != "verify b@x" || len(m.Problems) != 1 {
				t.Errorf("Text=%q Problems=%q", m.Text, m.Problems)
			}
		},
	}, {
		name: "20 MiB attachment over MaxBytes",
		raw:  bigMsg,
		err:  ErrTooLarge,
	}, {
		name: "20 MiB attachment over MaxAttachmentBytes",
		raw:  bigMsg,
		lim:  Limits{MaxBytes: 64 << 20},
		check: func(t *testing.T, m *Message) {
			if len(m.Attachments) != 1 || !m.Attachments[0].TooLarge || m.Attachments[0].Data != nil {
				t.Fatalf("Attachments = %+v", m.Attachments)
			}
			if m.Text != "verify b@x" {
				t.Errorf("Text = %q", m.Text)
			}
		},
	}, {
		name: "attachment at the limit is kept",
		raw:  eml("From: a@example.org\nContent-Type: application/octet-stream\n\n0123456789"),
		lim:  Limits{MaxAttachmentBytes: 10},
		check: func(t *testing.T, m *Message) {
			if len(m.Attachments) != 1 || string(m.Attachments[0].Data) != "0123456789" || m.Attachments[0].TooLarge {
				t.Errorf("Attachments = %+v", m.Attachments)
			}
		},
	}, {
		name: "header only, no final line end",
		raw:  []byte("From: a@example.org\r\nSubject: verify b@x"),
		check: func(t *testing.T, m *Message) {
			if m.Subject != "verify b@x" || m.Text != "" {
				t.Errorf("Subject=%q Text=%q", m.Subject, m.Text)
			}
		},
	}, {
		name: "mbox From line from pipe delivery",
		raw:  eml("From alice@example.org Tue Mar  3 10:14:07 2026\nFrom: a@example.org\nSubject: hi\n\nverify b@x\n"),
		check: func(t *testing.T, m *Message) {
			if m.Header.Get("From") != "a@example.org" || m.Text != "verify b@x" {
				t.Errorf("From=%q Text=%q", m.Header.Get("From"), m.Text)
			}
		},
	}, {
		name: "binary garbage",
		raw:  []byte("\x00\x01\x02\xff\xfe garbage without colon\r\n\r\n"),
		err:  errAny,
	}, {
		name: "empty",
		raw:  nil,
		err:  errAny,
	}, {
		name: "no header fields",
		raw:  []byte("\r\nverify b@x\r\n"),
		err:  errAny,
	}, {
		name: "1 MB single line is cut",
		raw:  eml("From: a@example.org\n\nverify " + strings.Repeat("é", 1<<19) + "\n"),
		check: func(t *testing.T, m *Message) {
			if len(m.Text) > 1000 || !utf8.ValidString(m.Text) || !strings.HasPrefix(m.Text, "verify éé") {
				t.Errorf("len(Text)=%d valid=%v", len(m.Text), utf8.ValidString(m.Text))
			}
		},
	}, {
		name: "more lines than MaxLines",
		raw:  eml("From: a@example.org\n\n" + strings.Repeat("verify b@x\n", 600)),
		check: func(t *testing.T, m *Message) {
			if n := strings.Count(m.Text, "\n") + 1; n != 500 || !m.Truncated {
				t.Errorf("lines=%d Truncated=%v", n, m.Truncated)
			}
		},
	}, {
		name: "exactly MaxLines is not truncated",
		raw:  eml("From: a@example.org\n\n" + strings.Repeat("verify b@x\n", 500) + "\n\n"),
		check: func(t *testing.T, m *Message) {
			if n := strings.Count(m.Text, "\n") + 1; n != 500 || m.Truncated {
				t.Errorf("lines=%d Truncated=%v", n, m.Truncated)
			}
		},
	}, {
		name: "more parts than MaxParts",
		raw:  eml(manyParts.String()),
		check: func(t *testing.T, m *Message) {
			if !m.Truncated || len(m.Attachments) != 99 {
				t.Errorf("Truncated=%v attachments=%d", m.Truncated, len(m.Attachments))
			}
		},
	}, {
		name: "header injection through an encoded Subject",
		raw:  eml("From: a@example.org\nSubject: =?UTF-8?Q?verify_b@x=0D=0ABcc:_victim@example.org?=\n\n"),
		check: func(t *testing.T, m *Message) {
			if m.Subject != "verify b@x  Bcc: victim@example.org" {
				t.Errorf("Subject = %q", m.Subject)
			}
		},
	}, {
		name: "Subject in an unknown charset falls back to raw",
		raw:  eml("From: a@example.org\nSubject: =?x-klingon?Q?verify?=\n\n"),
		check: func(t *testing.T, m *Message) {
			if m.Subject != "=?x-klingon?Q?verify?=" {
				t.Errorf("Subject = %q", m.Subject)
			}
		},
	}, {
		name: "junk message ids",
		raw:  eml("From: a@example.org\nMessage-ID: <no-at-sign>\nIn-Reply-To: bare@example.org (comment\nReferences: <a@x> junk <b@y> <c@z\n\n"),
		check: func(t *testing.T, m *Message) {
			if m.MessageID != "no-at-sign" || !reflect.DeepEqual(m.InReplyTo, []string{"bare@example.org"}) ||
				!reflect.DeepEqual(m.References, []string{"a@x", "b@y"}) {
				t.Errorf("MessageID=%q InReplyTo=%q References=%q", m.MessageID, m.InReplyTo, m.References)
			}
		},
	}, {
		name: "unparsable Content-Type is text/plain",
		raw:  eml("From: a@example.org\nContent-Type: ;;;\n\nverify b@x\n"),
		check: func(t *testing.T, m *Message) {
			if m.MediaType != "text/plain" || m.Text != "verify b@x" {
				t.Errorf("MediaType=%q Text=%q", m.MediaType, m.Text)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.raw, tc.lim)
			switch {
			case tc.err == errAny && err == nil:
				t.Fatalf("Parse: no error, want one")
			case tc.err != nil && tc.err != errAny && !errors.Is(err, tc.err):
				t.Fatalf("Parse: %v, want %v", err, tc.err)
			case tc.err == nil && err != nil:
				t.Fatalf("Parse: %v", err)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestUnflow(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		delSp bool
		want  string
	}{
		{"soft break", "add member a@x \nname=\"A B\"", false, "add member a@x name=\"A B\""},
		{"DelSp", "add member a@x name=\"Al \nice\"", true, "add member a@x name=\"Alice\""},
		{"several", "a \nb \nc\nd", false, "a b c\nd"},
		{"space stuffing", " From here\n >not a quote", false, "From here\n>not a quote"},
		{"signature separator is not flowed", "thanks \n-- \nJana", false, "thanks -- \nJana"},
		{"separator alone", "thanks\n-- \nJana", false, "thanks\n-- \nJana"},
		{"quoted paragraph", "> one \n> two\nthree", false, "> one two\nthree"},
		{"quote depth change ends a paragraph", "> one \n>> two\nmine", false, "> one \n>> two\nmine"},
		{"flowed line at the end", "last ", false, "last "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unflow(tc.in, tc.delSp); got != tc.want {
				t.Errorf("unflow(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestQuotedPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"name=3D\"Zo=EB\"\r\n", "name=\"Zo\xeb\"\r\n"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=  \r\nbreak with padding", "softbreak with padding"},
		{"padding   \r\nnext", "padding\r\nnext"},
		{"=20\r\n", " \r\n"},
		{"bare = sign and =zz and =4", "bare = sign and =zz and =4"},
		{"lower =c3=a9", "lower \xc3\xa9"},
		{"end=", "end"},
	}
	for _, tc := range tests {
		var got bytes.Buffer
		if _, err := got.ReadFrom(newQPReader(strings.NewReader(tc.in))); err != nil {
			t.Errorf("%q: %v", tc.in, err)
		}
		if got.String() != tc.want {
			t.Errorf("decode(%q) = %q, want %q", tc.in, got.String(), tc.want)
		}
	}
}

// TestCorpusHTMLPart reads the HTML alternative of the Gmail reply, which
// Parse passes over for the text/plain one, with go-message's own decoder.
func TestCorpusHTMLPart(t *testing.T) {
	f, err := os.Open("testdata/gmail-reply.eml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := mail.CreateReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var html []byte
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no text/html part: %v", err)
		}
		if ct, _, _ := p.Header.(*mail.InlineHeader).ContentType(); ct == "text/html" {
			if html, err = io.ReadAll(p.Body); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	text, _, err := htmlPartText(html, "utf-8")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"verify bob@example.org", `add member carol@example.org name="Carol Díaz"`, "", "Thanks,", "Marta"}
	if got := OwnLines(text); !reflect.DeepEqual(got, want) {
		t.Errorf("OwnLines = %q, want %q", got, want)
	}
}
