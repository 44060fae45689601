package commands

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
)

// defaultLimits are the command limits of config.Default(), as the daemon
// hands them to Execute.
func defaultLimits() Limits {
	l := config.Default().Limits
	return Limits{MaxImportBytes: l.ImportMaxBytes, MaxImportRows: l.ImportMaxRows, ConfirmRemovals: l.ConfirmRemovals}
}

// withDefaults is env with the default limits.
func withDefaults(env Env) Env {
	env.Limits = defaultLimits()
	return env
}

// seedMany gives indyhall n active members, m00@example.org on, on its
// roster for a month.
func seedMany(t *testing.T, db *storage.DB, n int) {
	t.Helper()
	err := db.Update(func(tx *storage.Tx) error {
		for i := range n {
			m := storage.Member{Space: "indyhall", Email: fmt.Sprintf("m%02d@example.org", i), Name: fmt.Sprintf("Member %02d", i),
				Status: storage.StatusActive, Added: testNow.Add(-30 * 24 * time.Hour), Updated: testNow.Add(-30 * 24 * time.Hour)}
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lines makes one line per member mNN@example.org, i from..to-1.
func lines(from, to int, format string) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strings.ReplaceAll(format, "NN", fmt.Sprintf("%02d", i)))
	}
	return out
}

// heldToken finds the token a report hands out for held changes.
func heldToken(t *testing.T, rep Report) string {
	t.Helper()
	for _, r := range rep.Results {
		for _, s := range append([]string{r.Text}, r.Detail...) {
			if m := tokenRE.FindStringSubmatch(s); m != nil {
				return m[1]
			}
		}
	}
	var all []string
	for _, r := range rep.Results {
		all = append(all, fmt.Sprintf("%s: %s %q", r.Status, r.Text, r.Detail))
	}
	t.Fatalf("no confirmation token in the reply:\n%s", strings.Join(all, "\n"))
	return ""
}

// count returns how many members of indyhall match.
func count(t *testing.T, db *storage.DB, match func(storage.Member) bool) int {
	t.Helper()
	n := 0
	db.View(func(tx *storage.Tx) error {
		ms, err := tx.Members("indyhall")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if match(m) {
				n++
			}
		}
		return nil
	})
	return n
}

func inactive(m storage.Member) bool { return !m.ActiveOn(testNow.Format("2006-01-02")) }
func renamed(m storage.Member) bool  { return strings.HasSuffix(m.Email, "@renamed.example.org") }

// Each way of wiping a roster in one message is held for a token, and the
// token applies it. The roster has 25 members; the limit is the default 20.
func TestBulkDestructiveChangesNeedAToken(t *testing.T) {
	const n = 25
	importAll := "email,status\n" + strings.Join(lines(0, n, "mNN@example.org,inactive"), "\n") + "\n"
	for _, c := range []struct {
		name  string
		env   Env
		lines []string
		done  func(storage.Member) bool // what each member is like once confirmed
	}{
		{"import without replace, everyone inactive", withCSV("roster.csv", importAll), []string{"import members"}, inactive},
		{"update lines, status=inactive", Env{}, lines(0, n, "update member mNN@example.org status=inactive"), inactive},
		{"update lines, until yesterday", Env{}, lines(0, n, "update member mNN@example.org until=2026-11-27"), inactive},
		{"update lines, renames", Env{}, lines(0, n, "update member mNN@example.org email=mNN@renamed.example.org"), renamed},
		{"remove lines", Env{}, lines(0, n, "remove member mNN@example.org"), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := network(t)
			seedMany(t, db, n)
			// Lines that destroy nothing apply at once, beside the held ones.
			msg := append([]string{`add member new@example.org name="New"`}, c.lines...)
			msg = append(msg, `update member m00@example.org name="Member Zero"`)
			rep := runEnv(t, db, alex, withDefaults(c.env), msg...)
			tok := heldToken(t, rep)
			held := count(t, db, func(m storage.Member) bool { return inactive(m) || renamed(m) })
			if total := count(t, db, func(storage.Member) bool { return true }); total != n+1 || held != 0 {
				t.Fatalf("the held message removed, deactivated or renamed members (%d members, %d changed):\n%s",
					total, held, roster(t, db, "indyhall"))
			}
			if count(t, db, func(m storage.Member) bool { return m.Name == "Member Zero" || m.Name == "New" }) != 2 {
				t.Fatalf("the harmless lines were not applied at once:\n%s", roster(t, db, "indyhall"))
			}
			rep = runEnv(t, db, alex, withDefaults(Env{Now: testNow.Add(time.Hour), MessageID: "m3@test"}), "confirm "+tok)
			expect(t, rep, "OK: ")
			total := count(t, db, func(storage.Member) bool { return true })
			if c.done == nil {
				if total != 1 {
					t.Errorf("after confirm %d members left, want only new@example.org:\n%s", total, roster(t, db, "indyhall"))
				}
				return
			}
			if got := count(t, db, c.done); got != n || total != n+1 {
				t.Errorf("after confirm %d of %d members changed as asked (%d in all):\n%s", got, n, total, roster(t, db, "indyhall"))
			}
			expect(t, runEnv(t, db, alex, Env{}, "confirm "+tok), "ERROR: nothing is waiting")
		})
	}
}

