package itest

import (
	"bytes"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/clientmail"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/verifier"
)

// The tests write mail as real clients do (package clientmail), sign it as
// the sender's provider does (package signer, keys in TestMain) and submit
// it to Postfix, whose milters, the real OpenDKIM and OpenDMARC of package
// verifier, write the Authentication-Results the bot reads.
const authservID = verifier.AuthservID

type envelope = clientmail.Envelope

var (
	thunderbird = clientmail.Thunderbird
	gmail       = clientmail.Gmail
	outlook     = clientmail.Outlook
	latin1      = clientmail.Latin1
	crlf        = clientmail.CRLF
)

// signed is raw DKIM-signed with the key of its From domain, as the
// sender's provider signs it on the way out.
func signed(t *testing.T, raw []byte) []byte {
	t.Helper()
	out, err := keys.Sign(raw)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return out
}

// signedAs is raw signed with another domain's key (d=domain): a signature
// that verifies but does not align with From.
func signedAs(t *testing.T, domain string, raw []byte) []byte {
	t.Helper()
	out, err := keys.SignAs(domain, raw)
	if err != nil {
		t.Fatalf("signing as %s: %v", domain, err)
	}
	return out
}

// prepend adds header fields (each "Name: value", no line end) on top of
// a message, as whoever holds a signed message can before submitting it
// again: a field added above a signed one of the same name leaves the
// signature valid (RFC 6376 §5.4.2).
func prepend(raw []byte, fields ...string) []byte {
	var b bytes.Buffer
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.Write(raw)
	return b.Bytes()
}
