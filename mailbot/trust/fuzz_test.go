package trust

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	nettextproto "net/textproto"
)

// FuzzAuthenticate feeds raw headers to every entry point. Nothing may panic;
// a message that cannot hold an Authentication-Results field of the policy's
// authserv-id must never authenticate; an authenticated sender is always the
// one FromAddress returns.
func FuzzAuthenticate(f *testing.F) {
	for _, s := range []string{
		gmail, m365, openDMARCOverOpenDKIM, openDKIM, fastmail, rspamd,
		ar("mgr@indyhall.test", "mx.example.org 1; dmarc=pass header.from=indyhall.test"),
		ar("mgr@indyhall.test", "mx.example.org; none"),
		ar("mgr@indyhall.test", "evil.test; dmarc=pass header.from=indyhall.test; dkim=pass header.d=indyhall.test"),
		ar("mgr@indyhall.test", `authserv.invalid; dkim=pass (a; b) header.d="indyhall.test"`),
		ar(`"mgr@indyhall.test" <mallory@evil.test>`, "mx.example.org; dmarc=pass header.from=evil.test"),
		ar("Managers: mgr@indyhall.test;", "mx.example.org; dmarc=pass"),
		ar("=?utf-8?q?mgr?=@indyhall.test", "mx.example.org; dmarc=pass"),
		"Return-Path: <>\nAuto-Submitted: auto-replied; owner-email=\"x@y\"\nContent-Type: multipart/report; report-type=delivery-status\n" + fromMgr,
	} {
		f.Add([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		th, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw))) // a partial header is fine
		h := mail.Header{Header: message.Header{Header: th}}

		from, fromErr := FromAddress(h)
		Automatic(h, "visa@coworkingvisa.test")

		for _, p := range []Policy{
			{Require: RequireDMARC, AuthservID: "mx.example.org"},
			{Require: RequireDKIM, AuthservID: "mx.example.org"},
			{Require: RequireDMARC, AuthservID: "authserv.invalid"},
			{Require: RequireDKIM, AuthservID: "authserv.invalid"},
			{Require: RequireNone},
		} {
			s, err := Authenticate(h, p)
			if err != nil {
				if !errors.Is(err, ErrNotAuthenticated) {
					t.Fatalf("%+v: error %q does not wrap ErrNotAuthenticated", p, err)
				}
				continue
			}
			if fromErr != nil || s.Address != from {
				t.Fatalf("%+v: authenticated %q, but FromAddress = %q, %v", p, s.Address, from, fromErr)
			}
			if strings.Count(s.Address, "@") != 1 || s.Address != canonical(s.Address) {
				t.Fatalf("%+v: sender address %q", p, s.Address)
			}
			if p.AuthservID != "" && !mayHoldID(raw, p.AuthservID) {
				t.Fatalf("%+v: authenticated %+v without a field of that authserv-id", p, s)
			}
		}
	})
}

// mayHoldID reports whether raw may spell id once quotes and quoted-pairs
// are resolved, ASCII case ignored: an over-approximation of "has a field of
// that authserv-id".
func mayHoldID(raw []byte, id string) bool {
	s := asciiLower(strings.NewReplacer(`"`, "", `\`, "").Replace(string(raw)))
	return strings.Contains(s, asciiLower(id))
}

// FuzzRepeatedFields feeds raw headers to the duplicate-field check. Nothing
// may panic, and a header it passes must hold each once-only field at most
// once by every reading the bot and DKIM verifiers make of it: go-message's
// (which the bot reads Subject and Message-ID with), net/textproto's (which
// verifiers split fields with), and a plain line scan that counts every
// line starting with the name and a colon, whitespace before the colon and
// case aside.
func FuzzRepeatedFields(f *testing.F) {
	for _, s := range []string{
		fromMgr + rest,
		"Subject: add member me@evil.test\n" + fromMgr + rest,
		"Message-ID: <x@evil.test>\n" + fromMgr + rest,
		"subject : a\nSUBJECT: b\n" + fromMgr,
		"Subject:\n\tfolded\n" + fromMgr + rest,
		"X: y\n Subject: continuation, not a field\n" + fromMgr,
		"Subject: a\r\n\r\nSubject: in the body\r\n",
		"Content-Type: text/plain\nContent-Type: text/html\n" + fromMgr,
	} {
		f.Add([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // the bot refuses a message whose header it cannot read
		}
		h := mail.Header{Header: message.Header{Header: th}}
		if RepeatedFields(h, raw) != nil {
			return
		}
		raws, lines := rawFieldCounts(raw), lineScan(raw)
		for _, name := range singleFields {
			n := 0
			for f := h.FieldsByKey(name); f.Next(); {
				n++
			}
			if n > 1 || raws[name] > 1 || lines[name] > 1 {
				t.Fatalf("%s passed with %d (go-message), %d (textproto), %d (line scan) instances", name, n, raws[name], lines[name])
			}
		}
	})
}

// lineScan counts header fields the simplest way: lines up to the first
// empty one, split at LF with a CR before it dropped, that do not start with
// white space and hold a colon.
func lineScan(raw []byte) map[string]int {
	counts := map[string]int{}
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			continue
		}
		if name, _, ok := strings.Cut(l, ":"); ok {
			counts[asciiLower(strings.TrimRight(name, " \t"))]++
		}
	}
	return counts
}

// FuzzHeaderLine checks that headerLine splits lines exactly as
// net/textproto's ReadLine does from a bufio.Reader, the reader it stands
// in for: the same lines, and the end at the same place.
func FuzzHeaderLine(f *testing.F) {
	for _, s := range []string{
		"", "\n", "\r\n", "a", "a\r", "a\r\r\n", "a\rb\n", "\r\r\n\n",
		"Subject: x\r\n\tfolded\r\n\r\nbody", "A: 1\nB: 2\n\nC: 3",
		"X: " + strings.Repeat("y", 5000) + "\r\nZ: z\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := nettextproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
		rest := raw
		for i := 0; ; i++ {
			want, werr := r.ReadLine()
			got, more, ok := headerLine(rest)
			if ok != (werr == nil) {
				t.Fatalf("line %d: headerLine ok=%v, textproto error %v", i, ok, werr)
			}
			if !ok {
				return
			}
			if string(got) != want {
				t.Fatalf("line %d: headerLine %q, textproto %q", i, got, want)
			}
			rest = more
		}
	})
}

// FuzzRawHeaderFieldsOnly checks that asking for the DKIM-Signature
// fields alone gives just those the whole split gives.
func FuzzRawHeaderFieldsOnly(f *testing.F) {
	for _, s := range []string{
		"DKIM-Signature: v=1; d=a.test;\r\n\tb=xyz\r\nFrom: a@a.test\r\n\r\n",
		"dkim-signature : v=1\r\n d=b\r\nDKIM-Signature\r\n : v=2\r\nX\r\n DKIM-Signature: no\r\n\r\n",
		" DKIM-Signature: first line folded\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		all, aerr := rawHeaderFields(raw, "")
		only, oerr := rawHeaderFields(raw, "DKIM-Signature")
		if (aerr == nil) != (oerr == nil) {
			t.Fatalf("errors differ: %v, %v", aerr, oerr)
		}
		var want []headerField
		for _, f := range all {
			if strings.EqualFold(f.name, "DKIM-Signature") {
				want = append(want, f)
			}
		}
		if len(want) != len(only) {
			t.Fatalf("only DKIM-Signature: %q, want %q", only, want)
		}
		for i := range want {
			if want[i] != only[i] {
				t.Fatalf("only DKIM-Signature: %q, want %q", only, want)
			}
		}
	})
}
