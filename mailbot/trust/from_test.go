package trust

import (
	"errors"
	"strings"
	"testing"
)

func TestFromAddress(t *testing.T) {
	tests := []struct {
		name    string
		from    string // the From lines, "" for none
		want    string // "" when an error is expected
		wantErr string
	}{
		{"bare", "From: mgr@indyhall.test", "mgr@indyhall.test", ""},
		{"name-addr", "From: Indy Hall Manager <mgr@indyhall.test>", "mgr@indyhall.test", ""},
		{"lowercased", "From: Mgr <MGR@IndyHall.TEST>", "mgr@indyhall.test", ""},
		{"field name case", "FROM: mgr@indyhall.test", "mgr@indyhall.test", ""},
		{"comment", "From: mgr@indyhall.test (Indy Hall)", "mgr@indyhall.test", ""},
		{"folded", "From: \"Indy Hall, Manager\"\n <mgr@indyhall.test>", "mgr@indyhall.test", ""},
		{"encoded display name", "From: =?UTF-8?Q?Andr=C3=A9_Dupont?= <mgr@indyhall.test>", "mgr@indyhall.test", ""},
		{"unknown charset display name", "From: =?x-mac-cyrillic?B?wMDA?= <mgr@indyhall.test>", "mgr@indyhall.test", ""},
		{"utf-8 display name", "From: Zoë Straße <mgr@indyhall.test>", "mgr@indyhall.test", ""},
		{"quoted display name looks like address", `From: "mgr@indyhall.test" <mallory@evil.test>`, "mallory@evil.test", ""},
		{"encoded display name looks like address", "From: =?utf-8?q?mgr=40indyhall.test?= <mallory@evil.test>", "mallory@evil.test", ""},
		{"base64 display name looks like address", "From: =?utf-8?b?bWdyQGluZHloYWxsLnRlc3Q=?= <mallory@evil.test>", "mallory@evil.test", ""},
		{"colon in quoted display name", `From: "Indy Hall: Manager" <mgr@indyhall.test>`, "mgr@indyhall.test", ""},
		{"colon in comment", "From: mgr@indyhall.test (re: visa)", "mgr@indyhall.test", ""},
		{"idn domain kept apart", "From: mgr@indуhall.test", "mgr@indуhall.test", ""},
		{"unicode lowercase, as stored", "From: MÜLLER@Straße.TEST", "müller@straße.test", ""},
		{"decomposed umlaut composed", "From: mu\u0308ller@x.test", "müller@x.test", ""},
		{"a-label kept as written", "From: mgr@XN--MLLER-KVA.test", "mgr@xn--mller-kva.test", ""},

		{"none", "", "", "0 From fields"},
		{"two fields", "From: mgr@indyhall.test\nFrom: mallory@evil.test", "", "2 From fields"},
		{"two fields different case", "From: mgr@indyhall.test\nfrom: mallory@evil.test", "", "2 From fields"},
		{"two mailboxes", "From: mgr@indyhall.test, mallory@evil.test", "", "2 mailboxes"},
		{"group", "From: Managers: mgr@indyhall.test;", "", "group"},
		{"empty group", "From: undisclosed-recipients:;", "", "group"},
		{"empty", "From:", "", "no address"},
		{"blank", "From:   ", "", "no address"},
		{"unquoted display name with @", "From: mgr@indyhall.test <mallory@evil.test>", "", "unusable From"},
		{"raw @ in encoded word", "From: =?utf-8?q?mgr@indyhall.test?= <mallory@evil.test>", "", "unusable From"},
		{"encoded-word address", "From: =?utf-8?q?mgr?=@indyhall.test", "", "encoded word"},
		{"encoded-word whole address", "From: =?utf-8?b?bWdyQGluZHloYWxsLnRlc3Q=?=", "", "unusable From"},
		{"encoded-word in angle brackets", "From: Mgr <=?utf-8?b?bWdyQGluZHloYWxsLnRlc3Q=?=>", "", "unusable From"},
		{"control character", "From: mgr\x01@indyhall.test", "", "control character"},
		{"control character in display name", "From: Mgr\x07 <mgr@indyhall.test>", "", "control character"},
		{"latin-1 bytes", "From: Andr\xe9 <mgr@indyhall.test>", "", "invalid UTF-8"},
		{"quoted local part", `From: "mgr@indyhall.test"@evil.test`, "", "not a dot-atom"},
		{"quoted local part with space", `From: "indy mgr"@indyhall.test`, "", "not a dot-atom"},
		{"domain literal", "From: mgr@[198.51.100.7]", "", "not a host name"},
		{"no domain", "From: mgr", "", "unusable From"},
		{"no domain in angle brackets", "From: Mgr <mgr>", "", "unusable From"},
		{"empty angle brackets", "From: Mgr <>", "", "unusable From"},
		{"double dot", "From: mgr@indyhall..test", "", "unusable From"},
		{"underscore domain", "From: mgr@indy_hall.test", "", "not a host name"},
		{"kelvin sign refused", "From: mgr@\u212Aindyhall.test", "", "U+212A"},
		{"dotted capital I refused", "From: mgr@\u0130ndyhall.test", "", "U+0130"},
		{"full-width letters refused", "From: mgr@\uff49ndyhall.test", "", "U+FF49"},
		{"long s refused", "From: mgr@\u017fpace.test", "", "U+017F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := rest
			if tt.from != "" {
				raw = tt.from + "\n" + rest
			}
			got, err := FromAddress(parseHeader(t, raw))
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("FromAddress = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("FromAddress = %q; want an error", got)
			}
			if !errors.Is(err, ErrBadFrom) {
				t.Errorf("error %q does not wrap ErrBadFrom", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestLookAlike: a Cyrillic "у" makes another domain, however alike it looks.
func TestLookAlike(t *testing.T) {
	cyr, err := FromAddress(parseHeader(t, "From: mgr@indуhall.test\n"))
	if err != nil {
		t.Fatal(err)
	}
	lat, err := FromAddress(parseHeader(t, "From: mgr@indyhall.test\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cyr == lat {
		t.Errorf("%q == %q", cyr, lat)
	}
}
