package main

import (
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/clientmail"
)

// The command messages are written the way real mail clients write them
// (package clientmail, shared with mailbot/itest): Thunderbird's
// format=flowed plain text with a signature, Gmail's multipart/alternative
// in quoted-printable with the quoted thread, and Outlook's HTML-only
// windows-1252 mail. Each carries the Authentication-Results header of the
// MX the bot trusts, as a provider's inbound server stamps it (RFC 8601 §5).
const authservID = clientmail.AuthservID

type envelope = clientmail.Envelope

var (
	thunderbird = clientmail.Thunderbird
	gmail       = clientmail.Gmail
	outlook     = clientmail.Outlook
	domainOf    = clientmail.DomainOf
)

// plain is a small message with no command, for the stack's own delivery
// latency.
func plain(from, to, id string) []byte {
	return []byte("Message-ID: <" + id + ">\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nFrom: " + from +
		"\r\nTo: " + to + "\r\nSubject: ping\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nping\r\n")
}
