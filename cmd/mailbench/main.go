// Command mailbench measures the mailbot against the limit of the mail
// servers themselves, in one run on one machine (issue 5). It starts the
// real Dovecot and Postfix of the integration tests (mailbot/testkit/mailstack) and,
// for each of -runs runs:
//
//  1. the limit, with the bot stopped, for each shape of traffic
//     (-shapes): N command messages into a bot-like inbox plus N
//     reply-sized messages (rendered by the bot's own templates) into the
//     senders' inboxes, submitted together through Postfix, until all are
//     visible over IMAP; then, once, a plain IMAP client fetching N
//     messages in batches of 50 (and also flagging and moving them, per
//     message and per batch), and a plain SMTP client submitting N over as
//     many reused connections as the bot's pool has;
//  2. the bot under a burst, for each intake (-intake) and shape: N command
//     messages submitted as fast as Postfix takes them, from -managers
//     managers (verify, add member, update member) or from one host at a
//     front desk (verify only); the time from the first submission to the
//     last reply visible in the senders' inboxes, each reply matched by
//     In-Reply-To and checked; the bot's memory meanwhile;
//  3. front-desk latency: -latency rounds of a plain message to a plain
//     mailbox, a single verify to the bot over each intake, and the same
//     verify to a naive NOOP poller (-peer, the peer.go in this command),
//     each timed from submission to reply visible.
//
// The bot is the real mailbot binary (built from this module), run as a
// child process with a config file, as an operator runs it. With -profile
// DIR the child is mailbench itself running the same daemon code with a CPU
// profile, a heap profile and a wall-clock sampler over each burst.
//
// It prints a table, then one name=value line per figure: medians over the
// runs. Every load loop is bounded in count and time; everything is on
// loopback.
//
//	go run ./cmd/mailbench [-n 10000] [-latency 100] [-runs 3] [-conns 2]
//	                       [-shapes many,one] [-intake imap] [-peer 200ms]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"

	_ "github.com/emersion/go-message/charset"
)

