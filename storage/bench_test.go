package storage

// Scale benchmarks (issue 5): a store of 1M members across 10,000 spaces,
// generated once per test binary and only when a Benchmark below runs
// (go test -run '^$' -bench Scale ./storage/). Set MAILBOT_BENCH_MEMBERS and
// MAILBOT_BENCH_SPACES for another size, e.g. 5000000 and 45000 (the
// world's coworking): generation then takes about a minute and a few GB of
// disk. Each benchmark reports the generated store's size (store-MB) and
// generation time (gen-s) beside its own figure. Benchmarks are never timed
// assertions: they print, they do not fail on speed.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchStore is the generated store, shared by the benchmarks of one run.
var benchStore struct {
	once            sync.Once
	db              *DB
	members, spaces int
	gen             time.Duration
	size            int64
	err             error
}

// benchScale reads the store size to generate: 1M members across 10,000
// spaces unless the environment says otherwise.
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

func benchMember(i, spaces int) Member {
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	m := Member{Space: fmt.Sprintf("sp%d", i%spaces), Email: fmt.Sprintf("m%d@sp%d.test", i, i%spaces),
		Name: fmt.Sprintf("Member %d", i), Status: StatusActive, Added: now, Updated: now}
	if i%10 == 0 {
		m.Until = "2027-06-30"
	}
	return m
}

// bigStore generates the store once: spaces with one manager each, then
// the members, 100k per transaction (one fsync each), plus a space "big"
// of 1,000 members for the digest-sized listing. The file is unlinked once
// written: the open DB keeps it until the process exits, so nothing is left
// behind.
func bigStore(b *testing.B) *DB {
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
		db, err := Open(path)
		if err != nil {
			s.err = err
			return
		}
		now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
		err = db.Update(func(tx *Tx) error {
			for k := range s.spaces {
				id := fmt.Sprintf("sp%d", k)
				if err := tx.PutSpace(Space{ID: id, Name: "Space " + id, City: "Berlin", Country: "DE", Created: now, Updated: now}); err != nil {
					return err
				}
				if err := tx.AddManager(Manager{Email: "manager@" + id + ".test", Space: id, Added: now}); err != nil {
					return err
				}
			}
			if err := tx.PutSpace(Space{ID: "big", Name: "Big Space", Created: now, Updated: now}); err != nil {
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
			err = db.Update(func(tx *Tx) error {
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
	b.ReportMetric(benchStore.gen.Seconds(), "gen-s")
	b.ReportMetric(float64(benchStore.members), "members")
}

// BenchmarkScaleVerifyLookup is the store's part of a verify: every
// membership of an address through the address index, and the home space
// of each, in a read transaction of its own (target ≤ 50 µs).
func BenchmarkScaleVerifyLookup(b *testing.B) {
	db := bigStore(b)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		i := rng.IntN(benchStore.members)
		err := db.View(func(tx *Tx) error {
			ms, err := tx.MembershipsOf(fmt.Sprintf("m%d@sp%d.test", i, i%benchStore.spaces))
			if err != nil {
				return err
			}
			if len(ms) != 1 {
				return fmt.Errorf("member %d: %d memberships", i, len(ms))
			}
			_, _, err = tx.Space(ms[0].Space)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// BenchmarkScaleListSpace1000 reads a 1,000-member space in roster order,
// as a digest or "list members" does.
func BenchmarkScaleListSpace1000(b *testing.B) {
	db := bigStore(b)
	for b.Loop() {
		err := db.View(func(tx *Tx) error {
			ms, err := tx.Members("big")
			if len(ms) != 1000 {
				return fmt.Errorf("%d members, %v", len(ms), err)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// messageWrites is what one command message writes besides its command:
// the rate window, an audit record with a member change, the reply in the
// outbox and the handled mark.
func messageWrites(tx *Tx, i int, raw []byte) error {
	m := benchMember(i, benchStore.spaces)
	m.Name = fmt.Sprintf("Renamed %d", i)
	if err := tx.PutRateWindow("manager@x.test", RateWindow{Start: time.Now(), Count: i}); err != nil {
		return err
	}
	if err := tx.PutMember(m); err != nil {
		return err
	}
	if _, err := tx.Record(Change{At: time.Now(), Actor: "manager@x.test", MessageID: fmt.Sprintf("%d@x.test", i),
		Space: m.Space, Kind: "member", Key: m.Email, Action: "update", After: []byte(`{"name":"x"}`)}); err != nil {
		return err
	}
	id, err := tx.Enqueue(OutboxItem{From: "visa@visa.test", To: []string{"manager@x.test"}, Raw: raw, Created: time.Now()})
	if err != nil {
		return err
	}
	return tx.MarkHandled(fmt.Sprintf("manager@x.test %d-%d@x.test", time.Now().UnixNano(), i), HandledMessage{At: time.Now(), Outcome: "replied", ReplyID: id})
}

// BenchmarkScaleCommitPerMessage is the daemon's way: one read-write
// transaction, so one commit and fsync, per message.
func BenchmarkScaleCommitPerMessage(b *testing.B) {
	db := bigStore(b)
	raw := make([]byte, 3000)
	rng := rand.New(rand.NewPCG(3, 4))
	for b.Loop() {
		if err := db.Update(func(tx *Tx) error { return messageWrites(tx, rng.IntN(benchStore.members), raw) }); err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// BenchmarkScaleCommitGroup50 writes the same per message, 50 messages per
// transaction (group commit): ns/op is per message.
func BenchmarkScaleCommitGroup50(b *testing.B) {
	db := bigStore(b)
	raw := make([]byte, 3000)
	rng := rand.New(rand.NewPCG(5, 6))
	b.ResetTimer()
	for done := 0; done < b.N; done += 50 {
		if err := db.Update(func(tx *Tx) error {
			for range min(50, b.N-done) {
				if err := messageWrites(tx, rng.IntN(benchStore.members), raw); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// BenchmarkScaleCommitPerMessageNoFreelistSync is CommitPerMessage with
// bbolt's NoFreelistSync, which Open does not set: the freelist is then
// not sorted and written at every commit (it is rebuilt by a scan at open
// instead). The difference is what the freelist costs each commit of a
// big, aged store.
func BenchmarkScaleCommitPerMessageNoFreelistSync(b *testing.B) {
	db := bigStore(b)
	db.bolt.NoFreelistSync = true
	defer func() { db.bolt.NoFreelistSync = false }()
	raw := make([]byte, 3000)
	rng := rand.New(rand.NewPCG(7, 8))
	for b.Loop() {
		if err := db.Update(func(tx *Tx) error { return messageWrites(tx, rng.IntN(benchStore.members), raw) }); err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// BenchmarkScaleFreePages reports how many free pages the generated store
// holds: what each commit's freelist write sorts and copies.
func BenchmarkScaleFreePages(b *testing.B) {
	db := bigStore(b)
	for b.Loop() {
		_ = db.bolt.Stats()
	}
	st := db.bolt.Stats()
	b.ReportMetric(float64(st.FreePageN+st.PendingPageN), "free-pages")
	b.ReportMetric(float64(st.FreelistInuse)/1e6, "freelist-MB")
	reportStore(b)
}
