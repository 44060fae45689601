package main

import (
	"fmt"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/clientmail"
)

// The command messages are written the way real mail clients write them
// (package clientmail, shared with mailbot/itest): Thunderbird's
// format=flowed plain text with a signature, Gmail's multipart/alternative
// in quoted-printable with the quoted thread, and Outlook's HTML-only
// windows-1252 mail.
//
// The benchmark runs the plain stack, without the integration tests' real
// verifier (mailbot/testkit/verifier): it plays the MX the bot trusts and
// stamps that MX's Authentication-Results on top of each message itself, as
// a provider's inbound server does (RFC 8601 §5), so that its figures
// measure the bot and the stack, not OpenDKIM and OpenDMARC.
const authservID = "mx.visa.test"

type envelope = clientmail.Envelope

var domainOf = clientmail.DomainOf

func thunderbird(e envelope, body string) []byte { return clientmail.Thunderbird(stamped(e), body) }
func gmail(e envelope, body string) []byte       { return clientmail.Gmail(stamped(e), body) }
func outlook(e envelope, body string) []byte     { return clientmail.Outlook(stamped(e), body) }

// stamped adds the MX's verdict for a sender whose domain passed DKIM and
// DMARC, folded as OpenDKIM and OpenDMARC write it.
func stamped(e envelope) envelope {
	d := domainOf(e.From)
	e.AuthResults = []string{fmt.Sprintf("%s;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=%s header.i=@%s header.s=sel1 header.b=AbCd1234;\r\n\tspf=pass (%s: domain of %s designates 192.0.2.7 as permitted sender) smtp.mailfrom=%s;\r\n\tdmarc=pass (p=quarantine dis=none) header.from=%s",
		authservID, d, d, authservID, e.From, d, d)}
	return e
}

// plain is a small message with no command, for the stack's own delivery
// latency.
func plain(from, to, id string) []byte {
	return []byte("Message-ID: <" + id + ">\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nFrom: " + from +
		"\r\nTo: " + to + "\r\nSubject: ping\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nping\r\n")
}