func main() {
	if os.Getenv(daemonEnv) != "" {
		os.Exit(daemonMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mailbench:", err)
		}
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	n, latency, runs, conns, submitConns int
	managers, members, spaces            int
	shapes                               []shape
	intakes                              []string
	peer                                 time.Duration
	fastPoll                             time.Duration // < 0: the default
	lmtpListen                           string        // where the bots listen for LMTP (picked at start)
	binary, profile, dir                 string
	keep                                 bool
	phaseTimeout                         time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("mailbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 10000, "command messages per burst (and messages per limit measurement)")
	fs.IntVar(&o.latency, "latency", 100, "single verify messages for the front-desk latency")
	fs.IntVar(&o.runs, "runs", 3, "runs; the name=value figures are their medians")
	fs.IntVar(&o.conns, "conns", 2, "the bot's SMTP connections (smtp.connections), also used by the plain SMTP client")
	fs.IntVar(&o.submitConns, "submit-conns", 4, "SMTP connections submitting the command messages")
	fs.IntVar(&o.managers, "managers", 20, "managers sending the burst, each managing one space")
	fs.IntVar(&o.members, "members", 10000, "members in the bot's store (generated before the first run)")
	fs.IntVar(&o.spaces, "spaces", 100, "spaces the members are spread over")
	fs.StringVar(&o.binary, "bin", "", "a mailbot binary to run (default: built from this module)")
	fs.StringVar(&o.profile, "profile", "", "directory for CPU and heap profiles and a wall-clock breakdown of the daemon during each burst")
	fs.StringVar(&o.dir, "dir", "", "work directory for the store, configs and logs (default: a new one under /tmp, removed unless -keep)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory and the mail stack's directory")
	fs.DurationVar(&o.phaseTimeout, "phase-timeout", 0, "bound of each load phase (default 60s + 150ms per message)")
	shapes := fs.String("shapes", "many,one", "burst shapes: many (-managers managers, mixed commands), one (one host, verify only)")
	intakes := fs.String("intake", intakeIMAP+","+intakeLMTP, "how commands reach the bot in the bursts: imap (its mailbox), lmtp (Postfix hands them to lmtp.listen)")
	fs.DurationVar(&o.peer, "peer", 200*time.Millisecond, "poll interval of the naive peer timed beside the bot in the latency phase (0: none)")
	fs.DurationVar(&o.fastPoll, "fast-poll", -1, "imap.fast_poll.every of the bots (default: the config's default), to compare settings")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, name := range strings.Split(*shapes, ",") {
		s, err := shapeNamed(strings.TrimSpace(name), o.managers)
		if err != nil {
			return o, fmt.Errorf("-shapes: %w", err)
		}
		o.shapes = append(o.shapes, s)
	}
	for _, name := range strings.Split(*intakes, ",") {
		switch name = strings.TrimSpace(name); name {
		case intakeIMAP, intakeLMTP:
			o.intakes = append(o.intakes, name)
		default:
			return o, fmt.Errorf("-intake: unknown intake %q (want imap or lmtp)", name)
		}
	}
	switch {
	case o.n < 2 || o.n > 1_000_000:
		return o, errors.New("-n must be 2 to 1000000")
	case o.latency < 1 || o.latency > 10_000:
		return o, errors.New("-latency must be 1 to 10000")
	case o.runs < 1 || o.runs > 20:
		return o, errors.New("-runs must be 1 to 20")
	case o.conns < 1 || o.conns > 16:
		return o, errors.New("-conns must be 1 to 16 (smtp.connections)")
	case o.submitConns < 1 || o.submitConns > 64:
		return o, errors.New("-submit-conns must be 1 to 64")
	case o.spaces < 1 || o.managers < 1 || o.managers > o.spaces:
		return o, errors.New("need 1 <= -managers <= -spaces")
	case o.members < 0:
		return o, errors.New("-members must not be negative")
	case o.peer < 0:
		return o, errors.New("-peer must not be negative")
	}
	return o, nil
}

// figure is one measured value of one run.
type figure struct {
	name, unit, what string
	value            float64
}

// runResult holds a run's figures in order.
type runResult []figure

func (r *runResult) add(name, unit, what string, v float64) {
	*r = append(*r, figure{name, unit, what, v})
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
	}

	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mailbench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if o.keep || o.dir != "" {
			logf("work directory kept: %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err != nil {
			return err
		}
	}

	zeroNote := checkZeroLimits()
	logf("config: %s", zeroNote)

	binary := o.binary
	if binary == "" && o.profile == "" {
		binary = filepath.Join(dir, "mailbot")
		start := time.Now()
		build := exec.CommandContext(ctx, "go", "build", "-o", binary, "github.com/coworkingvisa/mailbot/cmd/mailbot")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build mailbot: %w", err)
		}
		logf("built %s in %v", binary, time.Since(start).Round(time.Millisecond))
	}

	// Every bot listens for LMTP on this port in turn: Postfix hands the
	// LMTP bots' addresses to it.
	lmtpPort, err := freePort()
	if err != nil {
		return err
	}
	o.lmtpListen = fmt.Sprintf("127.0.0.1:%d", lmtpPort)
	users := map[string]string{adminAddr: password}
	managers := map[string]string{}
	routes := map[string]string{}
	for r := 1; r <= o.runs; r++ {
		b := boxesFor(r)
		for _, a := range b.mailboxes(o.intakes, o.shapes, o.managers) {
			users[a] = password
		}
		maps.Copy(managers, b.managers(o.intakes, o.shapes))
		for _, a := range b.lmtpRoutes(o.intakes, o.shapes) {
			routes[a] = "lmtp:inet:" + o.lmtpListen
		}
	}
	// Not under /tmp/mailbot-it-*: test runs of other sessions on a shared
	// machine reap stacks there that they take for orphans.
	stackDir, err := os.MkdirTemp("/tmp", "mailbench-stack-")
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	stack, err := mailstack.Start(sctx, mailstack.Options{Dir: stackDir, Users: users, Logf: logf, RetryDelay: 2 * time.Second, Transports: routes})
	cancel()
	if err != nil {
		return fmt.Errorf("Dovecot and Postfix could not start (run .ci/install-deps as root): %w", err)
	}
	defer func() {
		if err := stack.Stop(); err != nil {
			logf("stopping the mail stack: %v", err)
		}
		if !o.keep {
			os.RemoveAll(stack.Dir)
		}
	}()

	store := filepath.Join(dir, "visa.db")
	os.Remove(store)
	seedTime, seedSize, err := seedStore(store, o.members, o.spaces, managers)
	if err != nil {
		return err
	}
	logf("store: %d members in %d spaces written in %v, %.1f MB", o.members, o.spaces, seedTime.Round(time.Millisecond), float64(seedSize)/1e6)

	var results []runResult
	for r := 1; r <= o.runs; r++ {
		res, err := oneRun(ctx, o, r, stack, binary, store, dir, logf)
		if err != nil {
			if o.keep {
				logf("mail stack kept in %s", stack.Dir)
			}
			return fmt.Errorf("run %d: %w", r, err)
		}
		results = append(results, res)
	}
	res := runResult{}
	res.add("store_members", "", "members in the bot's store", float64(o.members))
	res.add("store_seed_s", "s", "writing them (100k per transaction)", seedTime.Seconds())
	res.add("store_mb", "MB", "store size on disk after the runs", float64(fileSize(store))/1e6)
	report(stdout, o, results, res, zeroNote)
	return nil
}

