package mailbot

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	gomail "github.com/emersion/go-message/mail"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// The bad-input table: hostile or broken mail from an authenticated manager
// goes through Bot.Handle, the whole pipeline short of IMAP and SMTP. Each
// case says what must come of it: a reply with the given lines, or the
// message set aside without one. For every reply the test also checks that
// nothing of the input reached its header (exactly one To, the sender; one
// From, the bot; the expected Subject; no field a reply does not have) and
// that its MIME structure parses, with the transcript in the text part. And
// for every case: no panic, no retry, and a store holding exactly what the
// good commands wrote (members named "bad…" must never exist).

const badSender = "alex@indyhall.test"

// badCase is one row of the table.
type badCase struct {
	name string
	raw  []byte
	// aside is the mailbox the message must be set aside to, without a
	// reply; "" means it must be answered.
	aside string
	// want are lines (substrings) the reply's text part must hold; ERROR
	// lines above all.
	want []string
	// notWant must not appear in the reply's text part.
	notWant []string
	// html are strings the reply's HTML part must hold.
	html []string
	// subject is the reply's expected Subject; "" means "Re: " and the
	// case's own subject, "Re: bad input".
	subject string
	// members are addresses that must be on the indyhall roster afterwards;
	// every other address must not be (and none starting with "bad").
	members []string
	// check, if set, is the case's own assertion on the store and the
	// raw reply ("" when set aside).
	check func(t *testing.T, db *storage.DB, reply string)
}

const badSubject = "bad input"

