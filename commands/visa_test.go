package commands

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

var (
	jonas     = Actor{Address: "jonas@betahaus.test"}
	visitTok  = regexp.MustCompile(`decline visit ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2})`)
	newYork   = mustZone("America/New_York")
	visaSpace = storage.Space{ID: "indyhall", Name: "Indy Hall", City: "Philadelphia", Country: "US", TZ: "America/New_York",
		NoticeDays: 2, Hours: "Mon-Fri 9-18", Directions: "ring the bell on 2nd St", Terms: "bring a laptop lock"}
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// visaEnv is the environment of config.Default() for the visa exchange,
// at now.
func visaEnv(now time.Time) Env {
	cfg := config.Default()
	env := withDefaults(Env{Now: now, MessageID: "v@test", Language: cfg.Bot.Language,
		RosterConfirmDays: cfg.Digest.RosterConfirmDays})
	env.DefaultTZ, _ = time.LoadLocation(cfg.Digest.Timezone)
	return env
}

// visaNetwork is network() with indyhall's terms: three free days a month
// (free, or as given), two days' notice, in New York's zone.
func visaNetwork(t *testing.T, free *int) *storage.DB {
	t.Helper()
	db := network(t)
	err := db.Update(func(tx *storage.Tx) error {
		sp := visaSpace
		sp.FreeDays = free
		sp.Created = testNow.AddDate(0, -1, 0)
		if err := tx.PutSpace(sp); err != nil {
			return err
		}
		for _, s := range []storage.Space{{ID: "closed", Name: "Closed", FreeDays: new(0)}, {ID: "cantine", Name: "La Cantine", City: "Paris", Country: "FR", Language: "fr"}} {
			if err := tx.PutSpace(s); err != nil {
				return err
			}
		}
		return tx.AddManager(storage.Manager{Email: "gil@cantine.test", Space: "cantine"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestParseVisaCommands(t *testing.T) {
	for line, want := range map[string]string{
		"spaces":                                   "spaces",
		"spaces city=Berlin":                       "spaces",
		"terms indyhall":                           "terms",
		"visit indyhall 2026-12-03 days=2":         "visit",
		`decline visit K7QX-4M2P-9R reason="full"`: "decline visit",
		"My data":                                  "my data",
		"forget me":                                "forget me",
		"Confirm roster":                           "confirm roster",
		"confirm roster space=indyhall":            "confirm roster",
		"My name is Alex":                          "",
		"my data please":                           "my data",
		"My data is safe with us.":                 "",
		"Forget me not":                            "",
		"Forget it, thanks":                        "",
		"Decline if you must":                      "",
	} {
		c := ParseLine(line)
		switch {
		case want == "" && c != nil:
			t.Errorf("%q parsed as %q, want no command", line, c.Name)
		case want != "" && (c == nil || c.Name != want || c.Err != ""):
			t.Errorf("%q = %+v, want %s", line, c, want)
		}
	}
	for line, why := range map[string]string{
		"visit indyhall":                        "needs a space id and a date",
		"visit indyhall 2026-02-30":             "not a valid date",
		"visit indyhall none":                   "not a valid date",
		"visit indyhall 2026-12-03 days=0":      "from 1 to 31",
		"visit indyhall 2026-12-03 days=400":    "from 1 to 31",
		"visit indyhall 2026-12-03 nights=2":    "unknown option nights=",
		"terms":                                 "needs a space id",
		"decline visit":                         "needs the token",
		"update space x free_days=32":           "from 0 to 31",
		"update space x free_days=lots":         "from 0 to 31",
		"update space x notice_days=-1":         "from 0 to 365",
		"confirm roster now":                    "unexpected",
		"my data space=indyhall":                "takes no options",
		"visit indyhall 2026-12-03 note=\"a\nb": "",
	} {
		c := ParseLine(line)
		if why == "" {
			continue
		}
		if c == nil || !strings.Contains(c.Err, why) {
			t.Errorf("%q = %+v, want an error with %q", line, c, why)
		}
	}
	c := ParseLine("visit IndyHall 2026-12-03 days=2 note=\"arriving late\"")
	if c.Target != "indyhall" || c.Opts["date"] != "2026-12-03" || c.Opts["days"] != "2" || c.Opts["note"] != "arriving late" {
		t.Errorf("visit = %+v", c)
	}
}

// Members, managers and admins read the directory and the terms; others
// are refused; the directory names no manager.
func TestDirectory(t *testing.T) {
	db := visaNetwork(t, new(3))
	env := visaEnv(testNow)
	rep := runEnv(t, db, jonas, env, "spaces", "spaces city=paris", "spaces country=XX", "terms indyhall", "terms nowhere",
		"visit nowhere 2026-12-24")
	expect(t, rep,
		"OK: 4 participating spaces.",
		"OK: 1 participating space.",
		"OK: no participating space matches country=\"XX\".",
		"OK: the terms of Indy Hall (Philadelphia, US) for visitors:",
		"ERROR: there is no space nowhere.")
	// "terms nowhere" may be prose ("Terms apply."): with no such space it
	// is an ignored line; a visit with a date is an attempt.
	if !slices.Equal(rep.Ignored, []string{"terms nowhere"}) {
		t.Errorf("ignored = %q, want the terms line", rep.Ignored)
	}
	all := strings.Join(rep.Results[0].Detail, "\n")
	for _, want := range []string{"indyhall: Indy Hall (Philadelphia, US); 3 free days a month; 2 days' notice; bring a laptop lock",
		"closed: Closed; no free days; no notice needed", "betahaus: betahaus (Berlin); free days not set"} {
		if !strings.Contains(all, want) {
			t.Errorf("directory lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "@") {
		t.Errorf("the directory shows addresses:\n%s", all)
	}
	if d := rep.Results[1].Detail; len(d) != 1 || !strings.HasPrefix(d[0], "cantine:") {
		t.Errorf("city filter = %q", d)
	}
	terms := strings.Join(rep.Results[3].Detail, "\n")
	for _, want := range []string{"free days: 3 free days a month", "notice: 2 days' notice", "opening hours: Mon-Fri 9-18",
		"how to arrive: ring the bell on 2nd St", "in its own words: bring a laptop lock", "you used 0 days there this month.",
		"visit indyhall YYYY-MM-DD"} {
		if !strings.Contains(terms, want) {
			t.Errorf("terms lack %q:\n%s", want, terms)
		}
	}
	expect(t, runEnv(t, db, alex, env, "spaces", "terms betahaus"), "OK: 4 participating", "OK: the terms of betahaus")
	expect(t, runEnv(t, db, admin, env, "spaces"), "OK: 4 participating")
	expect(t, runEnv(t, db, nobody, env, "spaces", "terms indyhall", "visit indyhall 2026-12-03"),
		"DENIED: spaces is for members and managers", "DENIED: terms is for members and managers", "DENIED: visit is for members")
	// An expired member is not a member.
	expect(t, runEnv(t, db, Actor{Address: "old@betahaus.test"}, env, "spaces"), "DENIED: spaces is for members")
	// Members may not use manager commands.
	expect(t, runEnv(t, db, jonas, env, "list members", "verify x@y.test", "confirm roster", "decline visit K7QX-4M2P-9R"),
		"DENIED: jonas@betahaus.test is not a manager of any space", "DENIED: only space managers may verify",
		"DENIED: jonas@betahaus.test is not a manager of any space", "DENIED: decline visit is for the managers")
}

func TestUpdateSpaceTerms(t *testing.T) {
	db := network(t)
	env := visaEnv(testNow)
	expect(t, runEnv(t, db, admin, env,
		`update space indyhall free_days=3 notice_days=2 hours="9-18" directions="2nd floor"`,
		`update space indyhall free_days=3 notice_days=2 hours="9-18" directions="2nd floor"`,
		"update space betahaus free_days=unlimited",
		"update space betahaus free_days=default",
		"update space indyhall free_days=32",
		"update space indyhall"),
		"OK: updated space indyhall", "OK: space indyhall is unchanged", "OK: updated space betahaus", "OK: updated space betahaus",
		"ERROR: free_days= must be a whole number from 0 to 31", "ERROR: update space needs something to change")
	db.View(func(tx *storage.Tx) error {
		sp, _, _ := tx.Space("indyhall")
		if sp.FreeDays == nil || *sp.FreeDays != 3 || sp.NoticeDays != 2 || sp.Hours != "9-18" || sp.Directions != "2nd floor" {
			t.Errorf("indyhall = %+v", sp)
		}
		if sp, _, _ := tx.Space("betahaus"); sp.FreeDays != nil {
			t.Errorf("free_days=default left %v", *sp.FreeDays)
		}
		return nil
	})
	expect(t, runEnv(t, db, admin, env, "update space betahaus free_days=unlimited", "terms betahaus"),
		"OK: updated space", "OK: the terms")
}

// Each bad visit is an ERROR that says why, and changes nothing.
func TestVisitErrors(t *testing.T) {
	db := visaNetwork(t, new(3))
	// 09:30 UTC on 28 Nov is 04:30 in New York: still the 28th there.
	env := visaEnv(testNow)
	rep := runEnv(t, db, jonas, env,
		"visit indyhall 2026-11-27",
		"visit indyhall 2027-11-29",
		"visit betahaus 2026-12-10",
		"visit closed 2026-12-10",
		"visit indyhall 2026-11-29",
		"visit nowhere 2026-12-10",
		"visit indyhall 2026-02-30",
		"visit indyhall 2026-12-10 days=0",
		"visit indyhall 2026-12-10 days=400",
		"visit indyhall 2026-12-10 days=4",
		"visit indyhall 2026-12-30 days=3",
	)
	expect(t, rep,
		"ERROR: 2026-11-27 is in the past: it is 2026-11-28 at indyhall.",
		"ERROR: 2027-11-29 is more than a year ahead",
		"ERROR: you are a member of betahaus: you need no visa there.",
		"ERROR: closed gives visitors no free days.",
		"ERROR: indyhall needs 2 days' notice: the first day you may announce now is 2026-11-30.",
		"ERROR: there is no space nowhere.",
		"ERROR: \"2026-02-30\" is not a valid date",
		"ERROR: days= must be a whole number from 1 to 31, not \"0\"",
		"ERROR: days= must be a whole number from 1 to 31, not \"400\"",
		"ERROR: not enough free days at indyhall in 2026-12: 3 of 3 are left, and this visit needs 4.",
		// Two days in December, one in January: each month has its own.
		"OK: your visit to Indy Hall (Philadelphia, US) on 2026-12-30 (3 days) is announced")
	if len(rep.Notices) != 1 {
		t.Fatalf("notices = %+v", rep.Notices)
	}
	// A member whose membership ends before the visit.
	db.Update(func(tx *storage.Tx) error {
		return tx.PutMember(storage.Member{Space: "betahaus", Email: "ends@betahaus.test", Status: "active", Until: "2026-12-05"})
	})
	expect(t, runEnv(t, db, Actor{Address: "ends@betahaus.test"}, env, "visit indyhall 2026-12-04 days=3"),
		"ERROR: your membership ends on 2026-12-05, before the last day of this visit (2026-12-06).")
}

// An announced visit counts its days, and the host's managers get a
// notice in the host's language with the member's verification, the
// dates, the days used and a token to decline it; the member's reply
// tells the days left.
func TestVisitAnnounced(t *testing.T) {
	db := visaNetwork(t, new(3))
	env := visaEnv(testNow)
	rep := runEnv(t, db, jonas, env, `visit indyhall 2026-12-03 days=2 note="arriving at 10"`, `visit cantine 2026-12-03`)
	expect(t, rep, "OK: your visit to Indy Hall (Philadelphia, US) on 2026-12-03 (2 days) is announced; its managers were told.",
		"OK: your visit to La Cantine (Paris, FR) on 2026-12-03 (1 day) is announced")
	detail := strings.Join(rep.Results[0].Detail, "\n")
	for _, want := range []string{"free days left at indyhall in 2026-12: 1 of 3.", "opening hours: Mon-Fri 9-18"} {
		if !strings.Contains(detail, want) {
			t.Errorf("reply lacks %q:\n%s", want, detail)
		}
	}
	if len(rep.Notices) != 2 {
		t.Fatalf("notices = %+v", rep.Notices)
	}
	n := rep.Notices[0]
	text := n.Subject + "\n" + strings.Join(n.Lines, "\n")
	if strings.Join(n.To, ",") != "alex@indyhall.test,multi@x.test" || n.Language != "en" {
		t.Errorf("notice to %v in %s", n.To, n.Language)
	}
	for _, want := range []string{"Visit announced: jonas@betahaus.test at indyhall on 2026-12-03",
		"jonas@betahaus.test announces a visit to Indy Hall (Philadelphia, US) on 2026-12-03 (2 days).",
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin).",
		"Home space: betahaus.", "Dates: 2026-12-03 to 2026-12-04.",
		"Days used at indyhall in 2026-12, this visit included: 2 of 3 free days.",
		"Their note: arriving at 10", "decline visit "} {
		if !strings.Contains(text, want) {
			t.Errorf("notice lacks %q:\n%s", want, text)
		}
	}
	fr := rep.Notices[1]
	if fr.Language != "fr" || strings.Join(fr.To, ",") != "gil@cantine.test" || !strings.Contains(strings.Join(fr.Lines, "\n"), "VERIFIED: jonas@betahaus.test est Jonas Müller") {
		t.Errorf("French notice = %+v", fr)
	}
	db.View(func(tx *storage.Tx) error {
		if n := tx.DaysUsed("indyhall", "jonas@betahaus.test", "2026-12"); n != 2 {
			t.Errorf("days used = %d, want 2", n)
		}
		return nil
	})
	// A second visit over the same days uses no new day.
	expect(t, runEnv(t, db, jonas, env, "visit indyhall 2026-12-04 days=2"),
		"OK: your visit to Indy Hall (Philadelphia, US) on 2026-12-04 (2 days) is announced")
	db.View(func(tx *storage.Tx) error {
		if n := tx.DaysUsed("indyhall", "jonas@betahaus.test", "2026-12"); n != 3 {
			t.Errorf("days used = %d, want 3", n)
		}
		return nil
	})
	expect(t, runEnv(t, db, jonas, env, "visit indyhall 2026-12-20"),
		"ERROR: not enough free days at indyhall in 2026-12: 0 of 3 are left, and this visit needs 1.")
}

// A host's VERIFIED counts one day per calendar day in the host's zone,
// says which day of the month's free days it is, and past the allowance
// still says VERIFIED, and that the free days are used up.
func TestVerifyCountsFreeDays(t *testing.T) {
	db := visaNetwork(t, new(2))
	// 30 Nov, 23:30 in New York (04:30 UTC on 1 Dec): still November there.
	day1 := time.Date(2026, 11, 30, 23, 30, 0, 0, newYork)
	expect(t, runEnv(t, db, alex, visaEnv(day1), "verify jonas@betahaus.test", "verify jonas@betahaus.test"),
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin); day 1 of 2 free days this month at indyhall.",
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin); day 1 of 2 free days this month at indyhall.")
	// Half an hour later it is December in New York: a new month.
	day2 := day1.Add(time.Hour)
	expect(t, runEnv(t, db, alex, visaEnv(day2), "verify jonas@betahaus.test"),
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin); day 1 of 2 free days this month at indyhall.")
	expect(t, runEnv(t, db, alex, visaEnv(day2.AddDate(0, 0, 1)), "verify jonas@betahaus.test"),
		"VERIFIED: day 2 of 2 free days this month at indyhall.")
	expect(t, runEnv(t, db, alex, visaEnv(day2.AddDate(0, 0, 2)), "verify jonas@betahaus.test", "verify nobody@x.test"),
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin); day 3 this month at indyhall: the free days (2) are used up.",
		"NOT VERIFIED: nobody@x.test")
	db.View(func(tx *storage.Tx) error {
		if nov, dec := tx.DaysUsed("indyhall", "jonas@betahaus.test", "2026-11"), tx.DaysUsed("indyhall", "jonas@betahaus.test", "2026-12"); nov != 1 || dec != 3 {
			t.Errorf("days used: %d in November, %d in December; want 1, 3", nov, dec)
		}
		return nil
	})
	// A manager of several spaces counts where they say; a space's own
	// member counts nothing; unlimited and unset allowances.
	db.Update(func(tx *storage.Tx) error {
		sp, _, _ := tx.Space("betahaus")
		sp.FreeDays = new(storage.FreeDaysUnlimited)
		tx.PutSpace(sp)
		return tx.PutMember(storage.Member{Space: "indyhall", Email: "ann@indyhall.test", Status: "active"})
	})
	expect(t, runEnv(t, db, multi, visaEnv(day2), "verify jonas@betahaus.test", "verify ann@indyhall.test space=betahaus",
		"verify ann@indyhall.test space=indyhall", "verify ann@indyhall.test space=cantine"),
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin).",
		"VERIFIED: ann@indyhall.test is a member of Indy Hall (Philadelphia, US); day 1 this month at betahaus, with no limit on free days.",
		"VERIFIED: ann@indyhall.test is a member of Indy Hall (Philadelphia, US).",
		"DENIED: you are not a manager of space cantine; to become one, ask the network's admins.")
	expect(t, runEnv(t, db, mad, visaEnv(day2), "verify ann@indyhall.test"),
		"VERIFIED: ann@indyhall.test is a member of Indy Hall (Philadelphia, US); day 1 this month at betahaus, with no limit")
}

// A host's manager declines a visit: the days are released and the member
// is told in their home space's language; the token works once, for the
// host's managers only.
func TestDeclineVisit(t *testing.T) {
	db := visaNetwork(t, new(3))
	db.Update(func(tx *storage.Tx) error {
		sp, _, _ := tx.Space("betahaus")
		sp.Language = "de"
		return tx.PutSpace(sp)
	})
	env := visaEnv(testNow)
	rep := runEnv(t, db, jonas, env, "visit indyhall 2026-12-03 days=2")
	m := visitTok.FindStringSubmatch(strings.Join(rep.Notices[0].Lines, "\n"))
	if m == nil {
		t.Fatalf("no token in %q", rep.Notices[0].Lines)
	}
	tok := m[1]
	expect(t, runEnv(t, db, jonas, env, "decline visit "+tok), "DENIED: decline visit is for the managers")
	expect(t, runEnv(t, db, mad, env, "decline visit "+tok), "DENIED: only the managers of indyhall may decline this visit.")
	expect(t, runEnv(t, db, alex, env, "decline visit ZZZZ-ZZZZ-ZZ", "decline visit nonsense"),
		"ERROR: no visit is waiting for an answer under ZZZZ-ZZZZ-ZZ", "ERROR: no visit is waiting for an answer under nonsense")
	rep = runEnv(t, db, alex, env, `decline visit `+strings.ToLower(tok)+` reason="we are closed that week"`, "decline visit "+tok)
	expect(t, rep, "OK: declined the visit of jonas@betahaus.test to indyhall on 2026-12-03; they were told.",
		"ERROR: the visit under "+tok+" was declined already, on 2026-11-28.")
	if len(rep.Notices) != 1 {
		t.Fatalf("notices = %+v", rep.Notices)
	}
	n := rep.Notices[0]
	de := templates.Embedded().In("de")
	if n.Language != "de" || strings.Join(n.To, ",") != "jonas@betahaus.test" ||
		n.Subject != de.Sprintf("Your visit to %s on %s was declined", "indyhall", "2026-12-03") ||
		!strings.Contains(strings.Join(n.Lines, "\n"), "we are closed that week") {
		t.Errorf("notice = %+v", n)
	}
	db.View(func(tx *storage.Tx) error {
		if n := tx.DaysUsed("indyhall", "jonas@betahaus.test", "2026-12"); n != 0 {
			t.Errorf("days used after the decline = %d", n)
		}
		return nil
	})
	// A visit that is over cannot be declined.
	rep = runEnv(t, db, jonas, env, "visit indyhall 2026-12-10")
	tok = visitTok.FindStringSubmatch(strings.Join(rep.Notices[0].Lines, "\n"))[1]
	expect(t, runEnv(t, db, alex, visaEnv(time.Date(2026, 12, 12, 12, 0, 0, 0, time.UTC)), "decline visit "+tok),
		"ERROR: the visit under "+tok+" is over: its last day was 2026-12-10.")
}

// my data lists every kind of record held about the sender.
func TestMyData(t *testing.T) {
	db := visaNetwork(t, new(3))
	env := visaEnv(testNow)
	runEnv(t, db, jonas, env, "visit indyhall 2026-12-03 days=2")
	runEnv(t, db, alex, env, "verify jonas@betahaus.test")
	runEnv(t, db, mad, env, `update member jonas@betahaus.test name="Jonas M."`)
	rep := runEnv(t, db, jonas, env, "my data")
	expect(t, rep, "OK: what the network holds about jonas@betahaus.test:")
	all := strings.Join(rep.Results[0].Detail, "\n")
	for _, want := range []string{
		"Memberships:", "betahaus (Berlin): Jonas M. <jonas@betahaus.test> (active)",
		"Checks of you at front desks:", "checked at indyhall (VERIFIED)",
		"Visits you announced:", "visit to indyhall on 2026-12-03 (2 days), announced 2026-11-28",
		"Days used at other spaces:", "indyhall in 2026-11: 1 day\n", "indyhall in 2026-12: 2 days",
		"Changes to your record (when, where, what, by whom):", "betahaus: update name Jonas Müller → Jonas M. by mad@betahaus.test",
		"To have all of it erased, send: forget me",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("my data lacks %q:\n%s", want, all)
		}
	}
	expect(t, runEnv(t, db, nobody, env, "my data"), "OK: the network holds nothing about someone@else.test.")
	all = strings.Join(runEnv(t, db, alex, env, "my data").Results[0].Detail, "\n")
	if !strings.Contains(all, "manager of indyhall since") || !strings.Contains(all, "1 check of visitors") {
		t.Errorf("a manager's data:\n%s", all)
	}
}

// forget me changes nothing until confirmed; confirmed, it erases every
// record of the sender, keeps the history under a pseudonym, and tells
// the managers of the spaces concerned.
func TestForgetMe(t *testing.T) {
	db := visaNetwork(t, new(3))
	env := visaEnv(testNow)
	runEnv(t, db, jonas, env, "visit indyhall 2026-12-03 days=2")
	runEnv(t, db, alex, env, "verify jonas@betahaus.test")
	runEnv(t, db, mad, env, `update member jonas@betahaus.test name="Jonas M."`)
	db.Update(func(tx *storage.Tx) error {
		return tx.PutMember(storage.Member{Space: "cantine", Email: "jonas@betahaus.test", Status: "active"})
	})
	rep := runEnv(t, db, jonas, env, "forget me")
	expect(t, rep, "OK: nothing is erased yet: to erase everything the network holds about jonas@betahaus.test, reply with the line: confirm")
	tok := heldToken(t, rep)
	if d := strings.Join(rep.Results[0].Detail, "\n"); !strings.Contains(d, "removed from the rosters of betahaus, cantine") {
		t.Errorf("forget me says:\n%s", d)
	}
	expect(t, runEnv(t, db, jonas, env, "verify x@y.test"), "DENIED") // nothing changed: still a member
	db.View(func(tx *storage.Tx) error {
		if ms, _ := tx.MembershipsOf("jonas@betahaus.test"); len(ms) != 2 {
			t.Errorf("forget me without confirm removed memberships: %+v", ms)
		}
		return nil
	})
	expect(t, runEnv(t, db, mad, env, "confirm "+tok), "DENIED: this token was given to another")
	rep = runEnv(t, db, jonas, env, "confirm "+tok)
	expect(t, rep, "OK: everything the network held about jonas@betahaus.test is erased.")
	d := strings.Join(rep.Results[0].Detail, "\n")
	for _, want := range []string{"removed from the rosters of betahaus, cantine", "1 check of you at front desks deleted.",
		"1 visit deleted.", "3 counted days deleted.", "1 change in the history now names forgotten-"} {
		if !strings.Contains(d, want) {
			t.Errorf("confirm says:\n%s\nwant %q", d, want)
		}
	}
	if strings.Contains(d, "waiting for confirmation") {
		t.Errorf("the used token counts as a dropped change:\n%s", d)
	}
	if len(rep.Notices) != 2 {
		t.Fatalf("notices = %+v", rep.Notices)
	}
	if n := rep.Notices[0]; strings.Join(n.To, ",") != "mad@betahaus.test,multi@x.test" || !strings.Contains(n.Lines[1], "Jonas M. <jonas@betahaus.test>") {
		t.Errorf("betahaus notice = %+v", n)
	}
	if n := rep.Notices[1]; n.Language != "fr" || strings.Join(n.To, ",") != "gil@cantine.test" {
		t.Errorf("cantine notice = %+v", n)
	}
	var pseudo string
	db.View(func(tx *storage.Tx) error {
		pseudo = tx.Pseudonym("jonas@betahaus.test")
		if ms, _ := tx.MembershipsOf("jonas@betahaus.test"); len(ms) != 0 {
			t.Errorf("memberships left: %+v", ms)
		}
		h, _ := tx.History("betahaus", pseudo)
		if len(h) != 2 || h[0].Action != "update" || h[1].Action != "forget" || h[1].Actor != pseudo {
			t.Errorf("history under the pseudonym = %+v", h)
		}
		tx.Changes(0, func(c storage.Change) bool {
			if strings.Contains(c.Actor+c.Key+string(c.Before)+string(c.After), "jonas@") {
				t.Errorf("audit record %d still names the address: %+v", c.Seq, c)
			}
			return true
		})
		return nil
	})
	expect(t, runEnv(t, db, jonas, env, "my data", "confirm "+tok), "OK: the network holds nothing about jonas@betahaus.test.",
		"ERROR: nothing is waiting for confirmation")
	expect(t, runEnv(t, db, alex, env, "verify jonas@betahaus.test"), "NOT VERIFIED")
}

// A roster neither confirmed nor changed for twice roster_confirm_days is
// pointed out to hosts who verify its members; confirm roster clears it.
func TestRosterFreshness(t *testing.T) {
	db := visaNetwork(t, nil)
	// betahaus was created (zero time) and its roster changed never: stale.
	env := visaEnv(testNow)
	db.Update(func(tx *storage.Tx) error {
		sp, _, _ := tx.Space("betahaus")
		sp.Created = testNow.AddDate(0, 0, -200)
		return tx.PutSpace(sp)
	})
	expect(t, runEnv(t, db, alex, env, "verify jonas@betahaus.test"),
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin), roster not confirmed since 2026-05-12.")
	expect(t, runEnv(t, db, jonas, env, "confirm roster"), "DENIED")
	expect(t, runEnv(t, db, multi, env, "confirm roster", "confirm roster space=betahaus"),
		"ERROR: you manage several spaces", "OK: the roster of betahaus (3 members) is confirmed as of 2026-11-28; the digest reminds you again after 90 days")
	expect(t, runEnv(t, db, alex, env, "verify jonas@betahaus.test"),
		"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin).")
	expect(t, runEnv(t, db, alex, visaEnv(testNow.AddDate(0, 0, 181)), "verify jonas@betahaus.test"),
		"VERIFIED: roster not confirmed since 2026-11-28.")
}
