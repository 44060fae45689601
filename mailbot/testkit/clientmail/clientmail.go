// Package clientmail writes mail the way real clients write it, for the
// integration tests and the benchmark: messages that exercise the bot's
// reader as production mail does, not tidy one-line strings.
package clientmail

import (
	"fmt"
	"mime/quotedprintable"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/text/encoding/charmap"
)

// The messages below are written the way real mail clients write them:
// Thunderbird's format=flowed plain text with a signature, Gmail's
// multipart/alternative in quoted-printable with the quoted thread, Outlook's
// HTML-only mail with MsoNormal paragraphs and its reply block, and an
// ISO-8859-1 message from an older client.

// submissionHost names the sender's submission server in the Received
// field every message carries.
const submissionHost = "mx.visa.test"

// msgSeq makes generated Message-IDs unique within the process.
var msgSeq atomic.Int64

// Envelope is the header part every composer shares.
type Envelope struct {
	From, To, Subject string
	MessageID         string // "" = a fresh one
	// AuthResults are Authentication-Results values written on top,
	// topmost first: forgeries a test makes the receiving MX see, or the
	// verdict of the benchmark, which plays the MX itself. A client writes
	// none; the integration tests' come from a real verifier
	// (mailbot/testkit/verifier).
	AuthResults []string
	Extra       []string // more header lines, e.g. "Auto-Submitted: auto-replied"
	InReplyTo   string
}

// DomainOf is the domain of an address.
func DomainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// Header renders the envelope's header fields, then contentHeaders (the
// MIME fields, each ending in CRLF), without the blank line.
func (e Envelope) Header(contentHeaders string) string {
	if e.MessageID == "" {
		e.MessageID = fmt.Sprintf("%d.%d@%s", time.Now().UnixNano(), msgSeq.Add(1), DomainOf(e.From))
	}
	var b strings.Builder
	for _, v := range e.AuthResults {
		b.WriteString("Authentication-Results: " + v + "\r\n")
	}
	// The sender's own submission server, as it handed the mail on.
	b.WriteString("Received: from client.example (client.example [192.0.2.7])\r\n\tby " + submissionHost + " with ESMTPSA id 4Xk2; " + time.Now().Format(time.RFC1123Z) + "\r\n")
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", e.MessageID)
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s\r\n", e.From)
	fmt.Fprintf(&b, "To: %s\r\n", e.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", e.Subject)
	if e.InReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", e.InReplyTo, e.InReplyTo)
	}
	for _, x := range e.Extra {
		b.WriteString(x + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString(contentHeaders)
	return b.String()
}

// CRLF turns a text's line ends into CRLF.
func CRLF(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func qp(s string) string {
	var b strings.Builder
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(CRLF(s)))
	w.Close()
	return b.String()
}

// Thunderbird writes plain text, format=flowed, with a signature.
func Thunderbird(e Envelope, body string) []byte {
	h := e.Header("Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\nUser-Agent: Mozilla Thunderbird\r\nContent-Language: en-US\r\n")
	return []byte(h + "\r\n" + CRLF(body) + "\r\n\r\n-- \r\nSent from the front desk\r\n")
}

// Gmail writes multipart/alternative, both parts quoted-printable, with the
// thread it answers quoted below.
func Gmail(e Envelope, body string) []byte {
	const bnd = "000000000000a1b2c3d4e5f60718"
	h := e.Header("Content-Type: multipart/alternative; boundary=\"" + bnd + "\"\r\n")
	quote := "On Mon, 23 Nov 2026 at 09:12, Coworking Visa <visa@visa.test> wrote:\n> OK: added someone@example.org\n> remove member everyone@example.org\n"
	var html strings.Builder
	html.WriteString(`<div dir="ltr">`)
	for _, l := range strings.Split(body, "\n") {
		if l == "" {
			html.WriteString("<div><br></div>")
		} else {
			html.WriteString("<div>" + strings.ReplaceAll(strings.ReplaceAll(l, "<", "&lt;"), ">", "&gt;") + "</div>")
		}
	}
	html.WriteString(`</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 23 Nov 2026 at 09:12, Coworking Visa &lt;visa@visa.test&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">OK: added someone@example.org<br>remove member everyone@example.org</blockquote></div>`)
	return []byte(h + "\r\n--" + bnd + "\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		qp(body+"\n\n"+quote) + "\r\n--" + bnd + "\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		qp(html.String()) + "\r\n--" + bnd + "--\r\n")
}

// Outlook writes HTML only (as Outlook and Apple Mail may), windows-1252
// quoted-printable, one MsoNormal paragraph per line, smart quotes, and
// Outlook's reply block below.
func Outlook(e Envelope, body string) []byte {
	h := e.Header("Content-Type: text/html; charset=\"windows-1252\"\r\nContent-Transfer-Encoding: quoted-printable\r\nX-MS-Has-Attach: \r\nX-MS-TNEF-Correlator: \r\n")
	var p strings.Builder
	p.WriteString(`<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252"><style><!-- p.MsoNormal {margin:0cm;} --></style></head><body lang="EN-US"><div class="WordSection1">`)
	for _, l := range strings.Split(body, "\n") {
		l = strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(l)
		l = strings.ReplaceAll(l, `name="`, "name=\u201c")
		l = strings.ReplaceAll(l, `"`, "\u201d")
		if l == "" {
			l = "<o:p>&nbsp;</o:p>"
		}
		p.WriteString(`<p class="MsoNormal">` + l + `<o:p></o:p></p>`)
	}
	p.WriteString(`</div><div id="Signature"><p class="MsoNormal">Kind regards,<br>Front desk</p></div><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri" style="font-size:11pt"><b>From:</b> Coworking Visa &lt;visa@visa.test&gt;<br><b>Sent:</b> Monday, November 23, 2026 9:12 AM<br><b>Subject:</b> Re: verify</font><div>&nbsp;</div></div><div><p>remove member everyone@example.org</p></div></body></html>`)
	enc, err := charmap.Windows1252.NewEncoder().String(p.String())
	if err != nil {
		panic(err)
	}
	return []byte(h + "\r\n" + qp(enc) + "\r\n")
}

// Latin1 writes text/plain in ISO-8859-1, quoted-printable, as older
// clients in Europe do.
func Latin1(e Envelope, body string) []byte {
	h := e.Header("Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n")
	enc, err := charmap.ISO8859_1.NewEncoder().String(body)
	if err != nil {
		panic(err)
	}
	return []byte(h + "\r\n" + qp(enc) + "\r\n")
}