// Up to the limit a message applies at once; an update that ends nothing
// (already inactive, a name) does not count.
func TestDestructiveChangesUpToTheLimitApply(t *testing.T) {
	db := network(t)
	seedMany(t, db, 25)
	rep := runEnv(t, db, alex, withDefaults(Env{}), lines(0, 20, "update member mNN@example.org status=inactive")...)
	for i, r := range rep.Results {
		if r.Status != OK || !strings.HasPrefix(r.Text, "updated status") {
			t.Fatalf("result %d = %s: %s", i, r.Status, r.Text)
		}
	}
	if got := count(t, db, inactive); got != 20 {
		t.Fatalf("%d inactive, want 20", got)
	}
	// The day's budget is spent: the same lines again change nothing and
	// so need no token; a name change neither.
	again := append(lines(0, 20, "update member mNN@example.org status=inactive"), `update member m21@example.org name="X"`)
	rep = runEnv(t, db, alex, withDefaults(Env{Now: testNow.Add(time.Minute)}), again...)
	for i, r := range rep.Results {
		if r.Status != OK || tokenRE.MatchString(strings.Join(append([]string{r.Text}, r.Detail...), " ")) {
			t.Fatalf("result %d = %s: %s %q", i, r.Status, r.Text, r.Detail)
		}
	}
}

// Splitting a wipe over several mails does not escape the limit: changes
// add up per space over a rolling day, confirmed ones included.
func TestRollingDay(t *testing.T) {
	db := network(t)
	seedMany(t, db, 60)
	at := func(d time.Duration, id string) Env { return withDefaults(Env{Now: testNow.Add(d), MessageID: id}) }

	// 15 now: applied.
	expect(t, runEnv(t, db, alex, at(0, "a@test"), "update member m00@example.org status=inactive"), "OK: updated status")
	rep := runEnv(t, db, alex, at(time.Minute, "b@test"), lines(1, 15, "remove member mNN@example.org")...)
	expect(t, rep, strings.Split(strings.Repeat("OK: removed,", 14), ",")[:14]...)
	// 10 more within the day: 25 > 20, held, though 10 alone would not be.
	rep = runEnv(t, db, alex, at(23*time.Hour, "c@test"), lines(15, 25, "update member mNN@example.org email=mNN@renamed.example.org")...)
	tok := heldToken(t, rep)
	if got := count(t, db, renamed); got != 0 {
		t.Fatalf("%d renamed before the confirmation", got)
	}
	d := rep.Results[0].Detail
	if len(d) < 3 || !strings.Contains(d[0], "10 changes") || !strings.Contains(d[0], "15 were made in the last 24 hours") ||
		!strings.Contains(d[0], "more than 20") {
		t.Errorf("why it is held: %q", d)
	}
	// Confirmed at 23:30, they count toward the day from then.
	expect(t, runEnv(t, db, alex, at(23*time.Hour+30*time.Minute, "d@test"), "confirm "+tok), "OK: ")
	if got := count(t, db, renamed); got != 10 {
		t.Fatalf("%d renamed after the confirmation, want 10", got)
	}
	// At 24:00 the first 15 aged out (a change exactly a day old no longer
	// counts), the 10 confirmed remain: 10 + 10 = 20 apply.
	rep = runEnv(t, db, alex, at(24*time.Hour+time.Minute, "e@test"), lines(25, 35, "remove member mNN@example.org")...)
	for i, r := range rep.Results {
		if r.Status != OK || !strings.HasPrefix(r.Text, "removed") {
			t.Fatalf("result %d = %s: %s %q", i, r.Status, r.Text, r.Detail)
		}
	}
	// One more within the day of those is one too many.
	rep = runEnv(t, db, alex, at(24*time.Hour+2*time.Minute, "f@test"), "remove member m35@example.org")
	heldToken(t, rep)
	expect(t, rep, "OK: m35@example.org will be removed from indyhall when you confirm")
	// A day after the confirmed and the applied ones, it goes through.
	rep = runEnv(t, db, alex, at(48*time.Hour+2*time.Minute, "g@test"), "remove member m36@example.org")
	expect(t, rep, "OK: removed m36@example.org")
}

