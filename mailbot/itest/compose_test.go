package itest

import "github.com/coworkingvisa/mailbot/mailbot/testkit/clientmail"

// The tests write mail as real clients do (package clientmail) and play the
// MX the bot trusts, stamping its Authentication-Results on top.
const authservID = clientmail.AuthservID

type envelope = clientmail.Envelope

var (
	thunderbird = clientmail.Thunderbird
	gmail       = clientmail.Gmail
	outlook     = clientmail.Outlook
	latin1      = clientmail.Latin1
	pass        = clientmail.Pass
	crlf        = clientmail.CRLF
)
