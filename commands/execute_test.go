package commands

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

var testNow = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

// network is a store with two spaces, their managers and a member each.
func network(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *storage.Tx) error {
		for _, s := range []storage.Space{{ID: "indyhall", Name: "Indy Hall", City: "Philadelphia", Country: "US"},
			{ID: "betahaus", Name: "betahaus", City: "Berlin"}} {
			if err := tx.PutSpace(s); err != nil {
				return err
			}
		}
		tx.AddManager(storage.Manager{Email: "alex@indyhall.test", Space: "indyhall"})
		tx.AddManager(storage.Manager{Email: "mad@betahaus.test", Space: "betahaus"})
		tx.AddManager(storage.Manager{Email: "multi@x.test", Space: "indyhall"})
		tx.AddManager(storage.Manager{Email: "multi@x.test", Space: "betahaus"})
		tx.PutMember(storage.Member{Space: "betahaus", Email: "jonas@betahaus.test", Name: "Jonas Müller", Status: "active"})
		tx.PutMember(storage.Member{Space: "betahaus", Email: "old@betahaus.test", Name: "Old", Status: "active", Until: "2026-11-27"})
		tx.PutMember(storage.Member{Space: "betahaus", Email: "off@betahaus.test", Status: "inactive"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// run executes the lines as actor and returns the results.
func run(t *testing.T, db *storage.DB, actor Actor, lines ...string) Report {
	t.Helper()
	var rep Report
	err := db.Update(func(tx *storage.Tx) error {
		var err error
		rep, err = Execute(tx, actor, Env{Now: testNow, MessageID: "m1@test"}, Parse("", lines, 100))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func expect(t *testing.T, rep Report, want ...string) {
	t.Helper()
	if len(rep.Results) != len(want) {
		t.Fatalf("got %d results %+v, want %d", len(rep.Results), rep.Results, len(want))
	}
	for i, w := range want {
		status, text, _ := strings.Cut(w, ": ")
		r := rep.Results[i]
		if string(r.Status) != status || !strings.Contains(r.Text, text) {
			t.Errorf("result %d = %s: %s, want %s: …%s…", i, r.Status, r.Text, status, text)
		}
	}
}

var (
	alex   = Actor{Address: "alex@indyhall.test"}
	mad    = Actor{Address: "mad@betahaus.test"}
	multi  = Actor{Address: "multi@x.test"}
	admin  = Actor{Address: "admin@visa.test", Admin: true}
	nobody = Actor{Address: "someone@else.test"}
)

func TestVerify(t *testing.T) {
	db := network(t)
	rep := run(t, db, alex,
		"verify jonas@betahaus.test",
		"verify JONAS@BETAHAUS.TEST",
		"verify old@betahaus.test",
		"verify off@betahaus.test",
		"verify nobody@nowhere.test")
	expect(t, rep,
		"VERIFIED: Jonas Müller, a member of betahaus (Berlin)",
		"VERIFIED: jonas@betahaus.test",
		"NOT VERIFIED: not an active member of a participating space",
		"NOT VERIFIED: not an active member of a participating space",
		"NOT VERIFIED: not an active member of a participating space")
	// An expired, an inactive and an unknown address read the same to a host.
	if rep.Results[2].Text != strings.Replace(rep.Results[4].Text, "nobody@nowhere.test", "old@betahaus.test", 1) {
		t.Errorf("expired and unknown differ: %q vs %q", rep.Results[2].Text, rep.Results[4].Text)
	}
	n := 0
	db.View(func(tx *storage.Tx) error {
		return tx.Verifications(0, func(v storage.Verification) bool {
			n++
			if v.Host != "alex@indyhall.test" || v.HostSpace != "indyhall" {
				t.Errorf("verification %+v lacks host", v)
			}
			return true
		})
	})
	if n != 5 {
		t.Errorf("%d verifications recorded, want 5", n)
	}
	expect(t, run(t, db, nobody, "verify jonas@betahaus.test"), "DENIED: only space managers")
	expect(t, run(t, db, admin, "verify jonas@betahaus.test"), "VERIFIED: betahaus")
}

func TestVerifyShowsEndDate(t *testing.T) {
	db := network(t)
	run(t, db, mad, "add member zoe@betahaus.test name=\"Zoë Schmidt\" until=2027-06-30")
	expect(t, run(t, db, alex, "verify zoe@betahaus.test"), "VERIFIED: Zoë Schmidt, a member of betahaus (Berlin), until 2027-06-30")
}

func TestMemberLifecycle(t *testing.T) {
	db := network(t)
	expect(t, run(t, db, alex,
		`add member alice@example.org name="Alice Smith"`,
		"add member Bob Jones <bob@example.org> status=inactive",
		"add member alice@example.org",
		"update member alice@example.org until=2027-03-31 name=\"Alice B. Smith\"",
		"update member alice@example.org email=alice@new.example.org",
		"update member alice@example.org status=inactive",
		"remove member bob@example.org",
		"remove member bob@example.org",
		"update member alice@new.example.org",
	),
		"OK: added Alice Smith <alice@example.org> (active) to indyhall",
		"OK: added Bob Jones <bob@example.org> (inactive)",
		"ERROR: already a member of indyhall",
		"OK: updated name, end date of alice@example.org",
		"OK: updated address of alice@example.org",
		"ERROR: alice@example.org is not a member of indyhall",
		"OK: removed bob@example.org from indyhall",
		"ERROR: bob@example.org is not a member of indyhall",
		"ERROR: needs something to change",
	)
	db.View(func(tx *storage.Tx) error {
		m, ok, _ := tx.Member("indyhall", "alice@new.example.org")
		if !ok || m.Name != "Alice B. Smith" || m.Until != "2027-03-31" || m.Status != "active" {
			t.Errorf("member after updates = %+v", m)
		}
		if _, ok, _ := tx.Member("indyhall", "alice@example.org"); ok {
			t.Error("old address still present after rename")
		}
		if of, _ := tx.MembershipsOf("alice@example.org"); len(of) != 0 {
			t.Errorf("old address still indexed: %+v", of)
		}
		var actions []string
		tx.Changes(0, func(c storage.Change) bool {
			if c.Actor != "alex@indyhall.test" || c.MessageID != "m1@test" || !c.At.Equal(testNow) {
				t.Errorf("audit record lacks who/when/which message: %+v", c)
			}
			actions = append(actions, c.Action+" "+c.Key)
			return true
		})
		want := "add alice@example.org,add bob@example.org,update alice@example.org,update alice@example.org,remove bob@example.org"
		if strings.Join(actions, ",") != want {
			t.Errorf("audit = %v, want %s", actions, want)
		}
		return nil
	})
	rep := run(t, db, alex, "history alice@example.org")
	expect(t, rep, "OK: 3 changes")
	rep = run(t, db, alex, "history alice@new.example.org")
	expect(t, rep, "OK: 3 changes") // its history before the rename comes along
}

func TestSpaceRules(t *testing.T) {
	db := network(t)
	// The error itself says how to name the space, with the line to send.
	expect(t, run(t, db, multi, "- add member a@example.org."), "ERROR: you manage several spaces (betahaus, indyhall): "+
		"say which by adding space=ID to the line, for example: - add member a@example.org space=betahaus")
	expect(t, run(t, db, multi, "add member a@example.org space=betahaus"), "OK: added a@example.org (active) to betahaus")
	expect(t, run(t, db, alex, "add member a@example.org space=betahaus"), "DENIED: you are not a manager of space betahaus")
	expect(t, run(t, db, alex, "remove member jonas@betahaus.test"), "ERROR: jonas@betahaus.test is not a member of indyhall")
	expect(t, run(t, db, nobody, "add member a@example.org"), "DENIED: someone@else.test is not a manager of any space")
	expect(t, run(t, db, admin, "add member a@example.org"), "ERROR: as an admin, name the space with space=ID, "+
		"for example: add member a@example.org space=indyhall")
	expect(t, run(t, db, admin, "add member b@example.org space=indyhall"), "OK: added b@example.org")
	expect(t, run(t, db, admin, "add member b@example.org space=nowhere"), "ERROR: there is no space nowhere")
}

func TestAdminCommands(t *testing.T) {
	db := network(t)
	expect(t, run(t, db, alex, `add space cantine name="La Cantine"`, "list spaces", "add manager x@y.test space=indyhall"),
		"DENIED: for network admins only", "DENIED: for network admins only", "DENIED: for network admins only")
	expect(t, run(t, db, admin,
		`add space cantine name="La Cantine" city=Paris country=FR tz=Europe/Paris`,
		`add space cantine name="Again"`,
		"update space cantine city=Lyon",
		"update space cantine city=Lyon",
		"update space nowhere city=X",
		"add manager camille@cantine.test space=cantine",
		"add manager camille@cantine.test space=cantine",
		"add manager camille@cantine.test space=nowhere",
		"list spaces",
		"remove space betahaus",
		"remove manager camille@cantine.test space=cantine",
		"remove manager camille@cantine.test space=cantine",
		"add manager camille@cantine.test space=cantine",
		"remove space cantine",
	),
		"OK: added space cantine: La Cantine (Paris, FR)",
		"ERROR: space cantine already exists",
		"OK: updated space cantine: La Cantine (Lyon, FR)",
		"OK: space cantine is unchanged",
		"ERROR: there is no space nowhere",
		"OK: camille@cantine.test is now a manager of cantine",
		"OK: already a manager",
		"ERROR: there is no space nowhere",
		"OK: 3 participating spaces",
		"ERROR: space betahaus still has 3 members",
		"OK: camille@cantine.test is no longer a manager of cantine",
		"ERROR: camille@cantine.test is not a manager of cantine",
		"OK: camille@cantine.test is now a manager of cantine",
		"OK: removed space cantine and its 1 manager",
	)
	db.View(func(tx *storage.Tx) error {
		if ms, _ := tx.ManagedSpaces("camille@cantine.test"); len(ms) != 0 {
			t.Errorf("manager of a removed space still manages %v", ms)
		}
		return nil
	})
}

func TestIgnoredLinesAndHelp(t *testing.T) {
	db := network(t)
	rep := run(t, db, alex, "Hi bot,", "verify jonas@betahaus.test", "Cheers, Alex")
	if len(rep.Ignored) != 2 || rep.Ignored[0] != "Hi bot," || rep.Help {
		t.Errorf("Ignored = %q, Help = %v", rep.Ignored, rep.Help)
	}
	rep = run(t, db, alex, "Hello, what can you do?")
	if !rep.Help || len(rep.Results) != 0 {
		t.Errorf("a message without commands: Help = %v, results %v", rep.Help, rep.Results)
	}
	rep = run(t, db, alex, "help")
	expect(t, rep, "OK: the list of commands")
	if !rep.Help {
		t.Error("help did not ask for the help text")
	}
}

// A failing command writes nothing, and the others in the message apply.
func TestFailedCommandWritesNothing(t *testing.T) {
	db := network(t)
	rep := run(t, db, alex, "add member a@example.org", "update member a@example.org email=bad", "add member b@example.org")
	expect(t, rep, "OK: added", "ERROR: not a valid email address", "OK: added")
	db.View(func(tx *storage.Tx) error {
		if n := tx.CountMembers("indyhall"); n != 2 {
			t.Errorf("indyhall has %d members, want 2", n)
		}
		return nil
	})
}

// A word after terms or visit that names no space is prose: the line is
// listed as ignored, and a message of such lines gets the help.
func TestProseNamingNoSpace(t *testing.T) {
	db := network(t)
	rep := run(t, db, alex, "Terms apply.", "Visit us at 399 Market St", "Visit betahaus soon")
	expect(t, rep, "ERROR: \"soon\" is not a valid date")
	if want := []string{"Terms apply.", "Visit us at 399 Market St"}; !reflect.DeepEqual(rep.Ignored, want) {
		t.Errorf("ignored = %q, want %q", rep.Ignored, want)
	}
	if rep.Help {
		t.Error("a message with a command gets the help")
	}
	var commands int
	for _, it := range rep.Items {
		if it.Command != nil {
			commands++
		}
	}
	if commands != len(rep.Results) {
		t.Errorf("%d command items for %d results", commands, len(rep.Results))
	}
	if rep := run(t, db, alex, "Hello,", "Terms apply."); len(rep.Results) != 0 || !rep.Help {
		t.Errorf("prose only: %d results, help %v; want none, and the help", len(rep.Results), rep.Help)
	}
}

// A sender who may not act learns whom to ask: bot.contact, an address or
// a sentence, or no one in particular when there is none.
func TestRefusalsNameTheContact(t *testing.T) {
	db := network(t)
	var rep Report
	for _, contact := range []string{"", "visa-team@example.org", "the Visa team, +49 30 1234567"} {
		err := db.Update(func(tx *storage.Tx) error {
			var err error
			rep, err = Execute(tx, nobody, Env{Now: testNow, MessageID: "m1@test", Contact: contact},
				Parse("", []string{"add member a@example.org", "verify jonas@betahaus.test", "add space x name=X", "spaces"}, 100))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		ask := "ask the network's admins."
		if contact != "" {
			ask = "ask the network's admins (" + contact + ")."
		}
		expect(t, rep,
			"DENIED: someone@else.test is not a manager of any space; to manage one, "+ask,
			"DENIED: only space managers may verify visitors; to become one, "+ask,
			"DENIED: add space is for network admins only; to have it done, "+ask,
			"DENIED: spaces is for members and managers of participating spaces: if you are a member of one, ask its managers "+
				"to add someone@else.test to its roster; for anything else, "+ask)
	}
}

// A manager an admin adds is welcomed, in their space's language, with
// what they can do, examples and whom to ask; adding them again is no news.
func TestWelcomeNewManager(t *testing.T) {
	db := network(t)
	env := Env{Now: testNow, MessageID: "m1@test", Contact: "admin@visa.test"}
	var rep Report
	add := func(lines ...string) {
		t.Helper()
		err := db.Update(func(tx *storage.Tx) error {
			var err error
			rep, err = Execute(tx, admin, env, Parse("", lines, 100))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add(`add space cantine name="La Cantine" city=Paris country=FR language=fr`, "add manager camille@cantine.test space=cantine")
	expect(t, rep, "OK: added space cantine", "OK: camille@cantine.test is now a manager of cantine.")
	if len(rep.Notices) != 1 {
		t.Fatalf("%d notices, want the welcome", len(rep.Notices))
	}
	n := rep.Notices[0]
	text := strings.Join(n.Lines, "\n")
	if n.To[0] != "camille@cantine.test" || n.Language != "fr" || n.Subject != "Bienvenue : vous gérez désormais cantine" ||
		!strings.Contains(text, "admin@visa.test vous a nommé responsable de La Cantine (Paris, FR)") ||
		!strings.Contains(text, "  verify visitor@example.org") || !strings.Contains(text, "Adressez-vous à admin@visa.test") {
		t.Errorf("welcome = %+v\n%s", n, text)
	}
	if d := strings.Join(rep.Results[1].Detail, " "); !strings.Contains(d, "welcome") {
		t.Errorf("the admin is not told of the welcome: %q", d)
	}
	add("add manager camille@cantine.test space=cantine")
	if len(rep.Notices) != 0 {
		t.Errorf("a manager added twice is welcomed twice: %+v", rep.Notices)
	}
}

// Onboarding a space: the OK confirms its time zone and digest slot and
// says the next step; a city or a country's name gets the value it means.
func TestOnboardingASpace(t *testing.T) {
	db := network(t)
	env := Env{Now: testNow, MessageID: "m1@test", DefaultTZ: time.UTC, DigestDay: "monday", DigestTime: "08:00"}
	runAdmin := func(lines ...string) Report {
		t.Helper()
		return runEnv(t, db, admin, env, lines...)
	}
	expect(t, runAdmin(`add space tokyo name="Tokyo Hub" tz=Tokyo`, `add space tokyo name="Tokyo Hub" country=Japan`,
		`add space tokyo name="Tokyo Hub" country=Atlantis`),
		"ERROR: \"Tokyo\" is not a time zone name; did you mean tz=Asia/Tokyo?",
		"ERROR: \"Japan\" is not a two-letter country code (ISO 3166); did you mean country=JP?",
		"ERROR: \"Atlantis\" is not a two-letter country code (ISO 3166), such as DE, FR or US.")
	rep := runAdmin(`add space tokyo name="Tokyo Hub" city=Tokyo country=jp tz=Asia/Tokyo`, `add space nozone name="No Zone"`,
		"update space tokyo digest_day=friday digest_time=17:00", "update space tokyo city=Shibuya")
	expect(t, rep, "OK: added space tokyo: Tokyo Hub (Tokyo, JP).", "OK: added space nozone: No Zone.",
		"OK: updated space tokyo", "OK: updated space tokyo")
	for i, want := range [][]string{
		{"time zone: Asia/Tokyo", "weekly digest to its managers: Mon at 08:00, Asia/Tokyo time",
			"Next: add its managers, who keep its roster: add manager EMAIL space=tokyo"},
		{"time zone: UTC, the network's default (to set its own: update space nozone tz=Area/City)",
			"weekly digest to its managers: Mon at 08:00, UTC time", "Next: add its managers"},
		{"time zone: Asia/Tokyo", "weekly digest to its managers: Fri at 17:00, Asia/Tokyo time"},
		nil, // no change of zone or slot: nothing to repeat
	} {
		got := rep.Results[i].Detail
		if len(got) != len(want) {
			t.Errorf("result %d: %q, want %q", i, got, want)
			continue
		}
		for j := range want {
			if !strings.HasPrefix(got[j], want[j]) {
				t.Errorf("result %d line %d = %q, want %q", i, j, got[j], want[j])
			}
		}
	}
}

// Removing the last manager of a space that has members asks for confirm:
// without one, nobody keeps its roster or reads its digest.
func TestRemoveLastManager(t *testing.T) {
	db := network(t)
	expect(t, run(t, db, admin, `add space cantine name="La Cantine"`, "add manager camille@cantine.test space=cantine",
		"add manager claire@cantine.test space=cantine", "remove manager claire@cantine.test space=cantine",
		"add member zoe@cantine.test space=cantine", "remove manager camille@cantine.test space=cantine"),
		"OK: added space", "OK: camille@cantine.test is now a manager", "OK: claire@cantine.test is now a manager",
		"OK: claire@cantine.test is no longer a manager of cantine.", "OK: added zoe@cantine.test",
		"OK: camille@cantine.test is the last manager of cantine, which has 1 member: without a manager, nobody keeps its roster")
	rep := run(t, db, admin, "list spaces")
	if d := strings.Join(rep.Results[0].Detail, "\n"); !strings.Contains(d, "managers camille@cantine.test") {
		t.Errorf("the last manager is gone before confirm:\n%s", d)
	}
	held := run(t, db, admin, "remove manager camille@cantine.test space=cantine").Results[0].Text
	tok := held[strings.LastIndex(held, "confirm ")+len("confirm "):]
	expect(t, run(t, db, alex, "confirm "+tok), "DENIED: this token was given to another manager")
	expect(t, run(t, db, admin, "confirm "+tok), "OK: camille@cantine.test is no longer a manager of cantine.")
	expect(t, run(t, db, admin, "confirm "+tok), "ERROR: nothing is waiting for confirmation")
	// A space without members loses its last manager at once.
	expect(t, run(t, db, admin, `add space empty name="Empty"`, "add manager e@empty.test space=empty",
		"remove manager e@empty.test space=empty"), "OK: added space", "OK: e@empty.test is now a manager",
		"OK: e@empty.test is no longer a manager of empty.")
}