// A held change is checked again when confirmed: what changed meanwhile is
// reported, not forced.
func TestConfirmChecksHeldChangesAgain(t *testing.T) {
	db := network(t)
	seedMany(t, db, 22)
	msg := append(lines(0, 20, "update member mNN@example.org status=inactive"),
		"update member m20@example.org email=taken@example.org", "update member m21@example.org email=free@example.org")
	tok := heldToken(t, runEnv(t, db, alex, withDefaults(Env{}), msg...))
	expect(t, run(t, db, alex, "add member taken@example.org", "remove member m05@example.org"), "OK: added", "OK: removed")
	rep := runEnv(t, db, alex, withDefaults(Env{Now: testNow.Add(time.Hour)}), "confirm "+tok)
	expect(t, rep, "OK: ")
	detail := strings.Join(rep.Results[0].Detail, "\n")
	for _, want := range []string{"m05@example.org was no longer a member of indyhall", "taken@example.org is already a member of indyhall"} {
		if !strings.Contains(detail, want) {
			t.Errorf("confirm detail lacks %q:\n%s", want, detail)
		}
	}
	if got := count(t, db, inactive); got != 19 {
		t.Errorf("%d inactive after confirm, want 19", got)
	}
	db.View(func(tx *storage.Tx) error {
		if _, ok, _ := tx.Member("indyhall", "free@example.org"); !ok {
			t.Error("the free rename was not applied")
		}
		if _, ok, _ := tx.Member("indyhall", "m20@example.org"); !ok {
			t.Error("m20 was renamed onto an address taken meanwhile")
		}
		return nil
	})
}

// 50 list lines make one roster file, not 50.
func TestListMembersAttachesOneFile(t *testing.T) {
	db := network(t)
	seedMany(t, db, 30)
	msg := append(lines(0, 50, "list members"), "list members status=inactive")
	rep := run(t, db, alex, msg...)
	files := 0
	for i, r := range rep.Results {
		files += len(r.Files)
		if r.Status != OK {
			t.Errorf("result %d = %s: %s", i, r.Status, r.Text)
		}
	}
	if files != 1 || len(rep.Results[0].Files) != 1 {
		t.Fatalf("%d files in the reply, want one, on the first list", files)
	}
	if r := rep.Results[1]; len(r.Detail) != 0 || !strings.Contains(r.Text, "attached once") {
		t.Errorf("a repeated list = %s %q", r.Text, r.Detail)
	}
	if r := rep.Results[50]; !strings.Contains(r.Text, "0 inactive") || !strings.Contains(r.Text, "message of its own") {
		t.Errorf("another list = %s %q", r.Text, r.Detail)
	}
}

