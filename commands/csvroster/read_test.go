package csvroster

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/commands/internal/norm"
	"github.com/coworkingvisa/mailbot/storage"
)

// show renders a row compactly: line:email|name|status|until|columns set.
func show(r Row) string {
	var set []string
	for k := range r.Set {
		set = append(set, k)
	}
	sort.Strings(set)
	return fmt.Sprintf("%d:%s|%s|%s|%s|%s", r.Line, r.Email, r.Name, r.Status, r.Until, strings.Join(set, ","))
}

func TestRead(t *testing.T) {
	for _, c := range []struct {
		name     string
		data     string
		charset  string
		maxRows  int
		rows     []string
		problems []string // "line: substring of the reason"
		err      string   // substring; "" = none
	}{
		{
			name: "plain",
			data: "email,name,status,until\nalice@example.org,Alice Smith,active,2027-03-31\nbob@example.org,Bob,inactive,\n",
			rows: []string{"2:alice@example.org|Alice Smith|active|2027-03-31|email,name,status,until",
				"3:bob@example.org|Bob|inactive||email,name,status"},
		},
		{
			name: "UTF-8 BOM, as Excel's CSV UTF-8 writes",
			data: "\xEF\xBB\xBFemail,name\nzoe@example.de,Zoë Müller\n",
			rows: []string{"2:zoe@example.de|Zoë Müller|||email,name"},
		},
		{
			name: "semicolons and CRLF, as Excel writes in Europe",
			data: "Email;Name;Status;Until\r\njonas@betahaus.test;Jonas Müller;Active;2027-01-31\r\nlea@betahaus.test;\"Lea; die Zweite\";;\r\n",
			rows: []string{"2:jonas@betahaus.test|Jonas Müller|active|2027-01-31|email,name,status,until",
				"3:lea@betahaus.test|Lea; die Zweite|||email,name"},
		},
		{
			name: "quoted fields with commas and newlines shift later line numbers",
			data: "email,name,notes\n" +
				"a@example.org,\"Smith, Alice\",\"first line\nsecond line\nthird\"\n" +
				"bob@,Bob,\n" +
				"c@example.org,\"Carol\nCooper\",\n",
			rows:     []string{"2:a@example.org|Smith, Alice|||email,name", "6:c@example.org|Carol Cooper|||email,name"},
			problems: []string{`5: "bob@" is not a valid email address`},
		},
		{
			name:    "Latin-1 declared: read as windows-1252, as mail clients mean it",
			data:    "email;name\nfrancois@cantine.test;Fran\xe7ois L\xe9vy\nnoel@cantine.test;No\xebl \x80uro\n",
			charset: "ISO-8859-1",
			rows:    []string{"2:francois@cantine.test|François Lévy|||email,name", "3:noel@cantine.test|Noël €uro|||email,name"},
		},
		{
			name: "not UTF-8, nothing declared: windows-1252",
			data: "email,name\nrene@example.fr,Ren\xe9 \x93the boss\x94\n",
			rows: []string{"2:rene@example.fr|René “the boss”|||email,name"},
		},
		{
			name:    "declared UTF-8 but is not: windows-1252",
			data:    "email,name\nrene@example.fr,Ren\xe9\n",
			charset: "utf-8",
			rows:    []string{"2:rene@example.fr|René|||email,name"},
		},
		{
			name:    "another declared charset",
			data:    "email,name\nmaria@example.pl,\xa3ucja\n",
			charset: "iso-8859-2",
			rows:    []string{"2:maria@example.pl|Łucja|||email,name"},
		},
		{
			name: "UTF-16 with BOM and tabs, as Excel's Unicode text",
			data: utf16le("\uFEFFemail\tname\r\nkim@example.kr\t김민지\r\n"),
			rows: []string{"2:kim@example.kr|김민지|||email,name"},
		},
		{
			name: "CR line ends, as old Mac Excel",
			data: "email,name\rann@example.org,Ann\rbob@example.org,Bob\r",
			rows: []string{"2:ann@example.org|Ann|||email,name", "3:bob@example.org|Bob|||email,name"},
		},
		{
			name: "header in another order and case, extra columns, blank lines",
			data: "\n  \nUNTIL, Status ,Phone,E-Mail,Updated,NAME\n\n2027-12-31,INACTIVE,+1 555,Dana@Example.ORG,2026-01-01T00:00:00Z,Dana\n,,,,,\n",
			rows: []string{"5:dana@example.org|Dana|inactive|2027-12-31|email,name,status,until"},
		},
		{
			name: "email column only",
			data: "email\nann@example.org\n<bob@example.org>\nmailto:carl@example.org\n",
			rows: []string{"2:ann@example.org||||email", "3:bob@example.org||||email", "4:carl@example.org||||email"},
		},
		{
			name: "the bot's own roster reads back as written",
			data: "email,name,status,until,updated\neve@example.org,'=SUM(A1),active,none,2026-11-28T09:30:00Z\n",
			rows: []string{"2:eve@example.org|=SUM(A1)|active||email,name,status,until"},
		},
		{
			name: "bad rows with their line numbers",
			data: "email,name,status,until\n" +
				"ok@example.org,Ok,active,\n" +
				"not-an-address,X,active,\n" +
				",Nameless,active,\n" +
				"gone@example.org,Gone,gone,\n" +
				"late@example.org,Late,active,31/12/2027\n" +
				"feb@example.org,Feb,active,2027-02-30\n" +
				"ctl@example.org,\"a\x1bb\",active,\n" +
				"long@example.org," + strings.Repeat("n", 201) + ",,\n" +
				"Ok@Example.org,Again,active,\n",
			rows: []string{"2:ok@example.org|Ok|active||email,name,status"},
			problems: []string{
				`3: "not-an-address" is not a valid email address`,
				"4: no email address",
				`5: status must be active or inactive, not "gone"`,
				`6: "31/12/2027" is not a valid date`,
				`7: "2027-02-30" is not a valid date`,
				"8: control character",
				"9: longer than 200",
				"10: ok@example.org is already on line 2",
			},
		},
		{
			name:     "a duplicate after a rejected row is still a duplicate",
			data:     "email,until\nx@example.org,soon\nx@example.org,2027-01-01\n",
			problems: []string{`2: "soon" is not a valid date`, "3: already on line 2"},
		},
		{
			name:     "a stray quote rejects its row only",
			data:     "email,name\nann@example.org,Ann \"the\" Host\nbob@example.org,Bob\n",
			rows:     []string{"3:bob@example.org|Bob|||email,name"},
			problems: []string{"2: a value contains a quote"},
		},
		{
			name:    "at the row limit",
			data:    "email\na@example.org\nb@example.org\n\n",
			maxRows: 2,
			rows:    []string{"2:a@example.org||||email", "3:b@example.org||||email"},
		},
		{name: "over the row limit", data: "email\na@example.org\nb@example.org\nc@example.org\n", maxRows: 2, err: "more than 2 member rows"},
		{name: "bad rows count towards the limit", data: "email\nx\ny\nz\n", maxRows: 2, err: "more than 2"},
		{name: "no email column", data: "name,status\nAlice,active\n", err: "no email column"},
		{name: "no header", data: "alice@example.org,Alice\n", err: "looks like a member, not a header"},
		{name: "empty", data: "", err: "empty"},
		{name: "blank only", data: "\r\n\r\n", err: "empty"},
		{name: "a column twice", data: "email,E-mail\na@example.org,b@example.org\n", err: "email column twice"},
		{name: "an unclosed quote swallows the file", data: "email,name\na@example.org,\"Ann\nb@example.org,Bob\n", err: "line 2: a quoted value is never closed"},
		{name: "an Excel workbook", data: "PK\x03\x04\x14\x00\x06\x00", err: "zip archive"},
		{name: "binary", data: "email\n\x00\x01\x02", charset: "us-ascii", err: "not text"},
		{name: "unknown charset, not UTF-8", data: "email\n\xff\xfe@x", charset: "x-klingon", err: `charset "x-klingon" is unknown`},
		{name: "unknown charset, but plain text", data: "email\na@example.org\n", charset: "x-klingon", rows: []string{"2:a@example.org||||email"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, problems, err := Read([]byte(c.data), c.charset, c.maxRows)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want it to contain %q", err, c.err)
				}
				if rows != nil || problems != nil {
					t.Errorf("rows and problems with an error: %v %v", rows, problems)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, show(r))
			}
			if strings.Join(got, "\n") != strings.Join(c.rows, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.rows, "\n"))
			}
			if len(problems) != len(c.problems) {
				t.Fatalf("problems = %+v, want %q", problems, c.problems)
			}
			for i, w := range c.problems {
				line, reason, _ := strings.Cut(w, ": ")
				p := problems[i]
				if fmt.Sprint(p.Line) != line || !strings.Contains(p.Reason, reason) {
					t.Errorf("problem %d = line %d: %s, want line %s: …%s…", i, p.Line, p.Reason, line, reason)
				}
			}
		})
	}
}

