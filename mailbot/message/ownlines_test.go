package message

import (
	"reflect"
	"strings"
	"testing"
)

func TestOwnLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{{
		name: "signature separator",
		text: "verify a@x\n-- \nJana\nadd member sig@x",
		want: []string{"verify a@x"},
	}, {
		name: "signature separator without its space",
		text: "verify a@x\n--\nJana",
		want: []string{"verify a@x"},
	}, {
		name: "dashes that are not a separator",
		text: "verify a@x\n---\n--- notes\nverify b@x",
		want: []string{"verify a@x", "---", "--- notes", "verify b@x"},
	}, {
		name: "end and thanks are the parser's business",
		text: "verify a@x\nend\nthanks\nverify b@x",
		want: []string{"verify a@x", "end", "thanks", "verify b@x"},
	}, {
		name: "trimmed, CRLF, blank lines kept",
		text: "  verify a@x  \r\n\r\n\tverify b@x\r\n",
		want: []string{"verify a@x", "", "verify b@x", ""},
	}, {
		name: "quoted lines, indented too",
		text: "verify a@x\n  > add member old@x\nverify b@x",
		want: []string{"verify a@x"},
	}, {
		name: "English attribution",
		text: "verify a@x\n\nOn Tue, 3 Mar 2026 at 10:00, Visa <v@x> wrote:\n\n> add member old@x",
		want: []string{"verify a@x", ""},
	}, {
		name: "attribution wrapped over two lines",
		text: "verify a@x\nOn Tue, 3 Mar 2026 at 10:00, Coworking Visa <\nvisa@example.org> wrote:\n> add member old@x",
		want: []string{"verify a@x"},
	}, {
		name: "French attribution",
		text: "verify a@x\nLe mar. 3 mars 2026 à 10:00, Visa <v@x> a écrit :\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "German attribution",
		text: "verify a@x\nAm Di., 3. März 2026 um 10:00 Uhr schrieb Visa <v@x>:\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "Spanish attribution",
		text: "verify a@x\nEl mar, 3 mar 2026 a las 10:00, Visa (<v@x>) escribió:\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "Dutch attribution",
		text: "verify a@x\nOp di 3 mrt 2026 om 10:00 schreef Visa <v@x>:\n\n> old",
		want: []string{"verify a@x"},
	}, {
		name: "attribution left at the end by an HTML quote",
		text: "verify a@x\n\nOn 2 Mar 2026, at 18:30, Visa <v@x> wrote:",
		want: []string{"verify a@x", ""},
	}, {
		name: "a line like an attribution that is not one stays",
		text: "On Monday please:\nverify a@x",
		want: []string{"On Monday please:", "verify a@x"},
	}, {
		name: "Outlook reply header in English",
		text: "verify a@x\n\nFrom: Visa <v@x>\nSent: Monday, March 2, 2026 6:30 PM\nTo: Peter\nSubject: Re: Members\n\nOK: done",
		want: []string{"verify a@x", ""},
	}, {
		name: "Outlook reply header in French",
		text: "verify a@x\nDe : Visa <v@x>\nEnvoyé : lundi 2 mars 2026 18:30\nÀ : Claire\nObjet : RE: Membres\nOK",
		want: []string{"verify a@x"},
	}, {
		name: "Outlook header as Gmail renders its bold names",
		text: "verify a@x\n*From:* Visa <v@x>\n*Sent:* Monday\n*To:* Peter\n",
		want: []string{"verify a@x"},
	}, {
		name: "a From: line alone is not a reply header",
		text: "From: the front desk\nverify a@x\nTo: do",
		want: []string{"From: the front desk", "verify a@x", "To: do"},
	}, {
		name: "Outlook underscore separator",
		text: "verify a@x\n________________________________\nFrom: Visa",
		want: []string{"verify a@x"},
	}, {
		name: "Original Message",
		text: "verify a@x\n-----Original Message-----\nadd member old@x",
		want: []string{"verify a@x"},
	}, {
		name: "German Original Message",
		text: "verify a@x\n-----Ursprüngliche Nachricht-----\nadd member old@x",
		want: []string{"verify a@x"},
	}, {
		name: "Gmail forward",
		text: "please check\n\n---------- Forwarded message ---------\nFrom: X\nverify old@x",
		want: []string{"please check", ""},
	}, {
		name: "Apple Mail forward",
		text: "please check\nBegin forwarded message:\n\nverify old@x",
		want: []string{"please check"},
	}, {
		name: "inline PGP is not a forward",
		text: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nverify a@x",
		want: []string{"-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA256", "", "verify a@x"},
	}, {
		name: "empty",
		text: "",
		want: []string{""},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := OwnLines(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("OwnLines(%q) =\n%q\nwant\n%q", tc.text, got, tc.want)
			}
		})
	}
}

func TestBelowQuote(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"bottom-posted confirm", "On Mon, 30 Nov 2026 at 09:12, Visa <visa@x.test> wrote:\n> OK: would replace\n> confirm ABCD\n\nconfirm K7QX-4M2P\n\n-- \nAlex\n",
			[]string{"confirm K7QX-4M2P", ""}},
		{"inline quote then more quote", "> a\n\nverify a@b.co\n> b\nafter\n", []string{"verify a@b.co"}},
		{"no quote", "verify a@b.co\n", nil},
		{"quote only", "> verify a@b.co\n", []string{}},
	} {
		got := BelowQuote(c.text)
		if len(got) == 0 && len(c.want) == 0 {
			continue
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: BelowQuote = %q, want %q", c.name, got, c.want)
		}
	}
}