// 50 replace lines with one file make one pending change and store the
// file once.
func TestOneReplacePerMessage(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	file := "email,name\nann@example.org,Ann Lee\n"
	rep := runEnv(t, db, alex, withCSV("roster.csv", file), lines(0, 50, "import members replace")...)
	if r := rep.Results[0]; r.Status != OK || !strings.HasPrefix(r.Text, "roster.csv would replace the roster of indyhall") {
		t.Errorf("the first replace = %s: %s", r.Status, r.Text)
	}
	for i, r := range rep.Results[1:] {
		if r.Status != Error || !strings.Contains(r.Text, "once") {
			t.Errorf("line %d = %s: %s", i+2, r.Status, r.Text)
		}
	}
	db.View(func(tx *storage.Tx) error {
		ps, err := tx.PendingOf(alex.Address)
		if err != nil || len(ps) != 1 {
			t.Errorf("pending = %d, %v; want 1", len(ps), err)
		}
		if files, size := tx.PendingFileStats(); files != 1 || size != int64(len(file)) {
			t.Errorf("stored files = %d of %d bytes, want 1 of %d", files, size, len(file))
		}
		for _, p := range ps {
			if strings.Contains(string(p.Payload), "QW5u") || len(p.Payload) > 1024 {
				t.Errorf("the file is inside the pending record: %s", p.Payload)
			}
		}
		return nil
	})
	// A plain import line after a replace is refused too: one file, one import.
	rep = runEnv(t, db, alex, withCSV("roster.csv", file), "import members", "import members")
	expect(t, rep, "OK: imported roster.csv", "ERROR: ")
	tok := tokenIn(t, runEnv(t, db, alex, withCSV("roster.csv", file), "import members replace").Results[0])
	db.View(func(tx *storage.Tx) error {
		if files, _ := tx.PendingFileStats(); files != 1 {
			t.Errorf("the same file twice is stored %d times", files)
		}
		return nil
	})
	expect(t, runEnv(t, db, alex, Env{}, "confirm "+tok), "OK: imported roster.csv into indyhall, replacing its roster")
	db.View(func(tx *storage.Tx) error {
		if files, _ := tx.PendingFileStats(); files != 1 {
			t.Errorf("files after one of two confirmations = %d, want 1 (still referenced)", files)
		}
		return nil
	})
}

// A manager holds at most maxPendingPerManager changes: a new one drops the
// oldest, and says so.
func TestPendingBound(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	var toks []string
	var last Report
	for i := range maxPendingPerManager + 2 {
		file := fmt.Sprintf("email,name\nann@example.org,Ann %d\n", i)
		last = runEnv(t, db, alex, Env{Now: testNow.Add(time.Duration(i) * time.Minute), Attachments: withCSV("r.csv", file).Attachments},
			"import members replace")
		toks = append(toks, tokenIn(t, last.Results[0]))
	}
	if d := strings.Join(last.Results[0].Detail, "\n"); !strings.Contains(d, toks[1]) || !strings.Contains(d, "dropped") {
		t.Errorf("the reply does not say the oldest was dropped:\n%s", d)
	}
	db.View(func(tx *storage.Tx) error {
		ps, _ := tx.PendingOf(alex.Address)
		if len(ps) != maxPendingPerManager {
			t.Errorf("%d pending, want %d", len(ps), maxPendingPerManager)
		}
		if files, _ := tx.PendingFileStats(); files != maxPendingPerManager {
			t.Errorf("%d files kept, want %d (a dropped change's file goes with it)", files, maxPendingPerManager)
		}
		return nil
	})
	expect(t, runEnv(t, db, alex, Env{}, "confirm "+toks[0]), "ERROR: nothing is waiting")
	expect(t, runEnv(t, db, alex, Env{}, "confirm "+toks[len(toks)-1]), "OK: imported r.csv")
	// Another manager's bound is their own.
	expect(t, runEnv(t, db, mad, withCSV("r.csv", "email\njonas@betahaus.test\n"), "import members replace"), "OK: r.csv would replace")
}

// An address already active in another space, added here, is marked on the
// audit record, for that space's digest.
func TestCrossSpaceAddIsRecorded(t *testing.T) {
	db := network(t)
	expect(t, run(t, db, alex, "add member jonas@betahaus.test", "add member fresh@example.org"), "OK: added", "OK: added")
	expect(t, runEnv(t, db, alex, withCSV("r.csv", "email\nold@betahaus.test\noff@betahaus.test\nfresh2@example.org\n"), "import members"),
		"OK: imported")
	expect(t, run(t, db, alex, "update member fresh@example.org email=plain@example.org"), "OK: updated address")
	run(t, db, mad, "add member jonas3@betahaus.test")
	expect(t, run(t, db, alex, "update member fresh2@example.org email=jonas3@betahaus.test"), "OK: updated address")
	got := map[string][]string{}
	db.View(func(tx *storage.Tx) error {
		return tx.Changes(0, func(c storage.Change) bool {
			if c.Space == "indyhall" {
				got[c.Action+" "+c.Key] = c.ActiveElsewhere
			}
			return true
		})
	})
	want := map[string]string{
		"add jonas@betahaus.test":   "betahaus",
		"add fresh@example.org":     "",
		"add old@betahaus.test":     "", // its membership there ended yesterday
		"add off@betahaus.test":     "", // inactive there
		"add fresh2@example.org":    "",
		"update fresh@example.org":  "",
		"update fresh2@example.org": "betahaus",
	}
	for k, w := range want {
		if g := strings.Join(got[k], ","); g != w {
			t.Errorf("%s: active elsewhere = %q, want %q", k, g, w)
		}
	}
}

