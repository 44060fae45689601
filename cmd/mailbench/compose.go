package main

import (
	"fmt"
	"mime/quotedprintable"
	"strings"
	"time"

	"golang.org/x/text/encoding/charmap"
)

// The command messages are written the way real mail clients write them
// (as in mailbot/itest): Thunderbird's format=flowed plain text with a
// signature, Gmail's multipart/alternative in quoted-printable with the
// quoted thread, and Outlook's HTML-only windows-1252 mail. Each carries the
// Authentication-Results header of the MX the bot trusts, as a provider's
// inbound server stamps it (RFC 8601 §5).

// authservID is the trusted MX's id in the bot's config.
const authservID = "mx.visa.test"

// envelope is the header part every composer shares.
type envelope struct {
	From, To, Subject string
	MessageID         string // without <>
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// pass is the Authentication-Results our MX writes for a sender whose
// domain passed DMARC.
func pass(from string) string {
	d := domainOf(from)
	return fmt.Sprintf("%s;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=%s header.i=@%s header.s=sel1 header.b=AbCd1234;\r\n\tspf=pass (%s: domain of %s designates 192.0.2.7 as permitted sender) smtp.mailfrom=%s;\r\n\tdmarc=pass (p=quarantine dis=none) header.from=%s",
		authservID, d, d, authservID, from, d, d)
}

func (e envelope) header(contentHeaders string) string {
	now := time.Now().Format(time.RFC1123Z)
	var b strings.Builder
	b.WriteString("Authentication-Results: " + pass(e.From) + "\r\n")
	b.WriteString("Received: from client.example (client.example [192.0.2.7])\r\n\tby " + authservID + " with ESMTPSA id 4Xk2; " + now + "\r\n")
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", e.MessageID)
	fmt.Fprintf(&b, "Date: %s\r\n", now)
	fmt.Fprintf(&b, "From: %s\r\n", e.From)
	fmt.Fprintf(&b, "To: %s\r\n", e.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", e.Subject)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString(contentHeaders)
	return b.String()
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func qp(s string) string {
	var b strings.Builder
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(crlf(s)))
	w.Close()
	return b.String()
}

// thunderbird writes plain text, format=flowed, with a signature.
func thunderbird(e envelope, body string) []byte {
	h := e.header("Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\nUser-Agent: Mozilla Thunderbird\r\nContent-Language: en-US\r\n")
	return []byte(h + "\r\n" + crlf(body) + "\r\n\r\n-- \r\nSent from the front desk\r\n")
}

// gmail writes multipart/alternative, both parts quoted-printable, with the
// thread it answers quoted below.
func gmail(e envelope, body string) []byte {
	const bnd = "000000000000a1b2c3d4e5f60718"
	h := e.header("Content-Type: multipart/alternative; boundary=\"" + bnd + "\"\r\n")
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

// outlook writes HTML only, windows-1252 quoted-printable, one MsoNormal
// paragraph per line, smart quotes, and Outlook's reply block below.
func outlook(e envelope, body string) []byte {
	h := e.header("Content-Type: text/html; charset=\"windows-1252\"\r\nContent-Transfer-Encoding: quoted-printable\r\nX-MS-Has-Attach: \r\nX-MS-TNEF-Correlator: \r\n")
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

// plain is a small message with no command, for the stack's own delivery
// latency.
func plain(from, to, id string) []byte {
	return []byte("Message-ID: <" + id + ">\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nFrom: " + from +
		"\r\nTo: " + to + "\r\nSubject: ping\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nping\r\n")
}
