package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
)

// Environment of the profiling daemon: mailbench runs itself as the daemon
// when daemonEnv names a config file (see daemon.go).
const (
	daemonEnv     = "MAILBENCH_DAEMON_CONFIG"
	profileDirEnv = "MAILBENCH_PROFILE_DIR"
)

// botProc is the bot daemon, a child process: the real mailbot binary
// (`mailbot run --config FILE`), or with -profile mailbench itself running
// the same code (config.Load, mailbot.Open, Run) with profiling on signals.
type botProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startBot(binary, configPath, logPath, profileDir string, spec botSpec) (*botProc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	var cmd *exec.Cmd
	env := append(os.Environ(), botconfig.PasswordEnv+"="+password)
	if profileDir != "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self)
		env = append(env, daemonEnv+"="+configPath, profileDirEnv+"="+profileDir)
	} else {
		cmd = exec.Command(binary, "run", "--config", configPath)
	}
	cmd.Env = env
	// The bot goes when mailbench goes, however that happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the bot: %w", err)
	}
	p := &botProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	// It is ready once logged in and through its first (empty) sweep, and
	// listening for LMTP.
	var ready []string
	if spec.imap {
		ready = append(ready, "imap connected")
	}
	if spec.lmtp != "" {
		ready = append(ready, "lmtp listening")
	}
	deadline := time.Now().Add(60 * time.Second)
	for !logHasAll(p.log(), ready) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("the bot exited at start (%v):\n%s", p.err, tail(p.log(), 20))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the bot did not log %q within 60 s:\n%s", ready, tail(p.log(), 20))
		}
	}
	time.Sleep(300 * time.Millisecond) // first sweep done, IDLE begun
	return p, nil
}

func (p *botProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// signal sends sig and waits until the log holds one more line containing
// ack than it did (the profiling daemon acknowledges each step).
func (p *botProc) signal(sig syscall.Signal, ack string) error {
	before := strings.Count(p.log(), ack)
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.log(), ack) <= before {
		if time.Now().After(deadline) {
			return fmt.Errorf("the bot did not acknowledge %v with %q", sig, ack)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// memPeak is the most memory a process held: its peak resident set, and
// the most anonymous memory (heap, stacks) and the most file-backed pages
// (the store's mmap, the binary) seen at any sample. Page cache mapped from
// the store counts in VmHWM, but the kernel can reclaim it: the two are
// reported apart.
type memPeak struct{ hwm, anon, file int64 }

// watchMemory samples the process's memory every `every` until ctx ends or
// the returned function is called; that returns the peaks.
func (p *botProc) watchMemory(ctx context.Context, every time.Duration) func() memPeak {
	ctx, cancel := context.WithCancel(ctx)
	var peak memPeak
	done := make(chan struct{})
	sample := func() {
		if hwm, anon, file, err := p.memory(); err == nil {
			peak.hwm, peak.anon, peak.file = max(peak.hwm, hwm), max(peak.anon, anon), max(peak.file, file)
		}
	}
	go func() {
		defer close(done)
		for {
			sample()
			select {
			case <-ctx.Done():
				sample()
				return
			case <-time.After(every):
			}
		}
	}()
	return func() memPeak {
		cancel()
		<-done
		return peak
	}
}

// memory reads the process's peak resident set (VmHWM) and its resident
// anonymous memory (heap, stacks) and file-backed pages (the store's mmap)
// now, in bytes.
func (p *botProc) memory() (peak, anon, file int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmHWM":
			peak = kb << 10
		case "RssAnon":
			anon = kb << 10
		case "RssFile":
			file = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, 0, fmt.Errorf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	}
	return peak, anon, file, nil
}

// stop sends SIGTERM and waits up to 60 s for a clean exit.
func (p *botProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("the bot exited with %v after SIGTERM", p.err)
		}
		return nil
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the bot did not stop within 60 s of SIGTERM")
	}
}

func logHasAll(log string, ss []string) bool {
	for _, s := range ss {
		if !strings.Contains(log, s) {
			return false
		}
	}
	return true
}

// countLog counts log lines holding s.
func countLog(log, s string) int { return strings.Count(log, s) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// botSpec says which bot to run: its address and how mail reaches it.
type botSpec struct {
	address string
	imap    bool     // reads its IMAP mailbox (the address is a Dovecot user)
	lmtp    string   // lmtp.listen, "" for none
	aliases []string // bot.aliases
	// fastPoll is imap.fast_poll.every (-fast-poll); < 0 keeps the
	// default.
	fastPoll time.Duration
}

// botConfig is the daemon's config for a run: config.Default() (package
// botconfig) with only the hourly limit per sender raised: a burst of
// thousands of commands from a handful of managers is what the benchmark
// measures, and that limit is there to stop exactly that. The breaker
// keeps its default. conns is the -conns flag (smtp.connections).
func botConfig(dir string, spec botSpec, stack *mailstack.Stack, store string, conns int) (string, error) {
	c, err := botconfig.New(botconfig.Stack{Bot: spec.address, Admin: adminAddr, IMAPAddr: stack.IMAPAddr, SMTPAddr: stack.SMTPAddr,
		Store: store, AuthservID: authservID})
	if err != nil {
		return "", err
	}
	c.Bot.Name = botName
	c.Bot.Aliases = spec.aliases
	c.LMTP.Listen = spec.lmtp
	if spec.fastPoll >= 0 {
		c.IMAP.FastPoll.Every = spec.fastPoll
	}
	if !spec.imap {
		// LMTP alone: no imap section.
		c.IMAP.Host, c.IMAP.Port, c.IMAP.Username, c.IMAP.PasswordEnv = "", 0, "", ""
	}
	c.SMTP.Connections = conns
	c.Limits.RepliesPerSenderPerHour = 1_000_000 // 0 would mean none; this is a limit no burst reaches
	c.Log.Level = "info"                         // the default: debug lines would cost time in the measured run
	path := filepath.Join(dir, "config-"+strings.Split(spec.address, "@")[0]+".yaml")
	return path, botconfig.Write(path, c)
}