// A verification names every space where the visitor is active.
func TestVerifyRecordsEveryHomeSpace(t *testing.T) {
	db := network(t)
	run(t, db, admin, "add member jonas@betahaus.test space=indyhall")
	run(t, db, admin, "verify jonas@betahaus.test")
	db.View(func(tx *storage.Tx) error {
		return tx.Verifications(0, func(v storage.Verification) bool {
			if strings.Join(v.HomeSpaces, ",") != "betahaus,indyhall" || strings.Join(v.Homes(), ",") != "betahaus,indyhall" {
				t.Errorf("verification homes = %q / %q", v.HomeSpaces, v.Homes())
			}
			return true
		})
	})
}

// Pending changes written before held changes and stored files existed
// (kind "remove" with its removals, a replace with its file inline) are
// still confirmed.
func TestConfirmOlderPendingRecords(t *testing.T) {
	db := network(t)
	seedIndyHall(t, db)
	file := "email,name\nann@example.org,Ann Lee\nbob@example.org,Bob Jones\n"
	replace, _ := json.Marshal(replacePayload{File: "old.csv", Data: []byte(file), SHA256: sha256Hex([]byte(file)),
		FileSHA256: sha256Hex([]byte(file)), Removes: []string{"carl@example.org", "dora@example.org"}})
	err := db.Update(func(tx *storage.Tx) error {
		for _, p := range []storage.Pending{
			{Token: "AAAAAAAAAA", Actor: alex.Address, Space: "indyhall", Kind: "remove", Expires: testNow.Add(time.Hour),
				Payload: json.RawMessage(`{"removals":[{"space":"indyhall","email":"carl@example.org"}]}`)},
			{Token: "BBBBBBBBBB", Actor: alex.Address, Space: "indyhall", Kind: "replace", Expires: testNow.Add(time.Hour), Payload: replace},
		} {
			if err := tx.PutPending(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, db, alex, "confirm AAAA-AAAA-AA"), "OK: removed 1 member as you confirmed.")
	expect(t, run(t, db, alex, "confirm BBBB-BBBB-BB"), "OK: imported old.csv into indyhall, replacing its roster: 0 added, 0 updated, 2 unchanged, 1 removed")
	if got := roster(t, db, "indyhall"); got != "ann@example.org|Ann Lee|active|2026-12-15\nbob@example.org|Bob Jones|active|" {
		t.Errorf("roster = %s", got)
	}
}

// Members added within the rolling day may be taken off again without a
// token: that leaves the roster as it was. The established ones still count.
func TestTodaysAdditionsDoNotCount(t *testing.T) {
	db := network(t)
	seedMany(t, db, 25)
	env := withDefaults(Env{})
	for i := range 30 {
		rep := runEnv(t, db, alex, env, fmt.Sprintf("add member new%02d@example.org", i),
			fmt.Sprintf("remove member new%02d@example.org", i), fmt.Sprintf("add member kept%02d@example.org", i),
			fmt.Sprintf("update member kept%02d@example.org status=inactive", i))
		for _, r := range rep.Results {
			if r.Status != OK || strings.Contains(strings.Join(r.Detail, " "), "confirm") {
				t.Fatalf("message %d: %s: %s %q", i, r.Status, r.Text, r.Detail)
			}
		}
	}
	if n := count(t, db, func(m storage.Member) bool { return strings.HasPrefix(m.Email, "new") }); n != 0 {
		t.Errorf("%d of today's additions were not removed", n)
	}
	// After those 60 corrections, the established roster is guarded as
	// before: 21 of its members in one message wait for a token.
	rep := runEnv(t, db, alex, env, lines(0, 21, "remove member mNN@example.org")...)
	heldToken(t, rep)
	if n := count(t, db, func(m storage.Member) bool { return strings.HasPrefix(m.Email, "m") }); n != 25 {
		t.Errorf("%d established members left, want all 25 until confirmed", n)
	}
}
