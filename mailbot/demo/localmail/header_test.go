package localmail

import (
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

func TestAuthservID(t *testing.T) {
	for in, want := range map[string]string{
		"mx.example.org; dmarc=pass":                   "mx.example.org",
		" \tmx.example.org 1; none":                    "mx.example.org",
		"mx.example.org(comment); spf=pass":            "mx.example.org",
		`(a (nested) \) comment) mx.example.org; none`: "mx.example.org",
		`"mx.example.org"; dkim=pass`:                  "mx.example.org",
		`"mx\"odd"; none`:                              `mx"odd`,
		"":                                             "",
		"(never closed mx.example.org; none":           "",
	} {
		if got := authservID(in); got != want {
			t.Errorf("authservID(%q) = %q, want %q", in, got, want)
		}
	}
}

func testTrace() trace {
	return trace{authservID: testID, login: alice, mailFrom: alice, received: "from client ([127.0.0.1]) by " + testID + " with ESMTPA id 1; Mon, 2 Jan 2006 15:04:05 +0000"}
}

func TestStampDMARC(t *testing.T) {
	for name, tc := range map[string]struct {
		from []string // From fields
		want authres.ResultValue
	}{
		"login":                 {[]string{alice}, authres.ResultPass},
		"login, other case":     {[]string{`"Alice" <Alice@EXAMPLE.org>`}, authres.ResultPass},
		"unknown charset name":  {[]string{"=?x-unknown?q?Al=E9?= <alice@example.org>"}, authres.ResultPass},
		"someone else":          {[]string{bob}, authres.ResultFail},
		"lookalike":             {[]string{"alice@example.org.evil.test"}, authres.ResultFail},
		"no From":               {nil, authres.ResultNone},
		"two From fields":       {[]string{alice, bob}, authres.ResultNone},
		"two addresses":         {[]string{alice + ", " + bob}, authres.ResultNone},
		"empty group":           {[]string{"undisclosed-recipients:;"}, authres.ResultNone},
		"unparsable":            {[]string{"alice at example dot org"}, authres.ResultNone},
		"login in display name": {[]string{`"alice@example.org" <bob@example.org>`}, authres.ResultFail},
	} {
		t.Run(name, func(t *testing.T) {
			var msg strings.Builder
			for _, f := range tc.from {
				msg.WriteString("From: " + f + "\r\n")
			}
			msg.WriteString("Subject: x\r\n\r\nbody\r\n")
			out, got, err := stamp([]byte(msg.String()), testTrace())
			if err != nil {
				t.Fatalf("stamp: %v", err)
			}
			if got != tc.want {
				t.Errorf("dmarc=%s, want %s", got, tc.want)
			}
			if !strings.HasPrefix(string(out), "Authentication-Results: "+testID+"; dmarc="+string(tc.want)) {
				t.Errorf("stamped message starts:\n%s", out)
			}
		})
	}
}

func TestStampKeepsBodyAndOrder(t *testing.T) {
	for name, msg := range map[string]string{
		"CRLF":            "From: alice@example.org\r\nSubject: x\r\n\r\nline 1\r\n\r\n\r\nline 4 \r\n",
		"bare LF body":    "From: alice@example.org\n\nline 1\nline 2\r\n\n",
		"no body":         "From: alice@example.org\r\nSubject: x\r\n",
		"no final CRLF":   "From: alice@example.org\r\n\r\ntrailing",
		"binary body":     "From: alice@example.org\r\n\r\n\x00\xff\r\n.\r\n",
		"body looks like": "From: alice@example.org\r\n\r\nAuthentication-Results: " + testID + "; dmarc=pass\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := stamp([]byte(msg), testTrace())
			if err != nil {
				t.Fatalf("stamp: %v", err)
			}
			wantBody := ""
			if i := strings.Index(msg, "\r\n\r\n"); i >= 0 {
				wantBody = msg[i+4:]
			} else if i := strings.Index(msg, "\n\n"); i >= 0 {
				wantBody = msg[i+2:]
			}
			i := strings.Index(string(out), "\r\n\r\n")
			if i < 0 || string(out[i+4:]) != wantBody {
				t.Errorf("body changed:\n got %q\nwant %q", out[i+4:], wantBody)
			}
			h := header(t, string(out))
			var keys []string
			for f := h.Fields(); f.Next(); {
				keys = append(keys, f.Key())
			}
			if len(keys) < 4 || strings.Join(keys[:3], ",") != "Authentication-Results,Return-Path,Received" {
				t.Errorf("header fields = %v, want ours on top", keys)
			}
		})
	}
}

func TestStampRejectsMalformedHeader(t *testing.T) {
	for _, msg := range []string{
		"this is not a header\r\n\r\nbody\r\n",
		" From: alice@example.org\r\n\r\nbody\r\n",
	} {
		if _, _, err := stamp([]byte(msg), testTrace()); err == nil {
			t.Errorf("stamp(%q) succeeded", msg)
		}
	}
}
