package trust

import (
	"errors"
	"strings"
	"testing"
)

const ours = "mx.example.org"

func TestAuthenticate(t *testing.T) {
	dmarc := Policy{Require: RequireDMARC, AuthservID: ours, BotAddress: "visa@coworkingvisa.test"}
	dkim := Policy{Require: RequireDKIM, AuthservID: ours, BotAddress: "visa@coworkingvisa.test"}
	gmailDMARC := Policy{Require: RequireDMARC, AuthservID: "mx.google.com"}
	gmailDKIM := Policy{Require: RequireDKIM, AuthservID: "mx.google.com"}
	fastmailDMARC := Policy{Require: RequireDMARC, AuthservID: "mx6.messagingengine.com"}
	none := Policy{Require: RequireNone}
	const mgr = "mgr@indyhall.test"

	tests := []struct {
		name    string
		raw     string
		policy  Policy
		want    Sender // zero: must not authenticate
		wantErr string // part of the error, when not authenticated
	}{
		// Real servers' headers.
		{"gmail dmarc", gmail, gmailDMARC, Sender{mgr, "dmarc"}, ""},
		{"gmail dkim via header.i", gmail, gmailDKIM, Sender{mgr, "dkim"}, ""},
		{"gmail fields are not ours", gmail, dmarc, Sender{}, `no Authentication-Results of "mx.example.org"`},
		{"m365 has no authserv-id", m365, dmarc, Sender{}, "no Authentication-Results"},
		{"opendmarc on top", openDMARCOverOpenDKIM, dmarc, Sender{mgr, "dmarc"}, ""},
		{"opendkim below opendmarc does not count", openDMARCOverOpenDKIM, dkim, Sender{}, "no dkim result"},
		{"opendkim comment with semicolon", openDKIM, dkim, Sender{mgr, "dkim"}, ""},
		{"aligned dkim satisfies dmarc", openDKIM, dmarc, Sender{mgr, "dkim"}, ""},
		{"fastmail with arc=none", fastmail, fastmailDMARC, Sender{mgr, "dmarc"}, ""},
		{"rspamd", rspamd, dmarc, Sender{mgr, "dmarc"}, ""},
		{"version 1", ar(mgr, "mx.example.org 1; dmarc=pass (p=none dis=none) header.from=indyhall.test"), dmarc, Sender{mgr, "dmarc"}, ""},
		{"none result", ar(mgr, "mx.example.org; none"), dmarc, Sender{}, "no dmarc result"},
		{"authserv-id case", ar(mgr, "MX.Example.ORG; dmarc=pass header.from=indyhall.test"), dmarc, Sender{mgr, "dmarc"}, ""},
		{"header.from case", ar(mgr, "mx.example.org; dmarc=pass header.from=IndyHall.TEST"), dmarc, Sender{mgr, "dmarc"}, ""},
		{"dmarc pass without header.from", ar(mgr, "mx.example.org; dmarc=pass"), dmarc, Sender{mgr, "dmarc"}, ""},
		{"other id on top is skipped", ar(mgr, "mx.google.com; dmarc=fail header.from=indyhall.test", "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{mgr, "dmarc"}, ""},
		{"m365 on top is skipped", strings.Replace(m365, "Received-SPF", "Authentication-Results: mx.example.org; dmarc=pass header.from=indyhall.test\nReceived-SPF", 1), dmarc, Sender{mgr, "dmarc"}, ""},

		// Relaxed alignment (RFC 7489 §3.1.1).
		{"dkim subdomain aligned", ar(mgr, "mx.example.org; dkim=pass header.d=mail.indyhall.test"), dkim, Sender{mgr, "dkim"}, ""},
		{"from subdomain aligned", ar("mgr@lists.indyhall.test", "mx.example.org; dkim=pass header.d=indyhall.test"), dkim, Sender{"mgr@lists.indyhall.test", "dkim"}, ""},
		{"co.uk aligned", ar("mgr@indyhall.co.uk", "mx.example.org; dkim=pass header.d=mail.indyhall.co.uk"), dkim, Sender{"mgr@indyhall.co.uk", "dkim"}, ""},
		{"co.uk neighbour", ar("mgr@indyhall.co.uk", "mx.example.org; dkim=pass header.d=evil.co.uk"), dkim, Sender{}, "no passing aligned result: dkim=pass header.d=evil.co.uk"},
		{"co.uk itself", ar("mgr@indyhall.co.uk", "mx.example.org; dkim=pass header.d=co.uk"), dkim, Sender{}, "no passing aligned result"},
		{"github.io neighbour", ar("mgr@indyhall.github.io", "mx.example.org; dkim=pass header.d=mallory.github.io"), dkim, Sender{}, "no passing aligned result"},
		{"one good signature among bad", ar(mgr, "mx.example.org; dkim=fail header.d=indyhall.test; dkim=pass header.d=indyhall.test; dkim=pass header.d=esp.test"), dkim, Sender{mgr, "dkim"}, ""},

		// Forgeries and failures.
		{"no header", "From: " + mgr + "\n" + rest, dmarc, Sender{}, "no Authentication-Results"},
		{"forged other id", ar(mgr, "evil.test; dmarc=pass header.from=indyhall.test; dkim=pass header.d=indyhall.test"), dmarc, Sender{}, "no Authentication-Results"},
		{"forged ARC copy", "ARC-Authentication-Results: i=1; mx.example.org; dmarc=pass header.from=indyhall.test\n" + ar(mgr), dmarc, Sender{}, "no Authentication-Results"},
		{"topmost of ours wins", ar(mgr, "mx.example.org; dmarc=fail (p=reject dis=none) header.from=indyhall.test", "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "dmarc=fail"},
		{"topmost of ours has no result", ar(mgr, "mx.example.org; none", "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "no dmarc result"},
		{"malformed topmost of ours", ar(mgr, "mx.example.org 2; dmarc=fail", "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "unsupported version"},
		{"dmarc pass for another domain", ar(mgr, "mx.example.org; dmarc=pass header.from=evil.test"), dmarc, Sender{}, "dmarc=pass header.from=evil.test"},
		{"dkim pass unaligned", ar(mgr, "mx.example.org; dkim=pass header.d=evil.test header.i=@evil.test"), dmarc, Sender{}, "dkim=pass header.d=evil.test"},
		{"dkim pass without domain", ar(mgr, "mx.example.org; dkim=pass header.s=default"), dkim, Sender{}, "no passing aligned result"},
		{"dmarc pass does not satisfy dkim", ar(mgr, "mx.example.org; dmarc=pass header.from=indyhall.test"), dkim, Sender{}, "no dkim result"},
		{"dmarc fail vetoes aligned dkim", ar(mgr, "mx.example.org; dkim=pass header.d=mail.indyhall.test; dmarc=fail (p=reject) header.from=indyhall.test"), dmarc, Sender{}, "dmarc=fail"},
		{"dmarc=none", ar(mgr, "mx.example.org; dmarc=none header.from=indyhall.test"), dmarc, Sender{}, "dmarc=none"},
		{"dmarc=temperror", ar(mgr, "mx.example.org; dmarc=temperror header.from=indyhall.test"), dmarc, Sender{}, "dmarc=temperror"},
		{"dmarc=permerror", ar(mgr, "mx.example.org; dmarc=permerror header.from=indyhall.test"), dmarc, Sender{}, "dmarc=permerror"},
		{"dkim=fail", ar(mgr, `mx.example.org; dkim=fail reason="signature verification failed" (2048-bit key; unprotected) header.d=indyhall.test`), dmarc, Sender{}, "dkim=fail"},
		{"dkim=neutral", ar(mgr, "mx.example.org; dkim=neutral (bad format) header.d=indyhall.test"), dkim, Sender{}, "dkim=neutral"},
		{"dkim=policy", ar(mgr, "mx.example.org; dkim=policy header.d=indyhall.test"), dkim, Sender{}, "dkim=policy"},
		{"dkim=temperror", ar(mgr, "mx.example.org; dkim=temperror header.d=indyhall.test"), dkim, Sender{}, "dkim=temperror"},
		{"dkim=permerror", ar(mgr, "mx.example.org; dkim=permerror header.d=indyhall.test"), dkim, Sender{}, "dkim=permerror"},
		{"ambiguous property", ar(mgr, "mx.example.org; dkim=pass header.d=indyhall.test header.d=evil.test"), dkim, Sender{}, "no dkim result"},
		{"injected result in a quoted value", ar(mgr, `mx.example.org; dkim=fail header.d="evil.test; dkim=pass header.d=indyhall.test"`), dkim, Sender{}, "dkim=fail"},
		{"cyrillic look-alike", ar("mgr@indуhall.test", "mx.example.org; dkim=pass header.d=indyhall.test; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "dkim=pass header.d=indyhall.test; dmarc=pass header.from=indyhall.test"},
		{"display name is not the address", ar(`"mgr@indyhall.test" <mallory@evil.test>`, "mx.example.org; dmarc=pass header.from=evil.test"), dmarc, Sender{"mallory@evil.test", "dmarc"}, ""},
		{"two From fields", "From: " + mgr + "\n" + ar(mgr, "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "2 From fields"},
		{"two mailboxes", ar("mgr@indyhall.test, mallory@evil.test", "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "2 mailboxes"},
		{"group", ar("Managers: mgr@indyhall.test;", "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "group"},
		{"encoded-word address", ar("=?utf-8?q?mgr?=@indyhall.test", "mx.example.org; dmarc=pass header.from=indyhall.test"), dmarc, Sender{}, "encoded word"},
		// The canonical form (address.Canonical) on both sides: the From and
		// the domains the receiving server names.
		{"unicode sender as stored", ar("MÜLLER@Müller.TEST", "mx.example.org; dmarc=pass header.from=MÜLLER.test"), dmarc, Sender{"müller@müller.test", "dmarc"}, ""},
		{"unicode dkim domain", ar("mgr@müller.test", "mx.example.org; dkim=pass header.d=MÜLLER.test"), dkim, Sender{"mgr@müller.test", "dkim"}, ""},
		{"a-label result is not the u-label From", ar("mgr@müller.test", "mx.example.org; dmarc=pass header.from=xn--mller-kva.test"), dmarc, Sender{}, "no passing aligned result"},
		{"kelvin header.from is no pass", ar("mgr@kindyhall.test", "mx.example.org; dmarc=pass header.from=\u212Aindyhall.test"), dmarc, Sender{}, "no passing aligned result"},
		{"kelvin header.d is no pass", ar("mgr@kindyhall.test", "mx.example.org; dkim=pass header.d=\u212Aindyhall.test"), dkim, Sender{}, "no passing aligned result"},
		{"kelvin From refused", ar("mgr@\u212Aindyhall.test", "mx.example.org; dmarc=pass header.from=kindyhall.test"), dmarc, Sender{}, "U+212A"},
		{"empty header.from is no pass", ar(mgr, "mx.example.org; dmarc=pass header.from="), dmarc, Sender{}, "no passing aligned result"},
		{"from the bot", ar("visa@coworkingvisa.test", "mx.example.org; dmarc=pass header.from=coworkingvisa.test"), dmarc, Sender{}, "bot's own address"},

		// Require none still wants one clean From.
		{"none needs no results", "From: MGR@IndyHall.test\n" + rest, none, Sender{mgr, "none"}, ""},
		{"none still checks From", "From: a@x.test, b@x.test\n" + rest, none, Sender{}, "2 mailboxes"},

		// Policies that cannot work.
		{"unknown require", gmail, Policy{Require: "spf", AuthservID: ours}, Sender{}, "unknown require"},
		{"no authserv-id", gmail, Policy{Require: RequireDMARC}, Sender{}, "needs an authserv-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Authenticate(parseHeader(t, tt.raw), tt.policy)
			if tt.want != (Sender{}) {
				if err != nil || got != tt.want {
					t.Fatalf("Authenticate = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Authenticate = %+v; want an error", got)
			}
			if !errors.Is(err, ErrNotAuthenticated) {
				t.Errorf("error %q does not wrap ErrNotAuthenticated", err)
			}
			if got != (Sender{}) {
				t.Errorf("Authenticate returned %+v with the error", got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p  Policy
		ok bool
	}{
		{Policy{Require: "dmarc", AuthservID: "mx.example.org"}, true},
		{Policy{Require: "dkim", AuthservID: "mx.example.org"}, true},
		{Policy{Require: "none"}, true},
		{Policy{Require: "DMARC", AuthservID: "mx.example.org"}, false},
		{Policy{Require: ""}, false},
		{Policy{Require: "dkim"}, false},
		{Policy{Require: "dmarc", DKIM: &DKIMVerifier{}}, true},
		{Policy{Require: "dmarc", AuthservID: "mx.example.org 1"}, false},
		{Policy{Require: "dmarc", AuthservID: "spf=pass"}, false},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v; want ok %v", tt.p, err, tt.ok)
		}
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		auth, from string
		want       bool
	}{
		{"indyhall.test", "indyhall.test", true},
		{"INDYHALL.test.", "indyhall.test", true},
		{"mail.indyhall.test", "indyhall.test", true},
		{"indyhall.test", "a.b.indyhall.test", true},
		{"evil.test", "indyhall.test", false},
		{"indyhall.test.evil.test", "indyhall.test", false},
		{"mail.indyhall.co.uk", "indyhall.co.uk", true},
		{"evil.co.uk", "indyhall.co.uk", false},
		{"co.uk", "indyhall.co.uk", false},
		{"mail.indyhall.com.au", "indyhall.com.au", true},
		{"evil.com.br", "indyhall.com.br", false},
		{"evil.ac.uk", "indyhall.ac.uk", false},
		{"mallory.github.io", "indyhall.github.io", false},
		{"indyhall.test", "indуhall.test", false}, // Cyrillic у
		{"MÜLLER.test", "müller.test", true},
		{"\u212Aindyhall.test", "kindyhall.test", false}, // Kelvin sign
		{"xn--mller-kva.test", "müller.test", false},     // kept as written
		{"", "indyhall.test", false},
		{"indyhall.test", "", false},
	}
	for _, tt := range tests {
		if got := aligned(tt.auth, tt.from); got != tt.want {
			t.Errorf("aligned(%q, %q) = %v; want %v", tt.auth, tt.from, got, tt.want)
		}
	}
}
