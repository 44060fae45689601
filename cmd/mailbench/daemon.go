package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot"
	"github.com/coworkingvisa/mailbot/mailbot/config"
)

// daemonMain is mailbench running as the bot daemon for -profile: the code
// of `mailbot run` (config.Load, mailbot.Open, Daemon.Run), plus profiling
// switched by signals, so that the profile covers the burst only:
//
//	SIGUSR1  start the CPU profile and the wall-clock sampler
//	SIGUSR2  stop both; write cpu.pprof, heap.pprof and wall.txt
//
// Each step is acknowledged on stderr (the daemon's log).
func daemonMain() int {
	cfgPath, dir := os.Getenv(daemonEnv), os.Getenv(profileDirEnv)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailbench daemon:", err)
		return 1
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var cpu *os.File
		var sampler *wallSampler
		for sig := range sigs {
			switch {
			case sig == syscall.SIGUSR1 && cpu == nil:
				f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
				if err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "mailbench daemon: profile:", err)
					continue
				}
				cpu = f
				sampler = startWallSampler(20 * time.Millisecond)
				fmt.Fprintln(os.Stderr, "mailbench-profile: started")
			case sig == syscall.SIGUSR2 && cpu != nil:
				pprof.StopCPUProfile()
				cpu.Close()
				cpu = nil
				report := sampler.stop()
				os.WriteFile(filepath.Join(dir, "wall.txt"), []byte(report), 0o644)
				if f, err := os.Create(filepath.Join(dir, "heap.pprof")); err == nil {
					pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
				fmt.Fprintln(os.Stderr, "mailbench-profile: written")
			}
		}
	}()

	d, err := mailbot.Open(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailbench daemon:", err)
		return 1
	}
	mailbot.SetGCPercent(os.Getenv)
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mailbench daemon:", err)
		return 1
	}
	return 0
}

// wallSampler is a wall-clock profile of the daemon's goroutines: every
// period it takes all goroutine stacks and files each goroutine of the
// pipeline under what it is doing or waiting for. A CPU profile misses time
// spent waiting for the IMAP server, the disk or the SMTP server, which is
// where a one-message-at-a-time pipeline spends most of it.
type wallSampler struct {
	stopc   chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples int
	counts  map[string]map[string]int // goroutine role -> activity -> samples
}

func startWallSampler(period time.Duration) *wallSampler {
	s := &wallSampler{stopc: make(chan struct{}), done: make(chan struct{}), counts: map[string]map[string]int{}}
	go func() {
		defer close(s.done)
		buf := make([]byte, 1<<20)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
			n := runtime.Stack(buf, true)
			s.add(string(buf[:n]))
		}
	}()
	return s
}

func (s *wallSampler) add(dump string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	for _, g := range strings.Split(dump, "\n\n") {
		role, what := classify(g)
		if role == "" {
			continue
		}
		if s.counts[role] == nil {
			s.counts[role] = map[string]int{}
		}
		s.counts[role][what]++
	}
}

// classify names a goroutine's role in the pipeline and its activity, from
// its stack (innermost frame first).
func classify(g string) (role, what string) {
	has := func(s string) bool { return strings.Contains(g, s) }
	waitLock := has("bbolt.(*DB).beginRWTx") && has("sync.(*Mutex)")
	commit := func() string {
		switch {
		case has("fdatasync") || has("Fdatasync") || has("syscall.Fsync") || has("(*DB).sync"):
			return "bbolt commit: fdatasync"
		case has("(*Tx).write"):
			return "bbolt commit: write pages"
		default:
			return "bbolt commit: other"
		}
	}
	handling := func() string {
		switch {
		case waitLock:
			return "waiting for the bbolt writer lock"
		case has("bbolt.(*Tx).Commit"):
			return commit()
		case has("commands.Execute"):
			return "commands.Execute"
		case has("reply.Render"):
			return "render reply (go-mail)"
		case has("templates.(*Set)"):
			return "templates"
		case has("message.Parse"):
			return "parse message"
		case has("trust."):
			return "trust (Authentication-Results)"
		case has("bbolt.(*DB).beginRWTx"):
			return "begin bbolt tx"
		case has("slog."):
			return "logging"
		}
		return "other"
	}
	switch {
	case has("mailbot/inbox.(*Watcher).Run"):
		role = "inbox (one batch at a time)"
		switch {
		case has("(*session).idle"):
			what = "waiting for mail (IDLE)"
		case has("(*session).fastPoll") || has("(*session).wait"):
			what = "waiting for mail (NOOP poll)"
		case has("(*session).search"):
			what = "IMAP UID SEARCH"
		case has("(*session).sizes"):
			what = "IMAP UID FETCH RFC822.SIZE"
		case has("(*session).fetch"):
			what = "IMAP UID FETCH (a batch)"
		case has("(*session).store"):
			what = "IMAP UID STORE (a batch)"
		case has("(*session).move"):
			what = "IMAP UID MOVE (a batch)"
		case has("(*Bot).commitGroup") || has("(*Bot).commitOne"):
			what = "commit: " + handling()
		case has("(*Bot).HandleBatch") || has("(*Bot).Handle"):
			what = "admit: " + handling()
		case has("slog."):
			what = "logging"
		case has("(*session).open") || has("inbox.dial"):
			what = "connecting"
		default:
			what = "other"
		}
	case has("mailbot/lmtp.(*session).deliver"):
		role = "lmtp deliveries (each)"
		switch {
		case has("(*Grouper).Handle") && has("chan receive"):
			what = "waiting for its group's commit"
		case has("(*Bot).admitted"):
			what = "admit: " + handling()
		default:
			what = "reading the message / other"
		}
	case has("(*Grouper).work"):
		role, what = "group committer (lmtp)", handling()
	case has("(*Queue).deliver"):
		role = "outbox batches (each)"
		switch {
		case waitLock:
			what = "waiting for the bbolt writer lock"
		case has("bbolt.(*Tx).Commit"):
			what = commit()
		case has("smtpsend.(*Sender)"):
			what = "SMTP send (MAIL/RCPT/DATA)"
		case has("bbolt."):
			what = "bbolt other"
		case has("slog."):
			what = "logging"
		default:
			what = "other"
		}
	case has("(*Queue).Run"):
		role = "outbox dispatcher"
		switch {
		case has("(*Queue).scan"):
			what = "scanning the outbox"
		case has("(*Queue).handOut"):
			what = "handing out batches"
		default:
			what = "waiting"
		}
	}
	return role, what
}

// stop ends sampling and returns the report, each role's activities in
// shares of its samples.
func (s *wallSampler) stop() string {
	close(s.stopc)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "wall-clock samples: %d\n", s.samples)
	roles := make([]string, 0, len(s.counts))
	for r := range s.counts {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		total := 0
		for _, n := range s.counts[r] {
			total += n
		}
		fmt.Fprintf(&b, "\n%s (%d goroutine-samples)\n", r, total)
		type kv struct {
			k string
			n int
		}
		var acts []kv
		for k, n := range s.counts[r] {
			acts = append(acts, kv{k, n})
		}
		sort.Slice(acts, func(i, j int) bool { return acts[i].n > acts[j].n })
		for _, a := range acts {
			fmt.Fprintf(&b, "  %5.1f%%  %s\n", 100*float64(a.n)/float64(total), a.k)
		}
	}
	return b.String()
}