// checkZeroLimits tells whether config validation accepts 0 for the two
// limits the benchmark must switch off.
func checkZeroLimits() string {
	var notes []string
	for _, key := range []string{"replies_per_sender_per_hour", "replies_per_minute"} {
		y := fmt.Sprintf("bot: {address: visa@visa.test}\nimap: {host: 127.0.0.1, tls: none, username: u, password: p}\nsmtp: {host: 127.0.0.1, tls: none}\nstore: {path: /tmp/x.db}\nauth: {require: none}\nlimits: {%s: 0}\n", key)
		if _, err := config.Parse([]byte(y), func(string) string { return "" }); err != nil {
			notes = append(notes, fmt.Sprintf("limits.%s: 0 is REFUSED (%v)", key, strings.ReplaceAll(err.Error(), "\n", "; ")))
		} else {
			notes = append(notes, fmt.Sprintf("limits.%s: 0 accepted", key))
		}
	}
	return strings.Join(notes, "; ")
}

// oneRun measures the limits, the bursts and the latency once.
func oneRun(ctx context.Context, o options, r int, stack *mailstack.Stack, binary, store, dir string, logf func(string, ...any)) (runResult, error) {
	var res runResult
	b := boxesFor(r)
	rng := rand.New(rand.NewPCG(uint64(r), 42))
	stamp := time.Now().UnixNano()
	limits := map[string]float64{}
	plain := false
	for _, in := range o.intakes {
		for _, s := range o.shapes {
			limit, err := limitPhase(ctx, o, r, in, s, b, stack, rng, stamp, &res, logf)
			if err != nil {
				return nil, err
			}
			limits[in+"_"+s.name] = limit
			if !plain && in == intakeIMAP {
				plain = true
				if err := plainClients(ctx, o, r, b.limit(in, s).bot, b, stack, dir, rng, &res, logf); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, in := range o.intakes {
		for _, s := range o.shapes {
			if err := burstPhase(ctx, o, r, in, s, b, limits[in+"_"+s.name], stack, binary, store, dir, rng, stamp, &res, logf); err != nil {
				return nil, err
			}
		}
	}
	if err := latencyPhase(ctx, o, r, b, stack, binary, store, dir, stamp, &res, logf); err != nil {
		return nil, err
	}
	return res, nil
}

// phaseBound is how long one load phase may take: generous for a stack
// that moves ~100 messages/s.
func phaseBound(o options) time.Duration {
	if o.phaseTimeout > 0 {
		return o.phaseTimeout
	}
	return 60*time.Second + time.Duration(o.n)*150*time.Millisecond
}

// limitPhase measures the stack's own limit for intake in and shape s,
// with the bot stopped: N commands in, and N reply-sized messages out to
// the shape's senders, all at once. Over IMAP the commands are delivered
// to a mailbox and drained from it as the bot drains its inbox; over LMTP
// Postfix hands them to a sink that takes each at once. It returns the
// limit in commands per second.
func limitPhase(ctx context.Context, o options, r int, in string, s shape, b runBoxes, stack *mailstack.Stack, rng *rand.Rand, stamp int64, res *runResult, logf func(string, ...any)) (float64, error) {
	lb := b.limit(in, s)
	name := in + "_" + s.name
	logf("run %d: limit %s: %d command messages in + %d reply-sized out through Postfix", r, name, o.n, o.n)
	cmds := burstMessages(fmt.Sprintf("r%d-limit-%s", r, name), o.n, lb.bot, lb.to, s, o.members, o.spaces, rng, stamp)
	msgs := make([]outMsg, o.n)
	for i, c := range cmds {
		msgs[i] = outMsg{from: c.from, to: lb.bot, raw: c.raw}
	}
	replies, err := replyLike(o.n, lb.bot, lb.to, rng)
	if err != nil {
		return 0, err
	}
	out := make([]outMsg, o.n)
	perTo := map[string]int{}
	for i, raw := range replies {
		to := lb.to[i%len(lb.to)]
		out[i] = outMsg{from: lb.bot, to: to, raw: raw}
		perTo[to]++
	}
	var sink *lmtpSink
	if in == intakeLMTP {
		if sink, err = startSink(o.lmtpListen); err != nil {
			return 0, err
		}
		defer sink.close()
	}
	pctx, cancel := context.WithTimeout(ctx, phaseBound(o))
	defer cancel()
	start := time.Now()
	var subIn, subOut error
	var drained, visible time.Time
	var drainErr, visErr error
	waitDone := make(chan struct{})
	go func() {
		defer close(waitDone)
		done := make(chan struct{})
		go func() {
			if sink != nil {
				drained, drainErr = sink.wait(pctx, lb.bot, o.n)
			} else {
				drained, drainErr = drain(pctx, stack.IMAPAddr, lb.bot, o.n, 50*time.Millisecond)
			}
			close(done)
		}()
		visible, visErr = waitCounts(pctx, stack.IMAPAddr, specsOf(perTo), 50*time.Millisecond)
		<-done
	}()
	subDone := make(chan struct{})
	go func() {
		_, subOut = submitAll(pctx, stack.SMTPAddr, o.conns, out)
		close(subDone)
	}()
	_, subIn = submitAll(pctx, stack.SMTPAddr, o.submitConns, msgs)
	<-subDone
	<-waitDone
	if err := errors.Join(subIn, subOut, drainErr, visErr); err != nil {
		return 0, fmt.Errorf("limit %s: %w", name, err)
	}
	took := later(drained, visible).Sub(start)
	limit := rate(o.n, took)
	how := "delivered to a mailbox and drained"
	if sink != nil {
		how = "handed over by LMTP to a sink"
	}
	res.add("limit_"+name+"_msgs_per_s", "cmd/s", fmt.Sprintf("limit, %s: N commands in (%s) + N replies out delivered, per second of N", name, how), limit)
	res.add("limit_"+name+"_deliveries_per_s", "msg/s", fmt.Sprintf("limit, %s: all 2N deliveries per second", name), rate(2*o.n, took))
	res.add("load_limit_"+name, "", "load average (1 min) at the end of the phase", loadAverage())
	logf("run %d: limit %s: %.1f commands/s (%d deliveries in %v)", r, name, limit, 2*o.n, took.Round(time.Millisecond))
	return limit, nil
}

// plainClients measures a plain IMAP client on the N messages the limit
// phase moved to mailbox's Processed, and a plain SMTP client.
func plainClients(ctx context.Context, o options, r int, mailbox string, b runBoxes, stack *mailstack.Stack, dir string, rng *rand.Rand, res *runResult, logf func(string, ...any)) error {
	pctx, cancel := context.WithTimeout(ctx, phaseBound(o))
	defer cancel()
	imf, err := imapBench(pctx, stack.IMAPAddr, mailbox, "Processed", 50)
	if err != nil {
		return fmt.Errorf("IMAP: %w", err)
	}
	res.add("imap_fetch_msgs_per_s", "msg/s", "plain IMAP: UID FETCH BODY.PEEK[] in batches of 50", imf.fetch)
	res.add("imap_fetch_store_move_each_msgs_per_s", "msg/s", "plain IMAP: fetch + UID STORE + UID MOVE per message", imf.fetchEachMove)
	res.add("imap_fetch_store_move_batch_msgs_per_s", "msg/s", "plain IMAP: fetch + one STORE + one MOVE per batch of 50 (the bot's way)", imf.fetchBatchMove)
	logf("run %d: IMAP: fetch %.0f/s, fetch+store+move each %.0f/s, per batch %.0f/s", r, imf.fetch, imf.fetchEachMove, imf.fetchBatchMove)

	replies, err := replyLike(o.n, b.latBot, []string{b.sink}, rng)
	if err != nil {
		return err
	}
	sink := make([]outMsg, o.n)
	for i := range sink {
		sink[i] = outMsg{from: b.latBot, to: b.sink, raw: replies[i]}
	}
	start := time.Now()
	accepted, err := submitAll(pctx, stack.SMTPAddr, o.conns, sink)
	if err == nil {
		_, err = waitCounts(pctx, stack.IMAPAddr, []waitSpec{{b.sink, o.n}}, 100*time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("SMTP: %w", err)
	}
	smtpRate := rate(o.n, accepted.Sub(start))
	res.add("smtp_submit_msgs_per_s", "msg/s", fmt.Sprintf("plain SMTP: submission over %d reused connections", o.conns), smtpRate)
	logf("run %d: SMTP: %.0f submissions/s over %d connections", r, smtpRate, o.conns)

	// What the bot's outbox sends, alone: to one recipient (in order, one
	// connection) and to many (its pool).
	for _, c := range []struct {
		name string
		to   []string
	}{{"one", b.outboxTo(1)}, {"many", b.outboxTo(o.managers)}} {
		sent, err := outboxBench(pctx, dir, stack.SMTPAddr, b.latBot, c.to, o.n, o.conns)
		if err != nil {
			return fmt.Errorf("outbox to %s: %w", c.name, err)
		}
		res.add("outbox_"+c.name+"_msgs_per_s", "msg/s", fmt.Sprintf("the bot's outbox alone: N queued replies to %d recipients submitted (bookkeeping included)", len(c.to)), sent)
		logf("run %d: outbox: %.0f replies/s to %d recipients", r, sent, len(c.to))
	}
	return nil
}

// burstPhase runs the bot under a burst of shape s through intake in, and
// compares it with the shape's limit from the same run.
func burstPhase(ctx context.Context, o options, r int, in string, s shape, b runBoxes, limit float64, stack *mailstack.Stack, binary, store, dir string, rng *rand.Rand, stamp int64, res *runResult, logf func(string, ...any)) error {
	bb := b.burst(in, s)
	name := in + "_" + s.name
	spec := botSpec{address: bb.bot, imap: in == intakeIMAP}
	if in == intakeLMTP {
		spec.lmtp = o.lmtpListen
	}
	spec.fastPoll = o.fastPoll
	cfgPath, err := botConfig(dir, spec, stack, store, o.conns)
	if err != nil {
		return err
	}
	profDir := ""
	if o.profile != "" {
		profDir = filepath.Join(o.profile, fmt.Sprintf("run%d-%s", r, name))
		if err := os.MkdirAll(profDir, 0o755); err != nil {
			return err
		}
	}
	bot, err := startBot(binary, cfgPath, filepath.Join(dir, fmt.Sprintf("bot-r%d-%s.log", r, name)), profDir, spec)
	if err != nil {
		return err
	}
	defer bot.stop()
	if profDir != "" {
		if err := bot.signal(syscall.SIGUSR1, "mailbench-profile: started"); err != nil {
			return err
		}
	}
	tag := fmt.Sprintf("r%d-%s-%s", r, in, s.name)
	cmds := burstMessages(tag, o.n, bb.bot, bb.senders, s, o.members, o.spaces, rng, stamp)
	msgs := make([]outMsg, o.n)
	perSender := map[string]int{}
	byID := map[string]command{}
	for i, c := range cmds {
		msgs[i] = outMsg{from: c.from, to: bb.bot, raw: c.raw}
		perSender[c.from]++
		byID[c.id] = c
	}
	logf("run %d: burst %s: %d command messages from %d senders", r, name, o.n, len(bb.senders))
	pctx, cancel := context.WithTimeout(ctx, phaseBound(o))
	defer cancel()
	mem := bot.watchMemory(pctx, 200*time.Millisecond)
	start := time.Now()
	var subErr error
	subDone := make(chan struct{})
	var submitted time.Time
	go func() {
		submitted, subErr = submitAll(pctx, stack.SMTPAddr, o.submitConns, msgs)
		close(subDone)
	}()
	visible, visErr := waitCounts(pctx, stack.IMAPAddr, specsOf(perSender), 50*time.Millisecond)
	<-subDone
	load := loadAverage()
	if profDir != "" {
		if err := bot.signal(syscall.SIGUSR2, "mailbench-profile: written"); err != nil {
			return err
		}
	}
	peak := mem()
	if err := errors.Join(subErr, visErr); err != nil {
		return fmt.Errorf("burst %s: %w\nbot log:\n%s", name, err, tail(bot.log(), 30))
	}
	took := visible.Sub(start)
	burst := rate(o.n, took)
	res.add("burst_"+name+"_msgs_per_s", "cmd/s", "bot: first submission to last reply visible", burst)
	res.add("burst_"+name+"_ratio", "", fmt.Sprintf("burst / limit_%s, same run (target >= 0.8)", name), burst/limit)
	res.add("burst_"+name+"_seconds", "s", "bot: burst duration", took.Seconds())
	res.add("burst_"+name+"_submit_msgs_per_s", "msg/s", fmt.Sprintf("burst submission rate over %d connections", o.submitConns), rate(o.n, submitted.Sub(start)))
	res.add("load_burst_"+name, "", "load average (1 min) at the end of the burst", load)
	res.add("rss_"+name+"_peak_mb", "MB", "bot process VmHWM (anonymous and file-backed together)", mb(peak.hwm))
	res.add("rss_"+name+"_anon_mb", "MB", "largest RssAnon seen (heap, stacks), sampled every 200 ms", mb(peak.anon))
	res.add("rss_"+name+"_file_mb", "MB", "largest RssFile seen (the store's mmap, the binary), sampled every 200 ms", mb(peak.file))
	logf("run %d: burst %s: %.1f commands/s in %v (ratio %.2f, load %.1f); RSS anon %.1f MB, file %.1f MB", r, name, burst,
		took.Round(time.Millisecond), burst/limit, load, mb(peak.anon), mb(peak.file))

	cctx, ccancel := context.WithTimeout(ctx, phaseBound(o))
	defer ccancel()
	chk, err := checkReplies(cctx, stack.IMAPAddr, bb.senders, byID)
	if err != nil {
		return err
	}
	log := bot.log()
	res.add("burst_"+name+"_replies_ok", "", "replies matched by In-Reply-To with the expected result", float64(chk.ok))
	res.add("burst_"+name+"_replies_bad", "", "missing, duplicate, unmatched or wrong replies", float64(chk.bad()))
	res.add("burst_"+name+"_log_errors", "", "ERROR/WARN lines in the bot's log", float64(countLog(log, "level=ERROR")+countLog(log, "level=WARN")))
	if chk.bad() > 0 {
		logf("run %d: burst %s: REPLY CHECK FAILED: %s", r, name, chk)
	}
	return bot.stop()
}

// latencyPhase times single verify messages at the front desk: the bot
// idle between them, beside a plain delivery and the naive peer.
func latencyPhase(ctx context.Context, o options, r int, b runBoxes, stack *mailstack.Stack, binary, store, dir string, stamp int64, res *runResult, logf func(string, ...any)) error {
	// One bot, reached both ways: its mailbox, and an alias Postfix hands
	// to its LMTP listener.
	spec := botSpec{address: b.latBot, imap: true, lmtp: o.lmtpListen, aliases: []string{b.latLMTP}}
	spec.fastPoll = o.fastPoll
	cfgPath, err := botConfig(dir, spec, stack, store, o.conns)
	if err != nil {
		return err
	}
	// With -profile the daemon is mailbench itself (no binary was built);
	// nothing is profiled here.
	profDir := ""
	if o.profile != "" {
		profDir = filepath.Join(o.profile, fmt.Sprintf("run%d-latency", r))
		if err := os.MkdirAll(profDir, 0o755); err != nil {
			return err
		}
	}
	bot, err := startBot(binary, cfgPath, filepath.Join(dir, fmt.Sprintf("bot-r%d-latency.log", r)), profDir, spec)
	if err != nil {
		return err
	}
	defer bot.stop()
	target := "stranger@elsewhere.test"
	if o.members > 0 {
		target = memberAddr(0, o.spaces)
	}
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second+time.Duration(o.latency)*10*time.Second)
	defer cancel()
	var peerErr error
	peerDone := make(chan struct{})
	if o.peer > 0 {
		p := &peer{imapAddr: stack.IMAPAddr, smtpAddr: stack.SMTPAddr, user: b.peer, every: o.peer, members: map[string]bool{target: true}}
		go func() {
			peerErr = p.run(pctx)
			close(peerDone)
		}()
	} else {
		close(peerDone)
	}
	targets := []latencyTarget{{name: "imap", to: b.latBot}, {name: "lmtp", to: b.latLMTP}}
	if o.peer > 0 {
		targets = append(targets, latencyTarget{name: "peer", to: b.peer})
	}
	logf("run %d: latency: %d rounds of a plain message and a verify to each of %v", r, o.latency, targets)
	time.Sleep(time.Second)
	lat, deliv, err := latency(pctx, stack, b, o.latency, target, targets, stamp, r)
	load := loadAverage()
	cancel()
	<-peerDone
	if err := errors.Join(err, peerErr); err != nil {
		return fmt.Errorf("latency: %w\nbot log:\n%s", err, tail(bot.log(), 30))
	}
	for _, p := range []int{50, 90, 99} {
		res.add(fmt.Sprintf("delivery_p%d_ms", p), "ms", "plain message: submission to visible", ms(percentile(deliv, p)))
	}
	for _, t := range targets {
		for _, p := range []int{50, 90, 99} {
			res.add(fmt.Sprintf("latency_%s_p%d_ms", t.name, p), "ms", fmt.Sprintf("verify to the %s: submission to reply visible", t.what()), ms(percentile(lat[t.name], p)))
		}
	}
	d50 := percentile(deliv, 50)
	res.add("latency_imap_per_delivery", "", "latency_imap_p50 / delivery_p50", float64(percentile(lat["imap"], 50))/float64(d50))
	res.add("latency_lmtp_per_delivery", "", "latency_lmtp_p50 / delivery_p50 (target <= 2)", float64(percentile(lat["lmtp"], 50))/float64(d50))
	if o.peer > 0 {
		res.add("latency_imap_per_peer", "", "latency_imap_p50 / latency_peer_p50, same run (target < 1)", float64(percentile(lat["imap"], 50))/float64(percentile(lat["peer"], 50)))
	}
	res.add("load_latency", "", "load average (1 min) at the end of the phase", load)
	var line []string
	for _, t := range targets {
		line = append(line, fmt.Sprintf("%s p50 %v p99 %v", t.name, percentile(lat[t.name], 50).Round(time.Millisecond), percentile(lat[t.name], 99).Round(time.Millisecond)))
	}
	logf("run %d: latency: %s; delivery p50 %v", r, strings.Join(line, ", "), d50.Round(time.Millisecond))
	return bot.stop()
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// mb is bytes in MiB.
func mb(n int64) float64 { return float64(n) / (1 << 20) }

// loadAverage is the machine's load average over the last minute, 0 when
// it cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l
}

func specsOf(per map[string]int) []waitSpec {
	var s []waitSpec
	for u, n := range per {
		s = append(s, waitSpec{u, n})
	}
	return s
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// replyCheck counts the burst's replies.
type replyCheck struct {
	ok, missing, duplicate, unmatched, wrong int
	example                                  string
}

func (c replyCheck) bad() int { return c.missing + c.duplicate + c.unmatched + c.wrong }

func (c replyCheck) String() string {
	return fmt.Sprintf("%d ok, %d missing, %d duplicate, %d unmatched, %d wrong (e.g. %s)",
		c.ok, c.missing, c.duplicate, c.unmatched, c.wrong, c.example)
}

// checkReplies reads every manager's inbox and matches each reply to the
// command it answers by In-Reply-To: one reply each, with the expected
// result line.
func checkReplies(ctx context.Context, addr string, managers []string, sent map[string]command) (replyCheck, error) {
	var c replyCheck
	seen := map[string]bool{}
	for _, m := range managers {
		raws, err := fetchInbox(ctx, addr, m)
		if err != nil {
			return c, err
		}
		for _, raw := range raws {
			mr, err := mail.CreateReader(bytes.NewReader(raw))
			if err != nil {
				c.unmatched++
				continue
			}
			ids, _ := mr.Header.MsgIDList("In-Reply-To")
			text := ""
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				if h, ok := p.Header.(*mail.InlineHeader); ok {
					if ct, _, _ := h.ContentType(); ct == "text/plain" && text == "" {
						b, _ := io.ReadAll(p.Body)
						text = string(b)
					}
				}
			}
			if len(ids) != 1 {
				c.unmatched++
				continue
			}
			cmd, found := sent[ids[0]]
			switch {
			case !found:
				c.unmatched++
			case seen[ids[0]]:
				c.duplicate++
			case !strings.Contains(text, expect[cmd.kind]) || (cmd.kind == verifyMember && strings.Contains(text, "NOT VERIFIED")):
				c.wrong++
				if c.example == "" {
					c.example = fmt.Sprintf("reply to %s lacks %q:\n%s", ids[0], expect[cmd.kind], text)
				}
			default:
				c.ok++
			}
			seen[ids[0]] = true
		}
	}
	c.missing = len(sent) - len(seen)
	return c, nil
}

// latencyTarget is something that answers a verify: the bot over one of
// its intakes, or the peer.
type latencyTarget struct {
	name string // imap, lmtp, peer
	to   string // the address the verify goes to
}

func (t latencyTarget) what() string {
	if t.name == "peer" {
		return "naive peer"
	}
	return "bot over " + strings.ToUpper(t.name)
}

func (t latencyTarget) String() string { return t.name }

// latency runs rounds of a plain message to a plain mailbox, then a verify
// to each target, each waited for before the next is sent, and returns
// the submission-to-visible times.
func latency(ctx context.Context, stack *mailstack.Stack, b runBoxes, rounds int, target string, targets []latencyTarget, stamp int64, r int) (bot map[string][]time.Duration, plainLat []time.Duration, err error) {
	deskC, err := login(ctx, stack.IMAPAddr, b.desk)
	if err != nil {
		return nil, nil, err
	}
	defer deskC.Close()
	plainC, err := login(ctx, stack.IMAPAddr, b.plain)
	if err != nil {
		return nil, nil, err
	}
	defer plainC.Close()
	for _, c := range []*imapclient.Client{deskC, plainC} {
		if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return nil, nil, fmt.Errorf("EXAMINE INBOX: %w", err)
		}
	}
	bot = map[string][]time.Duration{}
	for i := range rounds {
		id := fmt.Sprintf("ping-%d-r%d-%d@elsewhere.test", stamp, r, i)
		d, err := timeToVisible(ctx, stack.SMTPAddr, plainC, outMsg{from: b.visitor, to: b.plain, raw: plain(b.visitor, b.plain, id)})
		if err != nil {
			return nil, nil, fmt.Errorf("plain message %d: %w", i, err)
		}
		plainLat = append(plainLat, d)
		for _, t := range targets {
			id = fmt.Sprintf("desk-%d-r%d-%s-%d@sp0.test", stamp, r, t.name, i)
			raw := thunderbird(envelope{From: b.desk, To: t.to, Subject: "Visitor at the front desk", MessageID: id},
				"Hi,\n\nverify "+target+"\n\nThanks!")
			d, err = timeToVisible(ctx, stack.SMTPAddr, deskC, outMsg{from: b.desk, to: t.to, raw: raw})
			if err != nil {
				return nil, nil, fmt.Errorf("verify %d to the %s: %w", i, t.what(), err)
			}
			bot[t.name] = append(bot[t.name], d)
			// Let the bot finish its round (mark, move, search) and go
			// back to waiting: the front desk's message finds it idle.
			time.Sleep(200 * time.Millisecond)
		}
	}
	return bot, plainLat, nil
}

// timeToVisible submits m on a new connection and polls c's mailbox with
// NOOP every 5 ms until it holds one more message.
func timeToVisible(ctx context.Context, smtpAddr string, c *imapclient.Client, m outMsg) (time.Duration, error) {
	if err := c.Noop().Wait(); err != nil {
		return 0, err
	}
	before := numMessages(c, 0)
	start := time.Now()
	if err := sendOne(ctx, smtpAddr, m); err != nil {
		return 0, err
	}
	for numMessages(c, before) <= before {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no new message after %v: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-c.Closed():
			return 0, errors.New("IMAP connection closed")
		case <-time.After(5 * time.Millisecond):
		}
		if err := c.Noop().Wait(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// percentile is the nearest-rank percentile p of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// report prints the table of every run and the medians, then one
// name=value line per figure (the medians).
func report(w io.Writer, o options, runs []runResult, extra runResult, zeroNote string) {
	var shapes []string
	for _, s := range o.shapes {
		shapes = append(shapes, s.name)
	}
	fmt.Fprintf(w, "\nmailbench: N=%d, %d runs, shapes %s, intakes %s, bot SMTP connections=%d, submission connections=%d, %d managers, store of %d members in %d spaces, %d cores\n",
		o.n, len(runs), strings.Join(shapes, ","), strings.Join(o.intakes, ","), o.conns, o.submitConns, o.managers, o.members, o.spaces, runtime.NumCPU())
	fmt.Fprintf(w, "config: %s\n\n", zeroNote)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "figure\t"
	for i := range runs {
		header += fmt.Sprintf("run %d\t", i+1)
	}
	fmt.Fprintln(tw, header+"median\tunit\t")
	var names []string
	values := map[string][]float64{}
	meta := map[string]figure{}
	for _, r := range runs {
		for _, f := range r {
			if _, ok := meta[f.name]; !ok {
				names = append(names, f.name)
				meta[f.name] = f
			}
			values[f.name] = append(values[f.name], f.value)
		}
	}
	medians := map[string]float64{}
	for _, n := range names {
		line := n + "\t"
		for _, v := range values[n] {
			line += num(v) + "\t"
		}
		medians[n] = median(values[n])
		fmt.Fprintln(tw, line+num(medians[n])+"\t"+meta[n].unit+"\t")
	}
	for _, f := range extra {
		names = append(names, f.name)
		meta[f.name] = f
		medians[f.name] = f.value
		fmt.Fprintln(tw, f.name+"\t"+strings.Repeat("\t", len(runs))+num(f.value)+"\t"+f.unit+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	beside(w, o, medians)
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "  %-40s %s\n", n, meta[n].what)
	}
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "%s=%s\n", n, num(medians[n]))
	}
}

// beside prints the bot's figures next to the stack's own (medians).
func beside(w io.Writer, o options, m map[string]float64) {
	fmt.Fprintln(w, "beside the stack's own limit (medians):")
	for _, s := range o.shapes {
		for _, in := range o.intakes {
			n := in + "_" + s.name
			fmt.Fprintf(w, "  %-10s limit %s cmd/s | burst %s cmd/s, ratio %s (%s/%d replies ok)\n", n, num(m["limit_"+n+"_msgs_per_s"]),
				num(m["burst_"+n+"_msgs_per_s"]), num(m["burst_"+n+"_ratio"]), num(m["burst_"+n+"_replies_ok"]), o.n)
		}
	}
	line := fmt.Sprintf("  front desk: plain delivery p50 %s ms", num(m["delivery_p50_ms"]))
	for _, t := range []string{"imap", "lmtp", "peer"} {
		if v, ok := m["latency_"+t+"_p50_ms"]; ok {
			line += fmt.Sprintf(" | %s verify p50 %s ms", t, num(v))
		}
	}
	fmt.Fprintln(w, line)
}

func num(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e9:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
