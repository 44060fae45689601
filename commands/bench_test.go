package commands_test

// Scale benchmarks of the commands (issue 5) on a generated store of 1M
// members across 10,000 spaces, made once per test binary and only when a
// Benchmark below runs (go test -run '^$' -bench Scale ./commands/). Set
// MAILBOT_BENCH_MEMBERS and MAILBOT_BENCH_SPACES for another size, e.g.
// 5000000 and 45000. Benchmarks print; they never fail on speed.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/storage"
)

var benchStore struct {
	once            sync.Once
	db              *storage.DB
	members, spaces int
	gen             time.Duration
	size            int64
	err             error
}

var benchNow = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func benchScale() (members, spaces int) {
	members, spaces = 1_000_000, 10_000
	if v, err := strconv.Atoi(os.Getenv("MAILBOT_BENCH_MEMBERS")); err == nil && v > 0 {
		members = v
	}
	if v, err := strconv.Atoi(os.Getenv("MAILBOT_BENCH_SPACES")); err == nil && v > 0 {
		spaces = v
	}
	return members, spaces
}

func benchMember(i, spaces int) storage.Member {
	m := storage.Member{Space: fmt.Sprintf("sp%d", i%spaces), Email: fmt.Sprintf("m%d@sp%d.test", i, i%spaces),
		Name: fmt.Sprintf("Member %d", i), Status: storage.StatusActive, Added: benchNow, Updated: benchNow}
	if i%10 == 0 {
		m.Until = "2027-06-30"
	}
	return m
}

