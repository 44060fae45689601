package trust

import (
	"slices"
	"strings"
	"testing"
)

// TestHeaderOrder pins down how go-message orders fields, which the
// topmost-wins rule depends on: read from bytes, FieldsByKey, Values and Get
// give the topmost field first; Add inserts a new field at the top, as a
// receiving server would.
func TestHeaderOrder(t *testing.T) {
	h := parseHeader(t, `Authentication-Results: mx.example.org; dmarc=fail
Received: from a by b; Mon, 3 Feb 2025 15:12:35 +0100
Authentication-Results: mx.example.org; dmarc=pass
Authentication-Results: evil.test; dmarc=pass
From: mgr@indyhall.test
`)
	want := []string{"mx.example.org; dmarc=fail", "mx.example.org; dmarc=pass", "evil.test; dmarc=pass"}
	if got := values(h, "Authentication-Results"); !slices.Equal(got, want) {
		t.Errorf("FieldsByKey order = %q; want %q", got, want)
	}
	if got := h.Values("Authentication-Results"); !slices.Equal(got, want) {
		t.Errorf("Values = %q; want %q", got, want)
	}
	if got := h.Get("Authentication-Results"); got != want[0] {
		t.Errorf("Get = %q; want %q", got, want[0])
	}
	h.Add("Authentication-Results", "new.example; none")
	if got := h.Values("Authentication-Results")[0]; got != "new.example; none" {
		t.Errorf("after Add, first value = %q; want the added one", got)
	}
	var keys []string
	for f := h.Fields(); f.Next(); {
		keys = append(keys, f.Key())
	}
	if keys[0] != "Authentication-Results" || keys[len(keys)-1] != "From" {
		t.Errorf("Fields order = %q; want the added field first and From last", keys)
	}
}

func TestParseAuthResults(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		id      string
		results []string // result.String() of each
		wantErr string
	}{
		{"gmail", "mx.google.com;\r\n       dkim=pass header.i=@indyhall.test header.s=20230601 header.b=abcDEF12;\r\n       spf=pass (google.com: domain of mgr@indyhall.test designates 209.85.220.41 as permitted sender) smtp.mailfrom=mgr@indyhall.test;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=indyhall.test",
			"mx.google.com", []string{"dkim=pass header.i=@indyhall.test", "spf=pass", "dmarc=pass header.from=indyhall.test"}, ""},
		{"opendkim comment with semicolon", "mx.example.org; dkim=pass (1024-bit key; unprotected) header.d=example.org header.i=@example.org header.a=rsa-sha256 header.s=default header.b=AbCdEf",
			"mx.example.org", []string{"dkim=pass header.d=example.org header.i=@example.org"}, ""},
		{"opendmarc", "mx.example.org; dmarc=pass (p=none dis=none) header.from=example.org",
			"mx.example.org", []string{"dmarc=pass header.from=example.org"}, ""},
		{"m365 without id", "spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=x.test; dkim=pass (signature was verified) header.d=x.test;dmarc=pass action=none header.from=x.test;compauth=pass reason=100",
			"", nil, "no authserv-id"},
		{"m365 with version", "mx.microsoft.com 1; spf=pass smtp.mailfrom=x.test; dmarc=pass action=none header.from=x.test; dkim=pass header.d=x.test; arc=none",
			"mx.microsoft.com", []string{"spf=pass", "dmarc=pass header.from=x.test", "dkim=pass header.d=x.test", "arc=none"}, ""},
		{"none", "mx.example.org; none", "mx.example.org", nil, ""},
		{"none with comment", "mx.example.org (Postfix); none (no results)", "mx.example.org", nil, ""},
		{"version in comment", "mx.example.org (v1) 1 (version); dmarc=pass", "mx.example.org", []string{"dmarc=pass"}, ""},
		{"unknown version", "mx.example.org 2; dmarc=pass", "mx.example.org", nil, "unsupported version"},
		{"junk after id", "mx.example.org dmarc=pass header.from=x.test", "mx.example.org", nil, "unexpected"},
		{"word after id", "mx.example.org dmarc=pass; dmarc=pass", "mx.example.org", nil, "unsupported version"},
		{"three words", "mx.example.org 1 x; dmarc=pass", "mx.example.org", nil, "unexpected"},
		{"empty", "", "", nil, "no authserv-id"},
		{"only semicolon", "; dmarc=pass", "", nil, "no authserv-id"},
		{"quoted id", `"mx.example.org"; dmarc=pass`, "mx.example.org", []string{"dmarc=pass"}, ""},
		{"spaces around =", "mx.example.org; dkim = pass header.d = x.test", "mx.example.org", []string{"dkim=pass header.d=x.test"}, ""},
		{"method version", "mx.example.org; dkim/1=pass header.d=x.test", "mx.example.org", []string{"dkim=pass header.d=x.test"}, ""},
		{"upper case", "mx.example.org; DKIM=Pass Header.D=X.test", "mx.example.org", []string{"dkim=pass header.d=X.test"}, ""},
		{"quoted reason with spaces", `mx.example.org; dkim=fail reason="signature verification failed" header.d=x.test`, "mx.example.org", []string{"dkim=fail header.d=x.test"}, ""},
		{"quoted reason with semicolon", `mx.example.org; dkim=fail reason="bad; dmarc=pass" header.d=x.test`, "mx.example.org", []string{"dkim=fail header.d=x.test"}, ""},
		{"nested comment", "mx.example.org; dmarc=pass (a (b; c) d) header.from=x.test", "mx.example.org", []string{"dmarc=pass header.from=x.test"}, ""},
		{"escaped paren in comment", `mx.example.org; dmarc=pass (a \) b; dmarc=fail) header.from=x.test`, "mx.example.org", []string{"dmarc=pass header.from=x.test"}, ""},
		{"paren in quoted string", `mx.example.org; dkim=fail reason="(x" header.d=x.test`, "mx.example.org", []string{"dkim=fail header.d=x.test"}, ""},
		{"unterminated comment", "mx.example.org; dmarc=fail (p=reject; dmarc=pass", "mx.example.org", []string{"dmarc=fail"}, ""},
		{"garbage resinfo dropped", "mx.example.org; hello; =pass; dkim=; dmarc=pass", "mx.example.org", []string{"dmarc=pass"}, ""},
		{"duplicate property dropped", "mx.example.org; dkim=pass header.d=a.test header.d=b.test; dkim=pass header.d=c.test header.d=c.test", "mx.example.org", []string{"dkim=pass header.d=c.test"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, results, err := parseAuthResults(tt.value)
			if id != tt.id {
				t.Errorf("authserv-id = %q; want %q", id, tt.id)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range results {
				got = append(got, r.String())
			}
			if !slices.Equal(got, tt.results) {
				t.Errorf("results = %q; want %q", got, tt.results)
			}
		})
	}
}

func TestStripComments(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a (b) c", "a   c"},
		{"a(b(c)d)e", "a e"},
		{`a (b \) c) d`, "a   d"},
		{`a "(b)" c`, `a "(b)" c`},
		{`a "x\"(y" (z) c`, `a "x\"(y"   c`},
		{`a (x "y) b`, "a   b"},
		{"a (unterminated", "a  "},
		{"a ) b", "a ) b"},
	}
	for _, tt := range tests {
		if got := stripComments(tt.in); got != tt.want {
			t.Errorf("stripComments(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
