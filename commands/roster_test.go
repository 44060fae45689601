package commands

import (
	"encoding/csv"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/commands/csvroster"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// runEnv executes the lines as actor with the given environment; a zero
// Now or MessageID takes the test defaults.
func runEnv(t *testing.T, db *storage.DB, actor Actor, env Env, lines ...string) Report {
	t.Helper()
	if env.Now.IsZero() {
		env.Now = testNow
	}
	if env.MessageID == "" {
		env.MessageID = "m2@test"
	}
	var rep Report
	err := db.Update(func(tx *storage.Tx) error {
		var err error
		rep, err = Execute(tx, actor, env, Parse("", lines, 1000))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// withCSV is an environment whose message carries one CSV attachment.
func withCSV(name, data string) Env {
	return Env{Attachments: []Attachment{{Filename: name, ContentType: "text/csv", Data: []byte(data)}}}
}

var tokenRE = regexp.MustCompile(`confirm ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2})`)

// tokenIn finds the confirmation token a result hands out.
func tokenIn(t *testing.T, r Result) string {
	t.Helper()
	for _, s := range append([]string{r.Text}, r.Detail...) {
		if m := tokenRE.FindStringSubmatch(s); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no token in %s: %s %q", r.Status, r.Text, r.Detail)
	return ""
}

// roster returns a space's members as "email|name|status|until" lines.
func roster(t *testing.T, db *storage.DB, space string) string {
	t.Helper()
	var lines []string
	db.View(func(tx *storage.Tx) error {
		ms, err := tx.Members(space)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			lines = append(lines, strings.Join([]string{m.Email, m.Name, m.Status, m.Until}, "|"))
		}
		return nil
	})
	return strings.Join(lines, "\n")
}

// audit returns "action key" of every member change, in order.
func audit(t *testing.T, db *storage.DB, space string) []string {
	t.Helper()
	var out []string
	db.View(func(tx *storage.Tx) error {
		return tx.Changes(0, func(c storage.Change) bool {
			if c.Kind == "member" && c.Space == space {
				out = append(out, c.Action+" "+c.Key)
			}
			return true
		})
	})
	return out
}

// seedIndyHall gives indyhall a roster of four.
// seedIndyHall gives indyhall the roster it has had for a month.
func seedIndyHall(t *testing.T, db *storage.DB) {
	t.Helper()
	expect(t, runEnv(t, db, alex, Env{Now: testNow.Add(-30 * 24 * time.Hour), MessageID: "m0@test"},
		`add member ann@example.org name="Ann Lee" until=2026-12-15`,
		`add member bob@example.org name="Bob Jones"`,
		`add member carl@example.org name="Carl" status=inactive`,
		`add member dora@example.org name="Dora Diaz" until=2026-11-01`,
	), "OK: added", "OK: added", "OK: added", "OK: added")
}

func TestListMembers(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	rep := run(t, db, alex, "list members")
	// Every line says the state the counts count (storage.Member.ActiveOn):
	// Dora's end date is past, so she is expired, not active.
	expect(t, rep, "OK: indyhall has 4 members: 2 active, 1 inactive, 1 expired (past their end date); 1 ending within 30 days. "+
		"The roster is listed below and attached as indyhall-members-2026-11-28.csv.")
	r := rep.Results[0]
	want := []string{"Ann Lee <ann@example.org> (active, until 2026-12-15)", "Bob Jones <bob@example.org> (active)",
		"Carl <carl@example.org> (inactive)", "Dora Diaz <dora@example.org> (expired, ended 2026-11-01)"}
	if strings.Join(r.Detail, "\n") != strings.Join(want, "\n") {
		t.Errorf("Detail =\n%s\nwant\n%s", strings.Join(r.Detail, "\n"), strings.Join(want, "\n"))
	}
	if len(r.Files) != 1 {
		t.Fatalf("files = %+v", r.Files)
	}
	f := r.Files[0]
	if f.Name != "indyhall-members-2026-11-28.csv" || f.ContentType != "text/csv; charset=utf-8" {
		t.Errorf("file %q, %q", f.Name, f.ContentType)
	}
	if !strings.HasPrefix(string(f.Data), "\uFEFFemail,name,status,until,updated\r\n") &&
		!strings.HasPrefix(string(f.Data), "\uFEFFemail,name,status,until,updated\n") {
		t.Errorf("CSV starts %q", f.Data[:min(len(f.Data), 60)])
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(f.Data), "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[1][0] != "ann@example.org" || recs[1][1] != "Ann Lee" || recs[1][3] != "2026-12-15" ||
		recs[1][4] != "2026-10-29T09:30:00Z" || recs[3][0] != "carl@example.org" || recs[3][2] != "inactive" {
		t.Errorf("CSV records = %q", recs)
	}

	rep = run(t, db, alex, "list members status=inactive")
	expect(t, rep, "OK: indyhall has 4 members")
	r = rep.Results[0]
	if !strings.Contains(r.Text, "The 2 members not active today (inactive or expired) are listed below and attached as indyhall-members-inactive-2026-11-28.csv") ||
		len(r.Detail) != 2 || !strings.Contains(string(r.Files[0].Data), "carl@example.org") ||
		!strings.Contains(string(r.Files[0].Data), "dora@example.org") || strings.Contains(string(r.Files[0].Data), "ann@example.org") {
		t.Errorf("inactive list = %s %q %q", r.Text, r.Detail, r.Files[0].Data)
	}
	rep = run(t, db, alex, "list members status=active")
	r = rep.Results[0]
	if !strings.Contains(r.Text, "The 2 active members are listed below") || len(r.Detail) != 2 ||
		strings.Contains(string(r.Files[0].Data), "dora@example.org") {
		t.Errorf("active list = %s %q %q", r.Text, r.Detail, r.Files[0].Data)
	}
	expect(t, run(t, db, nobody, "list members"), "DENIED: not a manager")

	// A French reader's spreadsheet expects semicolons; the file still
	// reads back (csvroster takes either).
	rep = runEnv(t, db, alex, Env{Printer: templates.Embedded().In("fr").Printer()}, "list members")
	data := rep.Results[0].Files[0].Data
	if !strings.HasPrefix(string(data), "\uFEFFemail;name;status;until;updated\n") {
		t.Errorf("French CSV starts %q", data[:min(len(data), 60)])
	}
	if rows, problems, err := csvroster.Read(data, "utf-8", 100); err != nil || len(problems) > 0 || len(rows) != 4 {
		t.Errorf("the French file reads back as %d rows, %v, %v", len(rows), problems, err)
	}
}

func TestImportMembers(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	file := "email,name,status,until\n" +
		"ann@example.org,Ann Lee,active,2026-12-15\n" + // unchanged
		"bob@example.org,,inactive,\n" + // updated: status; name and until stay
		"eve@example.org,Eve Adams,,\n" + // added, active by default
		"bob@,Bobby,active,\n" + // line 5: rejected
		"fay@example.org,Fay,inactive,2027-06-30\n" + // added
		"gus@example.org,Gus,active,someday\n" + // line 7: rejected
		"Eve@Example.org,Eve again,,\n" // line 8: duplicate
	rep := runEnv(t, db, alex, withCSV("roster.csv", file), "import members")
	expect(t, rep, "OK: imported roster.csv into indyhall: 2 added, 1 updated, 1 unchanged, 3 rejected.")
	wantDetail := []string{
		`line 5: "bob@" is not a valid email address: the domain needs a dot`,
		`line 7: "someday" is not a valid date: write YYYY-MM-DD, e.g. 2027-03-31`,
		`line 8: eve@example.org is already on line 4; only the first row counts`,
	}
	if got := rep.Results[0].Detail; strings.Join(got, "\n") != strings.Join(wantDetail, "\n") {
		t.Errorf("Detail =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantDetail, "\n"))
	}
	want := "ann@example.org|Ann Lee|active|2026-12-15\n" +
		"bob@example.org|Bob Jones|inactive|\n" +
		"carl@example.org|Carl|inactive|\n" +
		"dora@example.org|Dora Diaz|active|2026-11-01\n" +
		"eve@example.org|Eve Adams|active|\n" +
		"fay@example.org|Fay|inactive|2027-06-30"
	if got := roster(t, db, "indyhall"); got != want {
		t.Errorf("roster =\n%s\nwant\n%s", got, want)
	}
	got := audit(t, db, "indyhall")[4:]
	if strings.Join(got, ",") != "add eve@example.org,add fay@example.org,update bob@example.org" {
		t.Errorf("audit of the import = %v", got)
	}
	db.View(func(tx *storage.Tx) error {
		h, _ := tx.History("indyhall", "bob@example.org")
		last := h[len(h)-1]
		if last.Actor != alex.Address || last.MessageID != "m2@test" || !last.At.Equal(testNow) {
			t.Errorf("audit record lacks who/when/which message: %+v", last)
		}
		return nil
	})
	// The same file again changes nothing and says so.
	expect(t, runEnv(t, db, alex, withCSV("roster.csv", file), "import members"),
		"OK: imported roster.csv into indyhall: 0 added, 0 updated, 4 unchanged, 3 rejected.")
	// "none" clears an end date; an empty cell would not.
	expect(t, runEnv(t, db, alex, withCSV("r.csv", "email;until\nann@example.org;none\n"), "import members"),
		"OK: imported r.csv into indyhall: 0 added, 1 updated, 0 unchanged, 0 rejected.")
	if !strings.HasPrefix(roster(t, db, "indyhall"), "ann@example.org|Ann Lee|active|\n") {
		t.Errorf("end date not cleared: %s", roster(t, db, "indyhall"))
	}
}

func TestImportRefusals(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	before := roster(t, db, "indyhall")
	good := "email\nnew@example.org\n"
	for _, c := range []struct {
		name string
		env  Env
		line string
		want string
	}{
		{"no attachment", Env{}, "import members", "ERROR: attach the roster as a CSV file"},
		{"a workbook", Env{Attachments: []Attachment{{Filename: "roster.xlsx",
			ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Data: []byte("PK\x03\x04")}}},
			"import members", "ERROR: attach the roster as a CSV file; this message has roster.xlsx (application/vnd.openxmlformats"},
		{"two CSV files", Env{Attachments: []Attachment{{Filename: "a.csv", Data: []byte(good)}, {Filename: "b.csv", Data: []byte(good)}}},
			"import members", "ERROR: attach one CSV file, not 2 (a.csv, b.csv)"},
		{"over the reader's limit", Env{Attachments: []Attachment{{Filename: "big.csv", ContentType: "text/csv", TooLarge: true}}},
			"import members", "ERROR: big.csv is too large to import"},
		{"over the import limit", Env{Attachments: withCSV("big.csv", good).Attachments, Limits: Limits{MaxImportBytes: 10}},
			"import members", "ERROR: big.csv is too large to import (over the limit of 10 bytes). Nothing was changed"},
		{"too many rows", Env{Attachments: withCSV("r.csv", good+"n2@example.org\n").Attachments, Limits: Limits{MaxImportRows: 1}},
			"import members", "ERROR: r.csv cannot be read: the file has more than 1 member row"},
		{"no header", withCSV("r.csv", "new@example.org,New\n"), "import members", "ERROR: r.csv cannot be read: the first row looks like a member"},
		{"a workbook named .csv", withCSV("r.csv", "PK\x03\x04junk"), "import members", "ERROR: r.csv cannot be read: the file is a zip archive"},
		{"every row rejected", withCSV("r.csv", "email\nx\ny\n"), "import members", "ERROR: r.csv has no member row that can be imported (2 rejected)"},
		{"header only, with replace", withCSV("r.csv", "email,name\n"), "import members replace", "ERROR: r.csv has no member row"},
		{"not a manager", withCSV("r.csv", good), "import members", "DENIED: someone@else.test is not a manager"},
	} {
		t.Run(c.name, func(t *testing.T) {
			actor := alex
			if c.name == "not a manager" {
				actor = nobody
			}
			expect(t, runEnv(t, db, actor, c.env, c.line), c.want)
			if got := roster(t, db, "indyhall"); got != before {
				t.Errorf("roster changed:\n%s", got)
			}
		})
	}
	// Outlook on Windows calls a CSV file application/vnd.ms-excel; with
	// a signature logo beside it, the CSV is still the one.
	env := Env{Attachments: []Attachment{
		{Filename: "logo.png", ContentType: "image/png", Data: []byte("\x89PNG")},
		{Filename: "Roster.CSV", ContentType: "application/vnd.ms-excel", Data: []byte("Email;Name\nnew@example.org;New\n")},
	}}
	expect(t, runEnv(t, db, alex, env, "import members"), "OK: imported Roster.CSV into indyhall: 1 added")
}

func TestImportReplaceWithConfirmation(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	before := roster(t, db, "indyhall")
	file := "email,name,status,until\n" +
		"ann@example.org,Ann Lee,active,2026-12-15\n" + // unchanged
		"bob@example.org,Robert Jones,,\n" + // updated
		"eve@example.org,Eve Adams,active,\n" // added
	// carl and dora are not in the file: removed.
	rep := runEnv(t, db, alex, withCSV("roster.csv", file), "import members replace")
	expect(t, rep, "OK: roster.csv would replace the roster of indyhall: 1 added, 1 updated, 1 unchanged, 2 REMOVED, 0 rejected. "+
		"Nothing was changed yet. To apply, reply with the line: confirm ")
	tok := tokenIn(t, rep.Results[0])
	d := rep.Results[0].Detail
	if len(d) != 3 || d[0] != "REMOVED: Carl <carl@example.org> (inactive)" || !strings.HasPrefix(d[1], "REMOVED: Dora Diaz") ||
		d[2] != "The token works once, only when alex@indyhall.test sends it, until 2026-12-01 09:30 UTC." {
		t.Errorf("Detail = %q", d)
	}
	if got := roster(t, db, "indyhall"); got != before {
		t.Fatalf("the preview changed the roster:\n%s", got)
	}

	rep = runEnv(t, db, alex, Env{Now: testNow.Add(time.Hour), MessageID: "m3@test"}, "confirm "+tok)
	expect(t, rep, "OK: imported roster.csv into indyhall, replacing its roster: 1 added, 1 updated, 1 unchanged, 2 removed, 0 rejected.")
	want := "ann@example.org|Ann Lee|active|2026-12-15\n" +
		"eve@example.org|Eve Adams|active|\n" +
		"bob@example.org|Robert Jones|active|"
	if got := roster(t, db, "indyhall"); got != want {
		t.Errorf("roster after confirm =\n%s\nwant exactly the file:\n%s", got, want)
	}
	got := audit(t, db, "indyhall")[4:]
	if strings.Join(got, ",") != "add eve@example.org,update bob@example.org,remove carl@example.org,remove dora@example.org" {
		t.Errorf("audit of the replace = %v", got)
	}
	db.View(func(tx *storage.Tx) error {
		h, _ := tx.History("indyhall", "carl@example.org")
		if last := h[len(h)-1]; last.Action != "remove" || last.MessageID != "m3@test" || last.Actor != alex.Address {
			t.Errorf("removal record = %+v", last)
		}
		return nil
	})
	// Single use.
	expect(t, runEnv(t, db, alex, Env{}, "confirm "+tok), "ERROR: nothing is waiting for confirmation")
}

// A member whose row has a typo is kept by a replace, not removed.
func TestReplaceKeepsMembersOfRejectedRows(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	file := "email,until\nann@example.org,2026-12-15\nbob@example.org,next year\ncarl@example.org,\ndora@example.org,\n"
	rep := runEnv(t, db, alex, withCSV("r.csv", file), "import members replace")
	expect(t, rep, "OK: r.csv would replace the roster of indyhall: 0 added, 0 updated, 3 unchanged, 0 REMOVED, 1 rejected.")
	expect(t, runEnv(t, db, alex, Env{}, "confirm "+tokenIn(t, rep.Results[0])),
		"OK: imported r.csv into indyhall, replacing its roster: 0 added, 0 updated, 3 unchanged, 0 removed, 1 rejected.")
	if n := strings.Count(roster(t, db, "indyhall"), "\n") + 1; n != 4 {
		t.Errorf("roster has %d members, want 4", n)
	}
}

func TestConfirmationTokens(t *testing.T) {
	file := "email,name\nann@example.org,Ann Lee\n"
	other := "email,name\nann@example.org,Ann Lee\nzed@example.org,Zed\n"
	preview := func(t *testing.T, db *storage.DB) string {
		t.Helper()
		rep := runEnv(t, db, alex, withCSV("roster.csv", file), "import members replace")
		expect(t, rep, "OK: roster.csv would replace the roster of indyhall: 0 added, 0 updated, 1 unchanged, 3 REMOVED")
		return tokenIn(t, rep.Results[0])
	}
	for _, c := range []struct {
		name  string
		steps func(t *testing.T, db *storage.DB, tok string)
	}{
		{"just before expiry", func(t *testing.T, db *storage.DB, tok string) {
			expect(t, runEnv(t, db, alex, Env{Now: testNow.Add(72*time.Hour - time.Second)}, "confirm "+tok), "OK: imported")
		}},
		{"expired", func(t *testing.T, db *storage.DB, tok string) {
			expect(t, runEnv(t, db, alex, Env{Now: testNow.Add(72 * time.Hour)}, "confirm "+tok),
				"ERROR: token "+tok+" expired on 2026-12-01 09:30 UTC; nothing was changed. Send the import again")
			// Still "expired", not "unknown", a week later.
			expect(t, runEnv(t, db, alex, Env{Now: testNow.Add(10 * 24 * time.Hour)}, "confirm "+tok), "ERROR: token "+tok+" expired")
		}},
		{"reused", func(t *testing.T, db *storage.DB, tok string) {
			expect(t, runEnv(t, db, alex, Env{}, "confirm "+tok, "confirm "+tok), "OK: imported", "ERROR: nothing is waiting")
		}},
		{"another manager, then its owner", func(t *testing.T, db *storage.DB, tok string) {
			expect(t, runEnv(t, db, mad, Env{}, "confirm "+tok), "DENIED: this token was given to another manager")
			expect(t, runEnv(t, db, admin, Env{}, "confirm "+tok), "DENIED: this token was given to another manager")
			expect(t, runEnv(t, db, alex, Env{}, "confirm "+tok), "OK: imported")
		}},
		{"another file cannot use the token", func(t *testing.T, db *storage.DB, tok string) {
			expect(t, runEnv(t, db, alex, withCSV("roster-v2.csv", other), "confirm "+tok),
				"ERROR: this token confirms roster.csv as previewed, and the attached roster-v2.csv is a different file")
			// The same file attached again is fine.
			expect(t, runEnv(t, db, alex, withCSV("roster.csv", file), "confirm "+tok), "OK: imported roster.csv")
		}},
		{"dashes and case do not matter", func(t *testing.T, db *storage.DB, tok string) {
			typed := strings.ToLower(strings.ReplaceAll(tok, "-", ""))
			expect(t, runEnv(t, db, alex, Env{}, "confirm "+typed+"."), "OK: imported")
		}},
		{"a mistyped token", func(t *testing.T, db *storage.DB, tok string) {
			wrong := "ZZZZ-ZZZZ-ZZ"
			if tok == wrong {
				wrong = "YYYY-YYYY-YY"
			}
			expect(t, runEnv(t, db, alex, Env{}, "confirm "+wrong, "confirm "+tok[:6]), "ERROR: nothing is waiting", "ERROR: nothing is waiting")
		}},
		{"a manager who left", func(t *testing.T, db *storage.DB, tok string) {
			expect(t, run(t, db, admin, "remove manager alex@indyhall.test space=indyhall"), "OK: is no longer a manager")
			expect(t, runEnv(t, db, alex, Env{}, "confirm "+tok), "DENIED: you are no longer a manager of indyhall")
		}},
		{"the roster grew since the preview", func(t *testing.T, db *storage.DB, tok string) {
			expect(t, run(t, db, alex, "add member late@example.org"), "OK: added")
			rep := runEnv(t, db, alex, Env{}, "confirm "+tok)
			expect(t, rep, "ERROR: the roster of indyhall changed since the preview: the import would now also remove 1 member")
			if len(rep.Results[0].Detail) != 1 || !strings.Contains(rep.Results[0].Detail[0], "late@example.org") {
				t.Errorf("Detail = %q", rep.Results[0].Detail)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := network(t)
			seedIndyHall(t, db)
			before := roster(t, db, "indyhall")
			tok := preview(t, db)
			c.steps(t, db, tok)
			after := roster(t, db, "indyhall")
			applied := after == "ann@example.org|Ann Lee|active|2026-12-15"
			wantApplied := !strings.Contains(c.name, "expired") && !strings.Contains(c.name, "mistyped") &&
				!strings.Contains(c.name, "left") && !strings.Contains(c.name, "grew")
			if applied != wantApplied || !applied && after != before && !strings.Contains(c.name, "grew") {
				t.Errorf("roster after the steps:\n%s", after)
			}
		})
	}
}

func TestTokenShape(t *testing.T) {
	db := network(t)
	seen := map[string]bool{}
	for range 20 {
		rep := runEnv(t, db, alex, withCSV("r.csv", "email\nann@example.org\n"), "import members replace")
		tok := tokenIn(t, rep.Results[0])
		if strings.ContainsAny(tok, "ILOU") || seen[tok] {
			t.Errorf("token %s is ambiguous or repeated", tok)
		}
		seen[tok] = true
	}
	for in, want := range map[string]string{"k7qx-4m2p-9r": "K7QX4M2P9R", " K7QX 4M2P 9R.": "K7QX4M2P9R", "O1IL-0000-00": "0111000000"} {
		if got := tokenKey(in); got != want {
			t.Errorf("tokenKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMassRemoval(t *testing.T) {
	lim := Env{Limits: Limits{ConfirmRemovals: 3}}
	removeAll := []string{"remove member ann@example.org", "remove member bob@example.org",
		"remove member carl@example.org", "remove member dora@example.org"}

	t.Run("at the threshold: at once", func(t *testing.T) {
		db := network(t)
		seedIndyHall(t, db)
		expect(t, runEnv(t, db, alex, lim, removeAll[:3]...), "OK: removed ann", "OK: removed bob", "OK: removed carl")
		if got := roster(t, db, "indyhall"); got != "dora@example.org|Dora Diaz|active|2026-11-01" {
			t.Errorf("roster = %s", got)
		}
	})

	t.Run("over the threshold: held, then confirmed", func(t *testing.T) {
		db := network(t)
		seedIndyHall(t, db)
		before := roster(t, db, "indyhall")
		lines := append([]string{"verify jonas@betahaus.test"}, removeAll...)
		lines = append(lines, "remove member nobody@example.org", "remove member ann@example.org")
		rep := runEnv(t, db, alex, lim, lines...)
		expect(t, rep, "VERIFIED: jonas",
			"OK: ann@example.org will be removed from indyhall when you confirm; nothing changed yet.",
			"OK: bob@example.org will be removed", "OK: carl@example.org will be removed", "OK: dora@example.org will be removed",
			"ERROR: nobody@example.org is not a member of indyhall", "ERROR: ann@example.org is already listed above")
		d := rep.Results[1].Detail
		if len(d) != 3 || d[0] != "For indyhall, this message asks for 5 changes that remove, deactivate or rename members: "+
			"more than 3 in a day need your confirmation, so none of these was made yet." ||
			!strings.HasPrefix(d[1], "To apply the 4 held changes, reply with the line: confirm ") {
			t.Errorf("Detail = %q", d)
		}
		tok := tokenIn(t, rep.Results[1])
		if got := roster(t, db, "indyhall"); got != before {
			t.Fatalf("held removals changed the roster:\n%s", got)
		}
		expect(t, runEnv(t, db, mad, Env{}, "confirm "+tok), "DENIED: another manager")
		expect(t, run(t, db, alex, "remove member dora@example.org"), "OK: removed dora")
		rep = runEnv(t, db, alex, Env{MessageID: "m9@test"}, "confirm "+tok)
		expect(t, rep, "OK: removed 3 members as you confirmed.")
		if d := rep.Results[0].Detail; len(d) != 4 || d[3] != "dora@example.org was no longer a member of indyhall" {
			t.Errorf("Detail = %q", d)
		}
		if got := roster(t, db, "indyhall"); got != "" {
			t.Errorf("roster after confirm = %s", got)
		}
		got := audit(t, db, "indyhall")[4:]
		if strings.Join(got, ",") != "remove dora@example.org,remove ann@example.org,remove bob@example.org,remove carl@example.org" {
			t.Errorf("audit = %v", got)
		}
		expect(t, runEnv(t, db, alex, Env{}, "confirm "+tok), "ERROR: nothing is waiting")
	})

	t.Run("no limit", func(t *testing.T) {
		db := network(t)
		seedIndyHall(t, db)
		rep := runEnv(t, db, alex, Env{}, removeAll...)
		expect(t, rep, "OK: removed", "OK: removed", "OK: removed", "OK: removed")
	})

	t.Run("expired", func(t *testing.T) {
		db := network(t)
		seedIndyHall(t, db)
		tok := tokenIn(t, runEnv(t, db, alex, lim, removeAll...).Results[0])
		expect(t, runEnv(t, db, alex, Env{Now: testNow.Add(73 * time.Hour)}, "confirm "+tok), "ERROR: token "+tok+" expired on 2026-12-01 09:30 UTC; nothing was changed. Send the removals again")
	})
}

func TestImportRosterAndRosterCSV(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	op := Actor{Address: "operator (cli)", Admin: true}
	env := Env{Now: testNow, MessageID: "cli-1"}
	var rep ImportReport
	err := db.Update(func(tx *storage.Tx) error {
		var err error
		rep, err = ImportRoster(tx, op, env, "indyhall", []byte("email;name\nann@example.org;Ann Lee\nzoe@example.org;Zo\xeb\nbad;x\n"), "windows-1252", true)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 1 || rep.Updated != 0 || rep.Unchanged != 1 || rep.Removed != 3 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 4 {
		t.Errorf("report = %+v", rep)
	}
	if got := roster(t, db, "indyhall"); got != "ann@example.org|Ann Lee|active|2026-12-15\nzoe@example.org|Zoë|active|" {
		t.Errorf("roster = %s", got)
	}
	err = db.Update(func(tx *storage.Tx) error {
		_, err := ImportRoster(tx, op, env, "nowhere", []byte("email\na@example.org\n"), "", false)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Errorf("import into an unknown space: %v", err)
	}
	err = db.Update(func(tx *storage.Tx) error {
		_, err := ImportRoster(tx, op, Env{Limits: Limits{MaxImportRows: 1}}, "indyhall", []byte("email\na@example.org\nb@example.org\n"), "", false)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "more than 1") {
		t.Errorf("import over the row limit: %v", err)
	}
	err = db.Update(func(tx *storage.Tx) error {
		_, err := ImportRoster(tx, op, env, "indyhall", []byte("email,name\nbad,x\n"), "", true)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "would empty the roster of indyhall") {
		t.Errorf("replace with no valid row: %v", err)
	}
	db.View(func(tx *storage.Tx) error {
		data, err := RosterCSV(tx, "indyhall", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "\uFEFFemail,name,status,until,updated\nann@example.org,Ann Lee,active,2026-12-15,2026-10-29T09:30:00Z\nzoe@example.org,Zoë,active,,2026-11-28T09:30:00Z\n"; string(data) != want {
			t.Errorf("RosterCSV =\n%q\nwant\n%q", data, want)
		}
		if data, _ := RosterCSV(tx, "indyhall", "inactive"); strings.Count(string(data), "\n") != 1 {
			t.Errorf("inactive roster = %q", data)
		}
		if _, err := RosterCSV(tx, "nowhere", ""); err == nil {
			t.Error("RosterCSV of an unknown space succeeded")
		}
		return nil
	})
}

func TestHistoryShowsWhatChanged(t *testing.T) {
	db := network(t)
	run(t, db, alex, `add member ann@example.org name="Ann"`)
	run(t, db, alex, "update member ann@example.org status=inactive until=2027-01-31")
	run(t, db, alex, "update member ann@example.org email=ann@new.example.org")
	rep := run(t, db, alex, "history ann@new.example.org")
	expect(t, rep, "OK: 3 changes to ann@new.example.org in indyhall")
	want := []string{
		"today: Ann <ann@new.example.org> (inactive, until 2027-01-31)",
		"Sat 28 Nov 2026 09:30 UTC: add Ann <ann@example.org> (active), by alex@indyhall.test",
		"Sat 28 Nov 2026 09:30 UTC: update status active → inactive, end date (none) → 2027-01-31, by alex@indyhall.test",
		"Sat 28 Nov 2026 09:30 UTC: update address ann@example.org → ann@new.example.org, by alex@indyhall.test",
	}
	if got := rep.Results[0].Detail; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	expect(t, run(t, db, mad, "history ann@new.example.org"), "ERROR: ann@new.example.org has no history in betahaus")
}

// A history line dates a change in the space's own zone, as the reader's
// language writes a date, and names no Message-ID.
func TestHistoryInTheSpacesZoneAndLanguage(t *testing.T) {
	db := network(t)
	run(t, db, admin, "update space indyhall tz=Europe/Paris")
	run(t, db, alex, `add member ann@example.org name="Ann"`)
	fr := templates.Embedded().In("fr").Printer()
	rep := runEnv(t, db, alex, Env{Printer: fr}, "history ann@example.org")
	want := "sam. 28 nov. 2026 10:30 CET — ajout : Ann <ann@example.org> (actif), par alex@indyhall.test"
	if got := rep.Results[0].Detail; len(got) != 2 || got[1] != want {
		t.Errorf("history = %q, want %q", got, want)
	}
	if strings.Contains(strings.Join(rep.Results[0].Detail, "\n"), "m1@test") {
		t.Error("the history names the raw Message-ID")
	}
}

// An end date already past is accepted (it ends a membership, which some
// managers mean) but never silently: the OK says the member no longer
// verifies, and every later answer says expired, as verify and the counts
// do.
func TestPastEndDate(t *testing.T) {
	db := network(t)
	rep := run(t, db, alex, "add member eve@example.org until=2026-11-01", "add member fay@example.org until=2026-12-01",
		"update member fay@example.org until=2026-11-27", "update member fay@example.org name=Fay",
		"verify eve@example.org", "history fay@example.org", "list members")
	expect(t, rep,
		"OK: added eve@example.org (expired, ended 2026-11-01) to indyhall.",
		"OK: added fay@example.org (active, until 2026-12-01) to indyhall.",
		"OK: updated end date of fay@example.org: fay@example.org (expired, ended 2026-11-27).",
		"OK: updated name of fay@example.org: Fay <fay@example.org> (expired, ended 2026-11-27).",
		"NOT VERIFIED: eve@example.org is not an active member",
		"OK: 3 changes to fay@example.org in indyhall.",
		"OK: indyhall has 2 members: 0 active, 0 inactive, 2 expired (past their end date)")
	warn := func(i int) string { return strings.Join(rep.Results[i].Detail, "\n") }
	for _, i := range []int{0, 2} {
		if !strings.Contains(warn(i), "is already past") || !strings.Contains(warn(i), "NOT VERIFIED") {
			t.Errorf("result %d does not warn of the past end date: %q", i, warn(i))
		}
	}
	// Only the change that made the membership end warns.
	for _, i := range []int{1, 3} {
		if warn(i) != "" {
			t.Errorf("result %d warns: %q", i, warn(i))
		}
	}
	if h := warn(5); !strings.Contains(h, "today: Fay <fay@example.org> (expired, ended 2026-11-27)") ||
		!strings.Contains(h, "update status active → expired, end date 2026-12-01 → 2026-11-27") {
		t.Errorf("history = %s", h)
	}
	csv := "email,name,status,until\ngil@example.org,Gil,active,2026-01-31\nhal@example.org,Hal,active,2027-01-31\n"
	rep = runEnv(t, db, alex, withCSV("roster.csv", csv), "import members")
	expect(t, rep, "OK: imported roster.csv into indyhall: 2 added")
	if d := strings.Join(rep.Results[0].Detail, "\n"); !strings.Contains(d, "1 member has an end date already past in the file") ||
		!strings.Contains(d, "gil@example.org") || strings.Contains(d, "hal@") {
		t.Errorf("import detail = %q", d)
	}
}
