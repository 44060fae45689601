package trust

import "testing"

func TestImpersonation(t *testing.T) {
	for _, c := range []struct {
		from string
		want bool
	}{
		{`"mgr@indyhall.test" <mallory@evil.test>`, true},
		{`"Alex (mgr@indyhall.test)" <mallory@evil.test>`, true},
		{`=?UTF-8?B?bWdyQGluZHloYWxsLnRlc3Q=?= <mallory@evil.test>`, true},
		{"Alex <mgr@indyh\u0430ll.test>", true}, // Cyrillic а
		{"Alex <mgr@\u0456ndyhall.test>", true}, // Cyrillic і
		{`"Alex Hillman" <mgr@indyhall.test>`, false},
		{`"mgr@indyhall.test" <mgr@indyhall.test>`, false},
		{`"MGR@IndyHall.test" <mgr@indyhall.test>`, false},
		{"Zoë <zoe@münchen.test>", false},                        // one script, with accents
		{`"MÜLLER@München.test" <müller@münchen.test>`, false},   // the same address, canonical
		{`"m\u212Agr@indyhall.test" <mkgr@indyhall.test>`, true}, // Kelvin sign: not the same
		{"Ivan <ivan@пример.test>", false},                       // Cyrillic only
		{"mgr@indyhall.test", false},
	} {
		h := parseHeader(t, "From: "+c.from+"\n")
		reason, got := Impersonation(h)
		if got != c.want {
			t.Errorf("Impersonation(%q) = %v (%s), want %v", c.from, got, reason, c.want)
		}
	}
}
