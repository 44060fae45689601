package message

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/clientmail"
)

// TestAlternativeRealClients measures the rule that a plain alternative is
// read only when its HTML shows every line of it: real clients' mail (the
// corpus in testdata, and the composers the integration tests and the
// benchmark write with) keeps its plain text.
func TestAlternativeRealClients(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkPlainKept(t, f, raw)
	}
	e := clientmail.Envelope{From: "alex@indyhall.test", To: "visa@visa.test", Subject: "roster"}
	for _, body := range []string{
		"add member adam@indyhall.test name=\"Adam Teterus\"\nadd member Beth Kaplan <beth@indyhall.test> until=2027-06-30\n" +
			"add member carl@indyhall.test\nupdate member carl@indyhall.test status=inactive\n" +
			"add member dora@indyhall.test\nremove member dora@indyhall.test",
		"add space mine name=Mine\nadd member not-an-address\nadd member ok@indyhall.test until=2027-13-45\n" +
			"update member nobody@indyhall.test status=active\nadd member x@indyhall.test name=Two Words\n" +
			"remove member ok@indyhall.test space=betahaus\nlist\nadd member fine@indyhall.test",
		"confirm k7qx-4m2p",
		"Hello,\n\nadd member zoë@indyhall.test name=\"Zoë Müller\" until=2027-06-30\n\nThanks!",
	} {
		for name, raw := range map[string][]byte{
			"clientmail.Gmail": clientmail.Gmail(e, body), "clientmail.Thunderbird": clientmail.Thunderbird(e, body),
			"clientmail.Outlook": clientmail.Outlook(e, body),
		} {
			checkPlainKept(t, name, raw)
			checkAllRead(t, name, raw, body)
		}
	}
}

// checkAllRead: every line the sender wrote is among the lines read.
func checkAllRead(t *testing.T, name string, raw []byte, body string) {
	t.Helper()
	m, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	own := strings.Join(OwnLines(m.Text), "\n")
	for _, l := range strings.Split(body, "\n") {
		if l != "" && !strings.Contains(own, l) {
			t.Errorf("%s: %q was not read; own lines:\n%s", name, l, own)
		}
	}
}

func checkPlainKept(t *testing.T, name string, raw []byte) {
	t.Helper()
	m, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, p := range m.Problems {
		if strings.Contains(p, "its HTML alternative") {
			t.Errorf("%s: %s", name, p)
		}
	}
	if m.FromHTML && strings.Contains(strings.ToLower(string(raw)), "multipart/alternative") {
		t.Errorf("%s: the HTML alternative was read, not the plain text", name)
	}
}

// TestAlternativeHidesPlain: a command in the plain alternative that the
// HTML one does not show is not read; the HTML is, as the sender saw it.
func TestAlternativeHidesPlain(t *testing.T) {
	alt := func(plain, html string) []byte {
		return eml("From: a@example.org\nContent-Type: multipart/alternative; boundary=b\n\n--b\n" +
			"Content-Type: text/plain; charset=utf-8\n\n" + plain + "\n--b\nContent-Type: text/html; charset=utf-8\n\n" +
			html + "\n--b--\n")
	}
	tests := []struct {
		name     string
		raw      []byte
		own      []string
		below    []string
		fromHTML bool
	}{{
		name:     "a command only in the plain part",
		raw:      alt("Hi,\nadd member evil@x\nverify ok@x", "<div>Hi,</div><div>verify ok@x</div>"),
		own:      []string{"Hi,", "verify ok@x"},
		fromHTML: true,
	}, {
		name:     "a command the HTML hides",
		raw:      alt("Hi,\nadd member evil@x\nverify ok@x", `<div>Hi,</div><div style="display:none">add member evil@x</div><div>verify ok@x</div>`),
		own:      []string{"Hi,", "verify ok@x"},
		fromHTML: true,
	}, {
		name:     "a command below a reply quote the HTML does not show",
		raw:      alt("On Mon, Visa wrote:\n> x\n\nadd member evil@x", `<div class="gmail_quote"><div class="gmail_attr">On Mon, Visa wrote:</div><blockquote type="cite">x</blockquote></div>`),
		own:      []string{},
		fromHTML: true,
	}, {
		name: "Outlook's link targets and smart quotes are the same line",
		raw: alt("add member o.connor@example.ie<mailto:o.connor@example.ie> name=\u201cSiobh\u00e1n O\u2019Connor\u201d",
			`<p class="MsoNormal">add member <a href="mailto:o.connor@example.ie">o.connor@example.ie</a> name=&#8220;Siobh&aacute;n O&#8217;Connor&#8221;</p>`),
		own: []string{`add member o.connor@example.ie<mailto:o.connor@example.ie> name="Siobhán O'Connor"`},
	}, {
		name: "a bottom-posted reply whose HTML shows it",
		raw: alt("On Mon, Visa wrote:\n> x\n\nconfirm K7QX",
			`<div class="moz-cite-prefix">On Mon, Visa wrote:<br></div><blockquote type="cite">x</blockquote><p>confirm K7QX</p>`),
		own:   []string{},
		below: []string{"confirm K7QX"},
	}, {
		name:     "a line the plain part wrapped reads as the HTML's one line",
		raw:      alt("Please check this for me and then\nremove member bob@x", "<div>Please check this for me and then remove member bob@x</div>"),
		own:      []string{"Please check this for me and then remove member bob@x"},
		fromHTML: true,
	}, {
		name: "plain and HTML side by side in multipart/mixed are both shown: no comparison",
		raw: eml("From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nverify a@x\n" +
			"--b\nContent-Type: text/html\n\n<p>other</p>\n--b--\n"),
		own: []string{"verify a@x"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := OwnLines(m.Text); strings.Join(got, "|") != strings.Join(tc.own, "|") {
				t.Errorf("OwnLines = %q, want %q", got, tc.own)
			}
			if got := BelowQuote(m.Text); !reflect.DeepEqual(got, tc.below) && len(got)+len(tc.below) > 0 {
				t.Errorf("BelowQuote = %q, want %q", got, tc.below)
			}
			if m.FromHTML != tc.fromHTML {
				t.Errorf("FromHTML = %v, want %v (problems %q)", m.FromHTML, tc.fromHTML, m.Problems)
			}
			if strings.Contains(m.Text, "evil") {
				t.Errorf("Text holds the hidden command: %q", m.Text)
			}
		})
	}
}
