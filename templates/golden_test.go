package templates_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// Golden files: every kind of mail the bot writes, as text and HTML, in
// English and French, rendered from fixed data into testdata/golden and
// compared with what is there. After a change of wording or layout, run
//
//	go test ./templates -run Golden -update
//
// and read the diff (and the HTML in a browser: TestMailInABrowser).
var update = flag.Bool("update", false, "rewrite testdata/golden (and the docs' screenshots) from what the templates render now")

const goldenDir = "testdata/golden"

// token is a confirmation token as a notice shows it.
var token = regexp.MustCompile(`\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2}\b`)

// mail is one rendered message.
type mail struct {
	name       string // e.g. "reply-transcript.fr"
	text, html string
}

// goldenLanguages are the languages the golden files are rendered in.
var goldenLanguages = []string{"en", "fr"}

// The replies run real commands against a small network, so that their
// sentences are the commands' own.
var goldenNow = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

var (
	alex   = commands.Actor{Address: "alex@indyhall.test"}
	jonas  = commands.Actor{Address: "jonas@betahaus.test"}
	admin  = commands.Actor{Address: "admin@coworkingvisa.test", Admin: true}
	botAdr = "visa@coworkingvisa.test"
)

func goldenNetwork(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *storage.Tx) error {
		for _, s := range []storage.Space{
			{ID: "indyhall", Name: "Indy Hall", City: "Philadelphia", Country: "US", TZ: "America/New_York", Created: goldenNow.AddDate(0, -6, 0)},
			{ID: "betahaus", Name: "betahaus", City: "Berlin", Country: "DE", TZ: "Europe/Berlin", Created: goldenNow.AddDate(0, -6, 0)},
		} {
			if err := tx.PutSpace(s); err != nil {
				return err
			}
		}
		for _, m := range []storage.Manager{{Email: "alex@indyhall.test", Space: "indyhall"}, {Email: "mad@betahaus.test", Space: "betahaus"}} {
			if err := tx.AddManager(m); err != nil {
				return err
			}
		}
		for _, m := range []storage.Member{
			{Space: "betahaus", Email: "jonas@betahaus.test", Name: "Jonas Müller", Status: "active"},
			{Space: "betahaus", Email: "zoe@betahaus.test", Name: "Zoë Schmidt", Status: "active", Until: "2026-12-31"},
			{Space: "indyhall", Email: "beth@indyhall.test", Name: "Beth Kaplan", Status: "active"},
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// execute runs lines as actor, in the language l, as the bot does.
func execute(t *testing.T, db *storage.DB, l *templates.Lang, actor commands.Actor, lines ...string) commands.Report {
	t.Helper()
	var rep commands.Report
	err := db.Update(func(tx *storage.Tx) error {
		var err error
		rep, err = commands.Execute(tx, actor, commands.Env{
			Now: goldenNow, MessageID: "<golden@test>", Printer: l.Printer(), Language: l.Code(),
			Limits: commands.Limits{MaxImportBytes: 1 << 20, MaxImportRows: 1000},
		}, commands.Parse("", lines, 100))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// manager, member and networkAdmin are whom the help of a reply is for.
var (
	manager      = templates.Audience{Manager: true}
	member       = templates.Audience{Member: true}
	networkAdmin = templates.Audience{Admin: true}
)

// reply renders a report to a reader as the bot's answer does
// (mailbot.renderReport).
func reply(t *testing.T, l *templates.Lang, rep commands.Report, lead bool, to commands.Actor, as templates.Audience) (string, string) {
	t.Helper()
	sum := templates.Summary{Total: len(rep.Results), Ignored: len(rep.Ignored)}
	counts := rep.Counts()
	for _, st := range []commands.Status{commands.OK, commands.Verified, commands.NotVerified, commands.Error, commands.Denied} {
		if n := counts[st]; n > 0 {
			sum.Counts = append(sum.Counts, templates.Count{N: n, Status: string(st)})
		}
	}
	summary, err := l.Phrase("summary", sum)
	if err != nil {
		t.Fatal(err)
	}
	r := templates.Reply{BotName: "Coworking Visa", BotAddress: botAdr, Ignored: rep.Ignored, Help: rep.Help,
		Cut: rep.Cut, MaxCmds: 100, Summary: summary, For: as, Sender: to.Address,
		Contact: "admin@coworkingvisa.test", ExampleDate: goldenNow.AddDate(0, 0, 14).Format(time.DateOnly)}
	for _, res := range rep.Results {
		r.Entries = append(r.Entries, templates.Entry{Command: res.Command, Status: string(res.Status), Text: res.Text, Detail: res.Detail})
	}
	if lead && len(rep.Results) > 0 {
		r.Lead = string(rep.Results[0].Status) + ": " + rep.Results[0].Text
	}
	text, html, err := l.Reply(r)
	if err != nil {
		t.Fatal(err)
	}
	return text, html
}

// renderAll renders every kind of mail in every golden language.
func renderAll(t *testing.T) []mail {
	t.Helper()
	var out []mail
	for _, code := range goldenLanguages {
		l := templates.Embedded().In(code)
		db := goldenNetwork(t)
		add := func(name, text, html string) { out = append(out, mail{name + "." + code, text, html}) }

		// A transcript with every status, detail lines and lines that
		// are not commands.
		rep := execute(t, db, l, alex,
			"Hello bot,",
			`add member ann.lee-longaddress@subdomain.example-university.edu name="Ann Lee" until=2026-12-15`,
			"add member somebody-without-an-at-sign",
			"verify jonas@betahaus.test",
			"verify nobody@example.org",
			"remove space betahaus",
			"list members",
			"history ann.lee-longaddress@subdomain.example-university.edu",
			"Best, Alex")
		text, html := reply(t, l, rep, false, alex, manager)
		add("reply-transcript", text, html)

		// A verify at the front desk, the answer first.
		text, html = reply(t, l, execute(t, db, l, alex, "verify zoe@betahaus.test"), true, alex, manager)
		add("reply-verify", text, html)

		// The help, as each kind of sender gets it.
		for _, who := range []struct {
			role  string
			actor commands.Actor
			as    templates.Audience
		}{{"manager", alex, manager}, {"member", jonas, member}, {"admin", admin, networkAdmin}} {
			text, html = reply(t, l, execute(t, db, l, who.actor, "help"), false, who.actor, who.as)
			add("help-"+who.role, text, html)
		}

		// A notice: a member announces a visit; the host's managers are told.
		rep = execute(t, db, l, jonas, `visit indyhall 2026-12-03 days=2 note="Arriving by train around 10."`)
		if len(rep.Notices) == 0 {
			t.Fatalf("%s: the visit sent no notice: %+v", code, rep.Results)
		}
		n := rep.Notices[0]
		lines := make([]string, len(n.Lines))
		for i, line := range n.Lines {
			lines[i] = token.ReplaceAllString(line, "XXXX-XXXX-XX") // drawn at random
		}
		text, html, err := templates.Embedded().In(n.Language).Notice(templates.Notice{BotName: "Coworking Visa", BotAddress: botAdr,
			Text: lines[0], Lines: lines[1:]})
		if err != nil {
			t.Fatal(err)
		}
		add("notice", text, html)

		text, html, err = l.Digest(spaceDigest(l))
		if err != nil {
			t.Fatal(err)
		}
		add("digest", text, html)
		text, html, err = l.NetworkDigest(networkDigest(l))
		if err != nil {
			t.Fatal(err)
		}
		add("network-digest", text, html)
	}
	return out
}

// spaceDigest is a space's digest with every section filled.
func spaceDigest(l *templates.Lang) templates.DigestData {
	ny, _ := time.LoadLocation("America/New_York")
	at := func(s string) string {
		tm, _ := time.Parse(time.RFC3339, s)
		return l.FormatTime(tm.In(ny), "Mon 2 Jan 15:04")
	}
	day := func(s string) string {
		tm, _ := time.Parse(time.DateOnly, s)
		return l.FormatTime(tm, "Mon 2 Jan 2006")
	}
	word := func(s string) string { return templates.StatusWord(l.Printer(), s) }
	weeks := []templates.WeekBar{}
	for i, n := range [][2]int{{1, 0}, {0, 2}, {3, 1}, {2, 2}, {0, 0}, {5, 1}, {4, 3}, {2, 1}} {
		weeks = append(weeks, templates.WeekBar{Week: l.FormatTime(time.Date(2026, 10, 5+7*i, 0, 0, 0, 0, time.UTC), "2 Jan"), Hosted: n[0], Sent: n[1]})
	}
	return templates.DigestData{
		BotName: "Coworking Visa", BotAddress: botAdr, SpaceID: "indyhall", SpaceName: "Indy Hall", Manager: "alex@indyhall.test",
		Title:    l.Sprintf("week of %s", l.FormatTime(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), "2 Jan 2006")),
		From:     l.FormatTime(time.Date(2026, 11, 23, 8, 0, 0, 0, ny), "Mon 2 Jan 2006 15:04 MST"),
		To:       l.FormatTime(time.Date(2026, 11, 30, 8, 0, 0, 0, ny), "Mon 2 Jan 2006 15:04 MST"),
		TimeZone: "America/New_York", Today: day("2026-11-30"), EndingDays: 30,
		Counts: templates.DigestCounts{Total: 6, Active: 4, Inactive: 1, Expired: 1, EndingSoon: 2},
		Members: []templates.DigestMember{
			{Email: "amy@x.test", Name: "Amy Adams", Status: word("active"), State: "active", Until: "2026-12-10", Ends: day("2026-12-10")},
			{Email: "beth@indyhall.test", Name: "Beth Kaplan", Status: word("active"), State: "active"},
			{Email: "cat@x.test", Name: "Cat, the second", Status: word("inactive"), State: "inactive"},
			{Email: "elodie.durand-lefebvre@very-long-company-name.example.com", Name: "Élodie Durand-Lefebvre", Status: word("active"), State: "active", Until: "2026-12-24", Ends: day("2026-12-24")},
			{Email: "zoe@x.test", Name: "Zoë", Status: word("active"), State: "active"},
			{Email: "dan@x.test", Status: word("expired"), State: "expired", Until: "2026-11-01", Ends: day("2026-11-01")},
		},
		EndingSoon: []templates.DigestMember{
			{Email: "amy@x.test", Name: "Amy Adams", Until: "2026-12-10", Ends: day("2026-12-10")},
			{Email: "elodie.durand-lefebvre@very-long-company-name.example.com", Name: "Élodie Durand-Lefebvre", Until: "2026-12-24", Ends: day("2026-12-24")},
		},
		TurnedAway: []templates.DigestTurnedAway{
			{When: at("2026-11-26T12:30:00Z"), Visitor: "dan@x.test", Host: "La Cantine", Status: word("expired")},
			{When: at("2026-11-27T09:00:00Z"), Visitor: "old@x.test", Host: "betahaus"},
		},
		AddedElsewhere: []templates.DigestAdd{{When: at("2026-11-28T10:00:00Z"), Member: "amy@x.test", Space: "La Cantine", Actor: "boss@cantine.test"}},
		RosterStale:    true, RosterVeryStale: true, RosterFresh: day("2026-05-12"), RosterConfirmDays: 90,
		Reciprocity: templates.Reciprocity{Month: "2026-11", Year: "2026", HostedMonth: 11, SentMonth: 5, HostedYear: 64, SentYear: 41},
		Weeks:       weeks, WeeksMost: 5,
		Visitors: []templates.DigestVisitor{
			{Visitor: "jonas@betahaus.test", Name: "Jonas Müller", Where: "betahaus", Visits: 3, Last: at("2026-11-27T14:00:00Z"), Verified: true},
			{Visitor: "zed@x.test", Visits: 1, Last: at("2026-11-27T18:00:00Z")},
		},
		Visiting: []templates.DigestVisitor{
			{Visitor: "amy@x.test", Name: "Amy Adams", Where: "La Cantine, betahaus", Visits: 2, Last: at("2026-11-25T11:00:00Z"), Verified: true},
		},
		HostedCount: 3, NotVerifiedCount: 1, SentCount: 2,
		Changes: []templates.DigestChange{
			{When: at("2026-11-24T15:00:00Z"), Actor: "alex@indyhall.test", Text: l.Sprintf("added member %s", "amy@x.test"), Detail: "Amy Adams, " + word("active") + ", " + l.Sprintf("until %s", "2026-12-10")},
			{When: at("2026-11-25T16:30:00Z"), Actor: "admin@coworkingvisa.test", Text: l.Sprintf("updated member %s", "cat@x.test"),
				Detail: l.Sprintf("%s %s → %s", l.Sprintf("status"), word("active"), word("inactive"))},
		},
		Attachment: "indyhall-roster-2026-11-30.csv",
	}
}

// networkDigest is the admins' digest with every section filled.
func networkDigest(l *templates.Lang) templates.NetworkDigestData {
	at := func(s string) string {
		tm, _ := time.Parse(time.RFC3339, s)
		return l.FormatTime(tm, "Mon 2 Jan 15:04")
	}
	return templates.NetworkDigestData{
		BotName: "Coworking Visa", BotAddress: botAdr, Admin: "admin@coworkingvisa.test",
		Title:    l.Sprintf("week of %s", l.FormatTime(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), "2 Jan 2006")),
		From:     l.FormatTime(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), "Mon 2 Jan 2006 15:04 MST"),
		To:       l.FormatTime(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), "Mon 2 Jan 2006 15:04 MST"),
		TimeZone: "UTC", Year: "2026", StaleDays: 180,
		Spaces: []templates.NetworkSpace{
			{ID: "betahaus", Name: "betahaus", City: "Berlin", Country: "DE", Managers: 1, Members: 2, Active: 2, Changes: 0, Hosted: 1, Sent: 2, HostedYear: 30, SentYear: 41, Balance: -11},
			{ID: "indyhall", Name: "Indy Hall", City: "Philadelphia", Country: "US", Managers: 2, Members: 6, Active: 4, Changes: 2, Hosted: 3, Sent: 2, HostedYear: 64, SentYear: 41, Balance: 23},
			{ID: "kraftwerk-oerlikon", Name: "Kraftwerk Coworking & Makerspace Zürich-Oerlikon", City: "Zürich", Country: "CH", Managers: 1, Members: 1, Active: 1},
		},
		TotalMembers: 9, TotalActive: 7, ChangeCount: 2, VerificationCount: 3, VerifiedCount: 2, NotVerifiedCount: 1,
		Changes: []templates.DigestChange{
			{When: at("2026-11-24T15:00:00Z"), Space: "indyhall", Actor: "alex@indyhall.test", Text: l.Sprintf("added member %s", "amy@x.test")},
			{When: at("2026-11-25T16:30:00Z"), Space: "indyhall", Actor: "admin@coworkingvisa.test", Text: l.Sprintf("updated member %s", "cat@x.test"),
				Detail: l.Sprintf("%s %s → %s", l.Sprintf("status"), templates.StatusWord(l.Printer(), "active"), templates.StatusWord(l.Printer(), "inactive"))},
		},
		Verifications: []templates.DigestVisit{
			{When: at("2026-11-26T18:00:00Z"), Visitor: "jonas@betahaus.test", Home: "betahaus", Host: "Indy Hall", Verified: true},
			{When: at("2026-11-27T18:00:00Z"), Visitor: "zed@x.test", Host: "Indy Hall"},
		},
		Stale: []templates.StaleRoster{{ID: "kraftwerk-oerlikon", Name: "Kraftwerk Coworking & Makerspace Zürich-Oerlikon", Since: l.FormatTime(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC), "Mon 2 Jan 2006")}},
	}
}

// TestGolden compares every rendered mail with its golden files.
func TestGolden(t *testing.T) {
	mails := renderAll(t)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range mails {
		for ext, got := range map[string]string{".txt": m.text, ".html": m.html} {
			path := filepath.Join(goldenDir, m.name+ext)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%v (run go test ./templates -run Golden -update)", err)
				continue
			}
			if string(want) != got {
				t.Errorf("%s differs from what is rendered now (go test ./templates -run Golden -update rewrites it; read the diff):\n%s",
					path, firstDifference(string(want), got))
			}
		}
	}
}

// firstDifference shows where two texts part, with some context.
func firstDifference(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	from := max(0, i-80)
	return "want …" + want[from:min(len(want), i+80)] + "…\ngot  …" + got[from:min(len(got), i+80)] + "…"
}