// badHeader is the header of a message from the manager, authenticated by our MX,
// with the given extra fields (text/plain UTF-8 and the Subject "bad input"
// unless they say otherwise).
func badHeader(id string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Authentication-Results: %s; dmarc=pass header.from=indyhall.test\r\n", testAuth)
	fmt.Fprintf(&b, "From: Alex <%s>\r\nTo: %s\r\nMessage-ID: <%s@indyhall.test>\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n", badSender, testBot, id)
	hasSubject, hasCT := false, false
	for _, f := range fields {
		l := strings.ToLower(f)
		hasSubject = hasSubject || strings.HasPrefix(l, "subject:")
		hasCT = hasCT || strings.HasPrefix(l, "content-type:")
	}
	if !hasSubject {
		b.WriteString("Subject: " + badSubject + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	if !hasCT {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	return b.String()
}

// badText is a plain-text message with body (LF line ends become CRLF).
func badText(id, body string, fields ...string) []byte {
	return []byte(badHeader(id, fields...) + "\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
}

// badNested nests depth multipart/mixed levels around a text part.
func badNested(depth int, body string) string {
	var open, close strings.Builder
	for i := range depth {
		fmt.Fprintf(&open, "--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i, i+1)
	}
	for i := depth; i >= 0; i-- {
		fmt.Fprintf(&close, "\r\n--b%d--\r\n", i)
	}
	return open.String() + fmt.Sprintf("--b%d\r\nContent-Type: text/plain\r\n\r\n%s", depth, body) + close.String()
}

func badLines(n int, line string) string {
	return strings.Repeat(line+"\n", n)
}

// badRosterCSV is an import file of n rows of about 100 bytes each.
func badRosterCSV(n int) string {
	var b strings.Builder
	b.WriteString("email,name,status,until\n")
	for i := range n {
		fmt.Fprintf(&b, "amp%05d@indyhall.test,%s,active,\n", i, strings.Repeat("N", 70))
	}
	return b.String()
}

// badWithCSV is a message with body and one CSV attachment.
func badWithCSV(id, body, csv string) []byte {
	return []byte(badHeader(id, "Content-Type: multipart/mixed; boundary=\"C\"") + "\r\n--C\r\nContent-Type: text/plain\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n") + "\r\n--C\r\nContent-Type: text/csv; name=\"roster.csv\"\r\n" +
		"Content-Disposition: attachment; filename=\"roster.csv\"\r\n\r\n" + strings.ReplaceAll(csv, "\n", "\r\n") + "\r\n--C--\r\n")
}

// amplification cases: a small message must not make a huge reply, nor
// fill the store.
func amplificationCases() []badCase {
	oneFile := func(t *testing.T, db *storage.DB, reply string) {
		if n := strings.Count(reply, "Content-Disposition: attachment"); n != 1 {
			t.Errorf("%d roster files in one reply, want 1", n)
		}
	}
	pendingOnce := func(t *testing.T, db *storage.DB, reply string) {
		db.View(func(tx *storage.Tx) error {
			pending, _ := tx.PendingOf(badSender)
			files, size := tx.PendingFileStats()
			if len(pending) != 1 || files != 1 || size > 2<<20 {
				t.Errorf("%d pending changes, %d files of %d bytes; want one of each, the file once", len(pending), files, size)
			}
			return nil
		})
	}
	return []badCase{
		{name: "50 list members lines in a small mail", raw: badText("amp1", badLines(50, "list members")),
			want: []string{"OK: indyhall has 0 members"}, check: oneFile},
		{name: "50 import members replace lines with one large CSV", raw: badWithCSV("amp2", badLines(50, "import members replace"), badRosterCSV(15000)),
			want: []string{"would replace the roster of indyhall", "ERROR: "}, check: pendingOnce},
	}
}

func badCases() []badCase {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	attach := func(id, body, ctype, name string, data []byte) []byte {
		return []byte(badHeader(id, "Content-Type: multipart/mixed; boundary=\"XX\"") + "\r\n--XX\r\nContent-Type: text/plain\r\n\r\n" +
			body + "\r\n--XX\r\nContent-Type: " + ctype + "; name=\"" + name + "\"\r\nContent-Disposition: attachment; filename=\"" + name +
			"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + badWrap76(base64.StdEncoding.EncodeToString(data)) + "\r\n--XX--\r\n")
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 20<<20/16) // 20 MiB
	return []badCase{
		// --- Malformed MIME ---
		{name: "multipart without boundary", raw: []byte(badHeader("m1", "Content-Type: multipart/mixed") +
			"\r\n--x\r\nContent-Type: text/plain\r\n\r\nadd member bad-m1@indyhall.test\r\n--x--\r\n"),
			want: []string{"ERROR:"}},
		{name: "boundary never appears", raw: []byte(badHeader("m2", "Content-Type: multipart/mixed; boundary=\"nothere\"") +
			"\r\n--other\r\nContent-Type: text/plain\r\n\r\nadd member bad-m2@indyhall.test\r\n--other--\r\n"),
			want: []string{"ERROR:"}},
		{name: "multipart never closed", raw: []byte(badHeader("m3", "Content-Type: multipart/mixed; boundary=\"B\"") +
			"\r\n--B\r\nContent-Type: text/plain\r\n\r\nadd member m3@indyhall.test\r\n"),
			want: []string{"OK: added m3@indyhall.test"}, members: []string{"m3@indyhall.test"}},
		{name: "garbage Content-Type", raw: badText("m4", "add member m4@indyhall.test", "Content-Type: ;;;=== /// \"unterminated"),
			want: []string{"OK: added m4@indyhall.test"}, members: []string{"m4@indyhall.test"}},
		{name: "header line without a colon", raw: []byte(badHeader("m5") + "this is not a header field\r\n\r\nadd member bad-m5@indyhall.test\r\n"),
			aside: "Rejected"},
		{name: "header only, command in the subject", raw: []byte(strings.TrimSuffix(badHeader("m6", "Subject: add member m6@indyhall.test"), "\r\n")),
			subject: "Re: add member m6@indyhall.test", want: []string{"OK: added m6@indyhall.test"}, members: []string{"m6@indyhall.test"}},
		{name: "binary garbage body", raw: []byte(badHeader("m7") + "\r\n" + string([]byte{0xff, 0xfe, 0, 1, 2, 0x1b, '[', '2', 'J', 0x80, 0x90}) + "\r\n"),
			want: []string{"How to use"}},
		{name: "multipart with 1000 parts, command in the first", raw: func() []byte {
			var b strings.Builder
			b.WriteString(badHeader("m8", "Content-Type: multipart/mixed; boundary=\"P\"") + "\r\n--P\r\nContent-Type: text/plain\r\n\r\nadd member m8@indyhall.test\r\n")
			for i := range 999 {
				fmt.Fprintf(&b, "--P\r\nContent-Type: text/plain; name=\"p%d.txt\"\r\n\r\nadd member bad-m8-%d@indyhall.test\r\n", i, i)
			}
			b.WriteString("--P--\r\n")
			return []byte(b.String())
		}(), want: []string{"OK: added m8@indyhall.test"}, members: []string{"m8@indyhall.test"}},
		{name: "message/rfc822 attachment is not run", raw: []byte(badHeader("m9", "Content-Type: multipart/mixed; boundary=\"F\"") +
			"\r\n--F\r\nContent-Type: text/plain\r\n\r\nverify m9@indyhall.test\r\n--F\r\nContent-Type: message/rfc822\r\n\r\n" +
			"From: someone@evil.test\r\nSubject: add member bad-m9@indyhall.test\r\n\r\nadd member bad-m9b@indyhall.test\r\n--F--\r\n"),
			// A single verify: its answer follows the subject.
			subject: "Re: " + badSubject + ": NOT VERIFIED m9@indyhall.test",
			want:    []string{"NOT VERIFIED: m9@indyhall.test", "1 command: 1 NOT VERIFIED."}, notWant: []string{"bad-m9"}},
		{name: "script in an HTML-only body is not text", raw: badText("m10",
			"<html><body><p>verify m10@indyhall.test</p><script>add member bad-m10@indyhall.test</script><style>add member bad-m10b@indyhall.test</style></body></html>",
			"Content-Type: text/html; charset=utf-8"),
			subject: "Re: " + badSubject + ": NOT VERIFIED m10@indyhall.test",
			want:    []string{"NOT VERIFIED: m10@indyhall.test", "1 command: 1 NOT VERIFIED."}, notWant: []string{"bad-m10"}},
		{name: "HTML nested 100,000 deep", raw: badText("m11", "<p>add member m11@indyhall.test</p>"+strings.Repeat("<div>", 100000)+"x",
			"Content-Type: text/html; charset=utf-8"),
			want: []string{"OK: added m11@indyhall.test"}, members: []string{"m11@indyhall.test"}},

		// --- Nesting ---
		{name: "multipart nested 100 deep, command at the bottom", raw: []byte(badHeader("n1", "Content-Type: multipart/mixed; boundary=\"b0\"") + "\r\n" +
			badNested(100, "add member bad-n1@indyhall.test\r\n")),
			want: []string{"ERROR:"}},
		{name: "multipart nested 100 deep after the text", raw: []byte(badHeader("n2", "Content-Type: multipart/mixed; boundary=\"top\"") +
			"\r\n--top\r\nContent-Type: text/plain\r\n\r\nadd member n2@indyhall.test\r\n--top\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n" +
			badNested(100, "add member bad-n2@indyhall.test\r\n") + "\r\n--top--\r\n"),
			want: []string{"OK: added n2@indyhall.test"}, members: []string{"n2@indyhall.test"}},

		// --- Charsets ---
		{name: "unknown charset, ASCII commands", raw: badText("c1", "add member c1@indyhall.test", "Content-Type: text/plain; charset=x-no-such-charset"),
			want: []string{"OK: added c1@indyhall.test"}, members: []string{"c1@indyhall.test"}},
		{name: "UTF-7", raw: badText("c2", "add member c2@indyhall.test name=\"J+APw-rgen\"", "Content-Type: text/plain; charset=utf-7"),
			want: []string{"c2@indyhall.test"}, members: []string{"c2@indyhall.test"}},
		{name: "ISO-2022-JP with broken escapes", raw: badText("c3", "add member c3@indyhall.test\n\x1b$B%F%9\x1b(\x1b$", "Content-Type: text/plain; charset=iso-2022-jp"),
			want: []string{"OK: added c3@indyhall.test"}, members: []string{"c3@indyhall.test"}},
		{name: "encoded-word subject in an unknown charset", raw: badText("c4", "verify c4@indyhall.test", "Subject: =?x-unknown?Q?add_member_bad-c4@indyhall.test?="),
			subject: "*", want: []string{"NOT VERIFIED: c4@indyhall.test"}},
		{name: "invalid UTF-8 in a name", raw: badText("c5", "add member c5@indyhall.test name=\"Bad \xff\xfe Byte\""),
			want: []string{"OK: added Bad \uFFFD Byte <c5@indyhall.test>"}, members: []string{"c5@indyhall.test"}},
		{name: "invalid UTF-8 in an address", raw: badText("c6", "add member bad-\xff\xfe@indyhall.test"),
			want: []string{"ERROR:"}},
		{name: "UTF-16 body declared as such", raw: []byte(badHeader("c7", "Content-Type: text/plain; charset=utf-16le", "Content-Transfer-Encoding: base64") + "\r\n" +
			b64(badUTF16LE("add member c7@indyhall.test\r\n")) + "\r\n"),
			want: []string{"OK: added c7@indyhall.test"}, members: []string{"c7@indyhall.test"}},

		// --- Transfer encodings ---
		{name: "base64 with junk and a broken end", raw: []byte(badHeader("e1", "Content-Transfer-Encoding: base64") + "\r\n" +
			b64("add member e1@indyhall.test\r\n") + "\r\n!!!***\r\nQUJD=RE=\r\n====\r\n"),
			want: []string{"OK: added e1@indyhall.test"}, members: []string{"e1@indyhall.test"}},
		{name: "base64 that is not base64", raw: []byte(badHeader("e2", "Content-Transfer-Encoding: base64") + "\r\nadd member bad-e2@indyhall.test\r\n"),
			want: []string{"How to use"}},
		{name: "quoted-printable with bad escapes", raw: []byte(badHeader("e3", "Content-Transfer-Encoding: quoted-printable") +
			"\r\nadd member e3@indyhall.test name=3D\"Q=ZZ P=\"\r\nverify e3@indyhall.=\r\ntest=\r\n"),
			want: []string{"e3@indyhall.test", "VERIFIED: e3@indyhall.test"}, members: []string{"e3@indyhall.test"}},
		{name: "unknown transfer encoding", raw: badText("e4", "add member e4@indyhall.test", "Content-Transfer-Encoding: x-uuencode"),
			want: []string{"OK: added e4@indyhall.test"}, members: []string{"e4@indyhall.test"}},

		// --- Size and shape ---
		{name: "20 MB attachment", raw: attach("s1", "add member bad-s1@indyhall.test", "application/octet-stream", "big.bin", big),
			want: []string{"ERROR: the message is larger than 10240 KiB"}},
		{name: "6 MB CSV to import (over the attachment limit)", raw: attach("s2", "import members", "text/csv", "roster.csv",
			append([]byte("email,name,status,until\r\n"), bytes.Repeat([]byte("bad-s2@indyhall.test,x,active,\r\n"), 6<<20/32)...)),
			want: []string{"ERROR:"}},
		{name: "NUL bytes in the body", raw: badText("s3", "add member s3@indyhall.test\x00\nadd\x00 member s3b@indyhall.test\n\x00\x00\x00"),
			want: []string{"OK: added s3@indyhall.test", "OK: added s3b@indyhall.test"}, members: []string{"s3@indyhall.test", "s3b@indyhall.test"}},
		{name: "NUL bytes in the header", raw: badText("s4", "add member s4@indyhall.test", "Subject: hi\x00there", "X-Junk: \x00\x00"),
			subject: "*", want: []string{"OK: added s4@indyhall.test"}, members: []string{"s4@indyhall.test"}},
		{name: "a 100,000-character line holding a name", raw: badText("s5", "add member bad-s5@indyhall.test name=\""+strings.Repeat("a", 100000)+"\"\nverify s5@indyhall.test"),
			want: []string{"ERROR:", "NOT VERIFIED: s5@indyhall.test"}},
		{name: "a 100,000-character line of junk", raw: badText("s6", strings.Repeat("junk ", 20000)+"\nadd member s6@indyhall.test"),
			want: []string{"OK: added s6@indyhall.test"}, members: []string{"s6@indyhall.test"}},
		{name: "10,000 lines, a command at the end", raw: badText("s7", "add member s7@indyhall.test\n"+badLines(10000, "blah")+"add member bad-s7@indyhall.test"),
			want: []string{"OK: added s7@indyhall.test", "ERROR:"}, members: []string{"s7@indyhall.test"}},
		{name: "10,000 blank lines, then a command", raw: badText("s8", badLines(10000, "")+"add member s8@indyhall.test"),
			want: []string{"ERROR:"}},
		{name: "more commands than the limit", raw: badText("s9", badLines(110, "verify s9@indyhall.test")),
			want: []string{"ERROR: this message has more than 100 commands; the rest were not read."}},
		{name: "more adds than the limit", raw: badText("s10", func() string {
			var b strings.Builder
			for i := range 100 {
				fmt.Fprintf(&b, "add member s10-%d@indyhall.test\n", i)
			}
			return b.String() + "add member bad-s10@indyhall.test\n"
		}()), want: []string{"OK: added s10-99@indyhall.test", "ERROR: this message has more than 100 commands"},
			members: func() []string {
				var m []string
				for i := range 100 {
					m = append(m, fmt.Sprintf("s10-%d@indyhall.test", i))
				}
				return m
			}()},
		{name: "a 100 KB Subject", raw: badText("s11", "verify s11@indyhall.test", "Subject: "+strings.Repeat("long ", 20000)),
			subject: "*", want: []string{"NOT VERIFIED: s11@indyhall.test"}},
		{name: "10,000 header fields", raw: badText("s12", "add member s12@indyhall.test", strings.TrimSuffix(strings.Repeat("X-Junk: x\r\n", 10000), "\r\n")),
			want: []string{"OK: added s12@indyhall.test"}, members: []string{"s12@indyhall.test"}},

		// --- Attachments ---
		{name: "import with a binary file", raw: attach("a1", "import members", "text/csv", "roster.csv", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")),
			want: []string{"ERROR:"}},
		{name: "import with broken CSV quoting", raw: attach("a2", "import members", "text/csv", "roster.csv",
			[]byte("email,name,status,until\r\nbad-a2@indyhall.test,\"Open quote,active,\r\n")),
			want: []string{"ERROR:"}},
		{name: "import with broken base64", raw: []byte(badHeader("a3", "Content-Type: multipart/mixed; boundary=\"XX\"") +
			"\r\n--XX\r\nContent-Type: text/plain\r\n\r\nimport members\r\n--XX\r\nContent-Type: text/csv; name=\"r.csv\"\r\n" +
			"Content-Disposition: attachment; filename=\"r.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			b64("email,name,status,until\r\nbad-a3@indyhall.test,A,active,\r\n")[:30] + "=\r\n!!==\r\n--XX--\r\n"),
			want: []string{"ERROR:"}},
		{name: "import without an attachment", raw: badText("a4", "import members"), want: []string{"ERROR:"}},

		// --- Dates ---
		{name: "February 30", raw: badText("d1", "add member bad-d1@indyhall.test until=2027-02-30"),
			want: []string{`ERROR: "2027-02-30" is not a valid date`}},
		{name: "month 13", raw: badText("d2", "add member bad-d2@indyhall.test until=2027-13-45"),
			want: []string{`ERROR: "2027-13-45" is not a valid date`}},
		{name: "day-first date", raw: badText("d3", "add member bad-d3@indyhall.test until=31/12/2027"),
			want: []string{`ERROR: "31/12/2027" is not a valid date`}},
		{name: "year 1999", raw: badText("d4", "add member bad-d4@indyhall.test until=1999-12-31"),
			want: []string{`ERROR: "1999-12-31" is out of range`}},
		{name: "five-digit year", raw: badText("d5", "add member bad-d5@indyhall.test until=99999-01-01"),
			want: []string{"ERROR:"}},
		{name: "date with a time", raw: badText("d6", "add member bad-d6@indyhall.test until=2027-12-31T00:00:00Z"),
			want: []string{"ERROR:"}},

		// --- Addresses ---
		{name: "no local part", raw: badText("x1", "add member @indyhall.test"), want: []string{`ERROR: "@indyhall.test" is not a valid email address`}},
		{name: "no domain", raw: badText("x2", "add member bad-x2@"), want: []string{"is not a valid email address"}},
		{name: "domain without a dot", raw: badText("x3", "add member bad-x3@localhost"), want: []string{"is not a valid email address: the domain needs a dot"}},
		{name: "double dot", raw: badText("x4", "add member bad..x4@indyhall.test"), want: []string{"is not a valid email address: misplaced dot"}},
		{name: "300-character address", raw: badText("x5", "add member bad-"+strings.Repeat("x", 285)+"@indyhall.test"), want: []string{"is not a valid email address"}},
		{name: "two addresses", raw: badText("x6", "add member bad-x6@indyhall.test,bad-x6b@indyhall.test"), want: []string{"ERROR:"}},
		{name: "address with a quote", raw: badText("x7", `add member bad"x7@indyhall.test`), want: []string{"ERROR:"}},
		{name: "domain with an underscore", raw: badText("x8", "add member bad-x8@indy_hall.test"), want: []string{"is not a valid email address"}},
		{name: "unclosed angle bracket", raw: badText("x9", "add member Bad Name <bad-x9@indyhall.test"), want: []string{"ERROR:"}},

		// --- Injection ---
		{name: "CRLF and Bcc in an encoded-word Subject", raw: badText("i1", "verify i1@indyhall.test",
			"Subject: =?UTF-8?Q?hello=0D=0ABcc:_victim@evil.test=0D=0A=0D=0Abody?="),
			subject: "Re: hello Bcc: victim@evil.test body: NOT VERIFIED i1@indyhall.test", want: []string{"NOT VERIFIED: i1@indyhall.test"}},
		{name: "bare CR in the Subject", raw: badText("i2", "verify i2@indyhall.test", "Subject: hello\rBcc: victim@evil.test"),
			subject: "*", want: []string{"NOT VERIFIED: i2@indyhall.test"}},
		{name: "CRLF and Bcc in the From display name", raw: []byte(strings.Replace(string(badText("i3", "verify i3@indyhall.test")),
			"From: Alex <", "From: =?UTF-8?Q?Alex=0D=0ABcc:_victim@evil.test=0D=0A?= <", 1)),
			aside: "Rejected"},
		{name: "Reply-To a victim", raw: badText("i4", "verify i4@indyhall.test", "Reply-To: victim@evil.test", "Cc: victim2@evil.test"),
			subject: "Re: " + badSubject + ": NOT VERIFIED i4@indyhall.test", want: []string{"NOT VERIFIED: i4@indyhall.test"}},
		{name: "header-like text in a name", raw: badText("i5", `add member i5@indyhall.test name="x\r\nBcc: victim@x"`),
			want: []string{`OK: added x\r\nBcc: victim@x <i5@indyhall.test>`}, members: []string{"i5@indyhall.test"}},
		{name: "header-like text in a name, in the Subject", raw: badText("i6", "thanks", `Subject: add member i6@indyhall.test name="x\r\nBcc: victim@x"`),
			subject: `Re: add member i6@indyhall.test name="x\r\nBcc: victim@x"`, want: []string{`OK: added x\r\nBcc: victim@x <i6@indyhall.test>`},
			members: []string{"i6@indyhall.test"}},
		{name: "encoded CRLF in a name (quoted-printable body)", raw: []byte(badHeader("i7", "Content-Transfer-Encoding: quoted-printable") +
			"\r\nadd member bad-i7@indyhall.test name=3D\"x=0D=0ABcc: victim@evil.test\"\r\n"),
			want: []string{"ERROR:"}},
		{name: "encoded word in a name", raw: badText("i8", `add member i8@indyhall.test name="=?UTF-8?Q?x=0D=0ABcc:_victim@evil.test?="`),
			want: []string{"OK: added =?UTF-8?Q?x=0D=0ABcc:_victim@evil.test?= <i8@indyhall.test>"}, members: []string{"i8@indyhall.test"}},
		{name: "line separator in a name", raw: badText("i9", "add member bad-i9@indyhall.test name=\"x\u2028Bcc: victim@evil.test\""),
			want: []string{"ERROR:"}},
		{name: "HTML script in a name", raw: badText("i10", `add member i10@indyhall.test name="<script>alert(1)</script><img src=x onerror=alert(2)>"`),
			want: []string{"OK: added <script>alert(1)</script><img src=x onerror=alert(2)> <i10@indyhall.test>"},
			html: []string{"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"}, members: []string{"i10@indyhall.test"}},
		{name: "HTML in the Subject", raw: badText("i11", "verify i11@indyhall.test", "Subject: <script>alert(1)</script>"),
			subject: "Re: <script>alert(1)</script>: NOT VERIFIED i11@indyhall.test", want: []string{"NOT VERIFIED: i11@indyhall.test"}},
		{name: "Message-ID and References with a folded Bcc", raw: []byte(strings.Replace(string(badText("i12", "verify i12@indyhall.test",
			"In-Reply-To: <x@y.test>\r\n\tBcc: victim@evil.test", "References: <x@y.test>\r\n Bcc: victim2@evil.test <z@w.test>")),
			"Message-ID: <i12@indyhall.test>", "Message-ID: <i12@indyhall.test>\r\n Bcc: victim3@evil.test", 1)),
			subject: "Re: " + badSubject + ": NOT VERIFIED i12@indyhall.test", want: []string{"NOT VERIFIED: i12@indyhall.test"}},
		{name: "Message-ID with spaces and brackets", raw: []byte(strings.Replace(string(badText("i13", "verify i13@indyhall.test")),
			"Message-ID: <i13@indyhall.test>", "Message-ID: <i13 >\r\n\t<Bcc: v@evil.test>\"@x>", 1)),
			subject: "Re: " + badSubject + ": NOT VERIFIED i13@indyhall.test", want: []string{"NOT VERIFIED: i13@indyhall.test"}},
		{name: "two From fields", raw: badText("i14", "add member bad-i14@indyhall.test", "From: victim@evil.test"), aside: "Rejected"},
		{name: "RTL override in a name", raw: badText("i15", "add member bad-i15@indyhall.test name=\"abc\u202Egnp.exe\""),
			want: []string{"ERROR:"}},

		// --- Partial writes ---
		{name: "good, bad, good", raw: badText("p1", "add member p1a@indyhall.test\nadd member bad-p1\nadd member p1b@indyhall.test"),
			want: []string{"OK: added p1a@indyhall.test", `ERROR: "bad-p1" is not a valid email address`, "OK: added p1b@indyhall.test",
				"3 commands: 2 OK, 1 ERROR."}, members: []string{"p1a@indyhall.test", "p1b@indyhall.test"}},
		{name: "a bad option makes the whole command do nothing", raw: badText("p2", "add member bad-p2@indyhall.test name=\"Fine\" until=2027-02-30\nadd member p2@indyhall.test"),
			want: []string{"ERROR:", "OK: added p2@indyhall.test"}, members: []string{"p2@indyhall.test"}},
		{name: "unknown option", raw: badText("p3", "add member bad-p3@indyhall.test colour=red"), want: []string{"ERROR: unknown option colour="}},
		{name: "bad status", raw: badText("p4", "add member bad-p4@indyhall.test status=deleted"), want: []string{`ERROR: status= must be active or inactive, not "deleted"`}},
		{name: "unclosed quote", raw: badText("p5", "add member bad-p5@indyhall.test name=\"Open"), want: []string{"ERROR: a quote is not closed"}},
		{name: "name over 200 characters", raw: badText("p6", "add member bad-p6@indyhall.test name=\""+strings.Repeat("n", 201)+"\""),
			want: []string{"ERROR:", "200 characters"}},
	}
}

// badWrap76 breaks base64 into lines of 76 characters.
func badWrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

func badUTF16LE(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return string(b)
}

func TestBadInput(t *testing.T) {
	cases := append(badCases(), amplificationCases()...)
	if len(cases) < 50 {
		t.Fatalf("only %d bad inputs; the table promises at least 50", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, db, _ := newTestBot(t, fixedClock())
			b.set.Limits.RepliesPerSenderPerHour = 0
			b.limiter = NewLimiter(b.set.Limits)
			var logs bytes.Buffer
			b.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			out := b.Handle(context.Background(), c.raw)
			if strings.Contains(logs.String(), "panic") {
				t.Errorf("Handle panicked:\n%s", logs.String())
			}
			replies := queued(t, db)
			switch {
			case c.aside != "":
				if out.Action != inbox.SetAside || out.Mailbox != c.aside {
					t.Errorf("outcome %+v, want set aside to %s", out, c.aside)
				}
				if len(replies) != 0 {
					t.Errorf("%d replies to a message that is set aside:\n%s", len(replies), replies[0])
				}
			case out.Action != inbox.Handled:
				t.Errorf("outcome %+v, want Done with a reply", out)
			case len(replies) != 1:
				t.Errorf("%d replies, want 1", len(replies))
			default:
				subject := c.subject
				if subject == "" {
					subject = "Re: " + badSubject
				}
				body, html := checkBadReply(t, replies[0], subject)
				t.Logf("reply:\n%s", badLimit(body))
				// Result lines are looked for in the transcript, above
				// the help text (which explains the status words).
				transcript, _, _ := strings.Cut(body, "How to use the Coworking Visa bot")
				for _, w := range c.want {
					if !strings.Contains(transcript, w) && !(strings.HasPrefix(w, "How to use") && strings.Contains(body, w)) {
						t.Errorf("the reply lacks %q:\n%s", w, badLimit(body))
					}
				}
				for _, w := range c.html {
					if !strings.Contains(html, w) {
						t.Errorf("the reply's HTML part lacks %q:\n%s", w, badLimit(html))
					}
				}
				for _, w := range c.notWant {
					if strings.Contains(body, w) {
						t.Errorf("the reply holds %q:\n%s", w, badLimit(body))
					}
				}
			}
			checkBadRoster(t, db, c.members)
			if c.check != nil {
				reply := ""
				if len(replies) > 0 {
					reply = replies[0]
				}
				c.check(t, db, reply)
			}
		})
	}
}

// TestFailureMidTransaction: an internal error after the commands ran,
// inside the message's transaction (here the reply cannot be rendered),
// leaves no trace in the store; the message is tried 3 times, then
// quarantined without a reply, and the admins are told.
func TestFailureMidTransaction(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	withReplyTemplate(t, b, `{{template "no-such-template"}}`)
	raw := badText("fail", "add member bad-fail@indyhall.test\nverify bad-fail@indyhall.test")
	for i, want := range []inbox.Action{inbox.Leave, inbox.Leave, inbox.Quarantine} {
		out := b.Handle(context.Background(), raw)
		if out.Action != want {
			t.Fatalf("attempt %d: %+v, want action %d", i+1, out, want)
		}
		if want == inbox.Quarantine && out.Mailbox != "Quarantine" {
			t.Errorf("attempt %d: %+v, want quarantine", i+1, out)
		}
	}
	notices := 0
	for _, r := range queued(t, db) {
		if !strings.Contains(r, "To: <admin@visa.test>") {
			t.Errorf("a failed message got a reply:\n%s", badLimit(r))
		}
		notices++
	}
	if notices != 1 {
		t.Errorf("%d notices to the admin, want 1", notices)
	}
	checkBadRoster(t, db, nil)
}

// TestPanicAfterCommit: a panic after the transaction committed (here in
// the outbox's wake-up) is recovered; the message is retried, and the
// retry finds it handled: one effect, one reply.
func TestPanicAfterCommit(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	panics := 0
	b.kick = func() {
		if panics == 0 {
			panics++
			panic("boom")
		}
	}
	raw := badText("late", "add member late@indyhall.test")
	if out := b.Handle(context.Background(), raw); out.Action != inbox.Leave || !strings.Contains(out.Reason, "boom") {
		t.Fatalf("first attempt: %+v, want Retry for the panic", out)
	}
	if out := b.Handle(context.Background(), raw); out.Action != inbox.Handled {
		t.Fatalf("second attempt: %+v, want Done", out)
	}
	if n := len(queued(t, db)); n != 1 {
		t.Errorf("%d replies, want 1", n)
	}
	checkBadRoster(t, db, []string{"late@indyhall.test"})
}

// checkBadRoster: the members of indyhall are exactly want, and the audit
// trail has one "add" for each and nothing else.
func checkBadRoster(t *testing.T, db *storage.DB, want []string) {
	t.Helper()
	wantSet := map[string]bool{}
	for _, m := range want {
		wantSet[m] = true
	}
	db.View(func(tx *storage.Tx) error {
		ms, err := tx.Members("indyhall")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, m := range ms {
			got[m.Email] = true
			if !wantSet[m.Email] {
				t.Errorf("%q is a member, and should not be", m.Email)
			}
			if !utf8.ValidString(m.Name) || strings.ContainsAny(m.Name, "\r\n\x00") {
				t.Errorf("stored name %q is not one line of valid text", m.Name)
			}
		}
		for _, m := range want {
			if !got[m] {
				t.Errorf("%s is not a member, and should be", m)
			}
		}
		n := 0
		tx.Changes(0, func(c storage.Change) bool {
			if c.Kind == "member" {
				n++
				if c.Action != "add" || !wantSet[c.Key] {
					t.Errorf("unexpected audit record: %s %s", c.Action, c.Key)
				}
			}
			return true
		})
		if n != len(want) {
			t.Errorf("%d member records in the audit trail, want %d", n, len(want))
		}
		return nil
	})
}

// badReplyFields are the header fields a reply may have, and how often.
var badReplyFields = map[string]int{
	"From": 1, "To": 1, "Subject": 1, "Message-Id": 1, "Date": 1, "User-Agent": 1, "X-Mailer": 1,
	"In-Reply-To": 1, "References": 1, "Auto-Submitted": 1, "X-Loop": 1, "Precedence": 1,
	"X-Auto-Response-Suppress": 1, "Mime-Version": 1, "Content-Type": 1, "Content-Transfer-Encoding": 1,
}

// checkBadReply parses a queued reply as a mail client would and checks its
// header; it returns the text of its text/plain and text/html parts.
func checkBadReply(t *testing.T, raw, wantSubject string) (plain, html string) {
	t.Helper()
	head, _, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		t.Fatalf("the reply has no header/body separator:\n%s", badLimit(raw))
	}
	for _, l := range strings.Split(head, "\r\n") {
		if len(l) > 998 {
			t.Errorf("a header line is %d bytes long (RFC 5322 allows 998)", len(l))
		}
		if strings.ContainsAny(l, "\r\n\x00") {
			t.Errorf("a header line holds a bare CR, LF or NUL: %q", l)
		}
	}
	mr, err := gomail.CreateReader(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("the reply does not parse: %v\n%s", err, badLimit(raw))
	}
	counts := map[string]int{}
	for f := mr.Header.Fields(); f.Next(); {
		counts[textproto.CanonicalMIMEHeaderKey(f.Key())]++
	}
	for k, n := range counts {
		max, known := badReplyFields[k]
		if !known {
			t.Errorf("the reply has a header field %s: it must not", k)
		} else if n > max {
			t.Errorf("the reply has %d %s fields", n, k)
		}
	}
	for _, k := range []string{"From", "To", "Subject", "Message-Id"} {
		if counts[k] != 1 {
			t.Errorf("the reply has %d %s fields, want 1", counts[k], k)
		}
	}
	to, err := mr.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != badSender {
		t.Errorf("To = %v (%v), want only %s", to, err, badSender)
	}
	from, err := mr.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != testBot {
		t.Errorf("From = %v (%v), want only the bot", from, err)
	}
	subject, err := mr.Header.Subject()
	if err != nil {
		// An encoded word in an unknown charset, echoed from the
		// sender's own Subject, stays as it is (RFC 2047 §6.2).
		subject = mr.Header.Get("Subject")
		if !strings.Contains(err.Error(), "charset") {
			t.Errorf("Subject does not decode: %v", err)
		}
	}
	if strings.ContainsFunc(subject, func(r rune) bool { return r < ' ' || r == 0x7f }) || !utf8.ValidString(subject) {
		t.Errorf("Subject %q holds control characters or invalid UTF-8", subject)
	}
	switch {
	case wantSubject == "*":
		if !strings.HasPrefix(subject, "Re: ") || len(subject) > 260 {
			t.Errorf("Subject = %q, want Re: and at most 260 bytes", badLimit(subject))
		}
	case subject != wantSubject:
		t.Errorf("Subject = %q, want %q", subject, wantSubject)
	}
	for _, id := range []string{"Message-Id", "In-Reply-To"} {
		if v := mr.Header.Get(id); v != "" && (strings.Count(v, "<") != 1 || strings.Count(v, ">") != 1 || strings.ContainsAny(v, " \t")) {
			t.Errorf("%s = %q: want one <id>", id, v)
		}
	}

	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the reply's MIME structure is broken: %v", err)
		}
		parts++
		if h, ok := p.Header.(*gomail.InlineHeader); ok {
			ct, _, _ := h.ContentType()
			b, err := io.ReadAll(p.Body)
			if err != nil {
				t.Errorf("reading a %s part: %v", ct, err)
			}
			switch ct {
			case "text/plain":
				plain = string(b)
			case "text/html":
				html = string(b)
			}
		}
	}
	if plain == "" {
		t.Fatalf("the reply has no text/plain part (%d parts):\n%s", parts, badLimit(raw))
	}
	if !utf8.ValidString(plain) {
		t.Errorf("the text part is not valid UTF-8")
	}
	lower := strings.ToLower(html)
	for _, bad := range []string{"<script", "<img", "<style>add"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the HTML part holds %q unescaped", bad)
		}
	}
	if len(raw) > 256<<10 {
		t.Errorf("the reply is %d KiB: hostile input must not bloat it", len(raw)>>10)
	}
	return plain, html
}

// badLimit shortens a reply for a failure message.
func badLimit(s string) string {
	if len(s) > 3000 {
		return s[:3000] + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return s
}

// withReplyTemplate gives b the default templates but for reply.txt,
// whose text is given: one that cannot render makes every message (or
// the ones it picks) fail inside its transaction.
func withReplyTemplate(t *testing.T, b *Bot, text string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "reply.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := templates.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b.tmpl = tmpl
}