// A problem keeps the row's address when it was valid, so that a replace
// does not remove a member over a typo elsewhere in the row.
func TestReadProblemKeepsAddress(t *testing.T) {
	_, problems, err := Read([]byte("email,until\nann@example.org,tomorrow\nnobody,\n"), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 2 || problems[0].Email != "ann@example.org" || problems[1].Email != "" {
		t.Errorf("problems = %+v", problems)
	}
}

// What the bot writes, it reads back to the same members.
func TestWriteReadRoundTrip(t *testing.T) {
	members := []storage.Member{
		{Email: "a@example.org", Name: "Smith, Alice \"Al\"", Status: "active", Until: "2027-03-31", Updated: time.Now()},
		{Email: "b@example.org", Name: "-minus", Status: "inactive"},
		{Email: "c@example.org", Name: "Zoë", Status: "active"},
	}
	var buf bytes.Buffer
	if err := Write(&buf, members); err != nil {
		t.Fatal(err)
	}
	rows, problems, err := Read(append([]byte("\uFEFF"), buf.Bytes()...), "", 0)
	if err != nil || len(problems) != 0 || len(rows) != len(members) {
		t.Fatalf("Read = %v, %v, %v", rows, problems, err)
	}
	for i, m := range members {
		r := rows[i]
		if r.Email != m.Email || r.Name != m.Name || r.Status != m.Status || r.Until != m.Until {
			t.Errorf("row %d = %+v, want %+v", i, r, m)
		}
	}
}

func TestDecodeIsIdempotent(t *testing.T) {
	once, err := Decode([]byte("\xEF\xBB\xBFemail;name\rx@example.org;Ren\xc3\xa9\r"), "")
	if err != nil {
		t.Fatal(err)
	}
	twice, err := Decode(once, "utf-8")
	if err != nil || !bytes.Equal(once, twice) {
		t.Errorf("Decode(Decode(x)) = %q, %v; want %q", twice, err, once)
	}
}

func utf16le(s string) string {
	var b []byte
	for _, r := range s {
		if r > 0xFFFF {
			panic("test text outside the BMP")
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return string(b)
}

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"email,name,status,until\na@example.org,Alice,active,2027-01-01\n",
		"\xEF\xBB\xBFEmail;Name\r\nb@example.de;\"Mü;ller\"\r\n",
		"email,name\n\"x@example.org\",\"a\nb\"\nbad,\"unclosed\n",
		"name,EMAIL\n,\n\n x@y.zz ,\"\"\"q\"\"\"\n",
		"email\tname\nk@example.kr\t\xe9\n",
	} {
		f.Add([]byte(s), "", 0)
		f.Add([]byte(s), "iso-8859-1", 1)
	}
	f.Fuzz(func(t *testing.T, data []byte, charset string, maxRows int) {
		rows, problems, err := Read(data, charset, maxRows)
		if err != nil {
			return
		}
		if maxRows > 0 && len(rows)+len(problems) > maxRows {
			t.Errorf("%d rows and %d problems over the limit %d", len(rows), len(problems), maxRows)
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if e, err := norm.Address(r.Email); err != nil || e != r.Email {
				t.Errorf("row %d has address %q (normalised %q, %v)", r.Line, r.Email, e, err)
			}
			if seen[r.Email] {
				t.Errorf("address %q returned twice", r.Email)
			}
			seen[r.Email] = true
			if r.Line < 2 {
				t.Errorf("row on line %d, before any header", r.Line)
			}
			if r.Set["status"] && r.Status != "active" && r.Status != "inactive" {
				t.Errorf("row %d has status %q", r.Line, r.Status)
			}
			if r.Set["until"] {
				if d, err := norm.Date(r.Until); err != nil || d != r.Until {
					t.Errorf("row %d has end date %q", r.Line, r.Until)
				}
			}
			if err := norm.Text("name", r.Name); err != nil {
				t.Errorf("row %d: %v", r.Line, err)
			}
		}
		for _, p := range problems {
			if p.Reason == "" || p.Line < 1 {
				t.Errorf("problem without a line or reason: %+v", p)
			}
		}
	})
}

// Every cell that a spreadsheet would run as a formula is defused with a
// leading ', as OWASP recommends, and reads back as it was.
func TestWriteDefusesEveryCellAndReadsItBack(t *testing.T) {
	members := []storage.Member{
		{Email: "=cmd@example.org", Name: "=cmd", Status: "active"},
		{Email: "+1@example.org", Name: "+1", Status: "active"},
		{Email: "-x@example.org", Name: "-x", Status: "inactive"},
		{Email: "x@example.org", Name: "@x", Status: "active"},
		{Email: "q@example.org", Name: "'=already quoted", Status: "active"},
		{Email: "plain@example.org", Name: "Plain 'quote", Status: "active"},
	}
	var buf bytes.Buffer
	if err := Write(&buf, members); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs[1:] {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q would run as a formula (row %q)", cell, rec)
			}
		}
	}
	if got := recs[1][0]; got != "'=cmd@example.org" {
		t.Errorf("email cell = %q, want '=cmd@example.org", got)
	}
	rows, problems, err := Read(buf.Bytes(), "", 0)
	if err != nil || len(problems) != 0 || len(rows) != len(members) {
		t.Fatalf("Read = %+v, %+v, %v", rows, problems, err)
	}
	for i, m := range members {
		if r := rows[i]; r.Email != m.Email || r.Name != m.Name || r.Status != m.Status {
			t.Errorf("row %d read back as %s <%s> %s, want %s <%s> %s", i, r.Name, r.Email, r.Status, m.Name, m.Email, m.Status)
		}
	}
}