// bigStore generates the store once (100k members per transaction), with
// a manager per space, a space "big" of 1,000 members and an empty space
// per import round. The file is unlinked once written; the open DB keeps
// it until the process exits.
func bigStore(b *testing.B) *storage.DB {
	b.Helper()
	s := &benchStore
	s.once.Do(func() {
		s.members, s.spaces = benchScale()
		dir, err := os.MkdirTemp("", "mailbot-bench-")
		if err != nil {
			s.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "visa.db")
		start := time.Now()
		db, err := storage.Open(path)
		if err != nil {
			s.err = err
			return
		}
		err = db.Update(func(tx *storage.Tx) error {
			for k := range s.spaces {
				id := fmt.Sprintf("sp%d", k)
				if err := tx.PutSpace(storage.Space{ID: id, Name: "Space " + id, City: "Berlin", Country: "DE", Created: benchNow, Updated: benchNow}); err != nil {
					return err
				}
				if err := tx.AddManager(storage.Manager{Email: "manager@" + id + ".test", Space: id, Added: benchNow}); err != nil {
					return err
				}
			}
			if err := tx.PutSpace(storage.Space{ID: "big", Name: "Big Space", City: "Lisbon", Country: "PT", Created: benchNow, Updated: benchNow}); err != nil {
				return err
			}
			for i := range 1000 {
				m := benchMember(i, 1)
				m.Space, m.Email = "big", fmt.Sprintf("b%d@big.test", i)
				if err := tx.PutMember(m); err != nil {
					return err
				}
			}
			return nil
		})
		const per = 100_000
		for lo := 0; err == nil && lo < s.members; lo += per {
			err = db.Update(func(tx *storage.Tx) error {
				for i := lo; i < min(lo+per, s.members); i++ {
					if err := tx.PutMember(benchMember(i, s.spaces)); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			db.Close()
			s.err = err
			return
		}
		s.gen = time.Since(start)
		fi, err := os.Stat(path)
		if err != nil {
			db.Close()
			s.err = err
			return
		}
		s.size, s.db = fi.Size(), db
	})
	if s.err != nil {
		b.Fatalf("generating the store: %v", s.err)
	}
	return s.db
}

func reportStore(b *testing.B) {
	b.ReportMetric(float64(benchStore.size)/1e6, "store-MB")
	b.ReportMetric(float64(benchStore.members), "members")
}

func script(lines ...string) commands.Script { return commands.Parse("", lines, 100) }

// BenchmarkScaleVerify runs the verify command as the bot does (lookup,
// home space, verification record), 1,000 per transaction so that the
// figure is the command's and not the fsync's (target ≤ 50 µs).
func BenchmarkScaleVerify(b *testing.B) {
	db := bigStore(b)
	rng := rand.New(rand.NewPCG(1, 2))
	actor := commands.Actor{Address: "manager@sp7.test"}
	b.ResetTimer()
	for done := 0; done < b.N; done += 1000 {
		err := db.Update(func(tx *storage.Tx) error {
			for range min(1000, b.N-done) {
				i := rng.IntN(benchStore.members)
				rep, err := commands.Execute(tx, actor, commands.Env{Now: benchNow, MessageID: "v@sp7.test"},
					script(fmt.Sprintf("verify m%d@sp%d.test", i, i%benchStore.spaces)))
				if err != nil {
					return err
				}
				if len(rep.Results) != 1 || rep.Results[0].Status != commands.Verified {
					return fmt.Errorf("verify m%d: %+v", i, rep.Results)
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// BenchmarkScaleImport100k imports a CSV of 100,000 new members into an
// empty space of the big store with commands.ImportRoster, in one
// transaction, commit included (target ≤ 5 s).
func BenchmarkScaleImport100k(b *testing.B) { benchImport(b, false) }

// BenchmarkScaleImport100kSortedRows is the same file with its rows in the
// store's key order (by address, as bytes): bbolt then appends to each
// bucket's node instead of inserting into the middle of it. The difference
// is what sorting the rows in ImportRoster before writing would save for
// any file.
func BenchmarkScaleImport100kSortedRows(b *testing.B) { benchImport(b, true) }

func benchImport(b *testing.B, sorted bool) {
	db := bigStore(b)
	rows := make([]string, 100_000)
	for i := range rows {
		until := ""
		if i%10 == 0 {
			until = "2027-06-30"
		}
		rows[i] = fmt.Sprintf("p%d@import.test,Person %d,active,%s\n", i, i, until)
	}
	if sorted {
		slices.Sort(rows)
	}
	var csv bytes.Buffer
	csv.WriteString("email,name,status,until\n")
	for _, r := range rows {
		csv.WriteString(r)
	}
	data := csv.Bytes()
	actor := commands.Actor{Address: "admin@visa.test", Admin: true}
	round := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		round++
		space := fmt.Sprintf("import%d-%v", round, sorted)
		if err := db.Update(func(tx *storage.Tx) error {
			return tx.PutSpace(storage.Space{ID: space, Name: "Import " + space, Created: benchNow, Updated: benchNow})
		}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		err := db.Update(func(tx *storage.Tx) error {
			rep, err := commands.ImportRoster(tx, actor, commands.Env{Now: benchNow, MessageID: "import@visa.test"},
				space, data, "", false)
			if err == nil && (rep.Added != 100_000 || len(rep.Rejected) != 0) {
				err = fmt.Errorf("import: %d added, %d rejected", rep.Added, len(rep.Rejected))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))/1e6, "csv-MB")
	reportStore(b)
}

// BenchmarkScaleListMembers1000 runs "list members" on a 1,000-member
// space as its manager would: the roster read in order, counted, listed
// line by line and rendered as the CSV attachment (a digest's roster part).
func BenchmarkScaleListMembers1000(b *testing.B) {
	db := bigStore(b)
	actor := commands.Actor{Address: "admin@visa.test", Admin: true}
	for b.Loop() {
		err := db.View(func(tx *storage.Tx) error {
			rep, err := commands.Execute(tx, actor, commands.Env{Now: benchNow, MessageID: "l@visa.test"},
				script("list members space=big"))
			if err != nil {
				return err
			}
			if len(rep.Results) != 1 || len(rep.Results[0].Detail) != 1000 || len(rep.Results[0].Files) != 1 {
				return fmt.Errorf("list members: %+v", rep.Results[0].Text)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// BenchmarkScaleRosterCSV1000 renders a 1,000-member roster as the CSV that
// digests and exports attach.
func BenchmarkScaleRosterCSV1000(b *testing.B) {
	db := bigStore(b)
	for b.Loop() {
		err := db.View(func(tx *storage.Tx) error {
			data, err := commands.RosterCSV(tx, "big", "")
			if err == nil && len(data) < 1000*20 {
				err = fmt.Errorf("roster of %d bytes", len(data))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}
