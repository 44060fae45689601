package itest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
	"github.com/coworkingvisa/mailbot/storage"
)

// The chaos test proves the spine's central promise under the failures a
// real deployment sees: every message's commands take effect exactly once and
// every message gets at least one reply, while the daemon is killed with
// SIGKILL at random moments and Dovecot and Postfix each go away mid-burst.
//
// Short form (go test, .ci/run): 150 messages from 4 managers, 3 kills.
// Long form (scripts/chaos, MAILBOT_CHAOS=long): 600 messages from 6
// managers, 12 kills. MAILBOT_CHAOS_SEED replays a run's random choices.

// chaosPlan is the size of one run.
type chaosPlan struct {
	messages, managers, kills int
	rate                      float64       // messages submitted per second
	settle                    time.Duration // how long replies may take after the burst
}

func chaosPlanFromEnv() chaosPlan {
	if os.Getenv("MAILBOT_CHAOS") == "long" {
		return chaosPlan{messages: 600, managers: 6, kills: 12, rate: 12, settle: 4 * time.Minute}
	}
	return chaosPlan{messages: 150, managers: 4, kills: 3, rate: 10, settle: 90 * time.Second}
}

// chaosWorld is the bot, its admin and the managers of one chaos run: one
// space each.
type chaosWorld struct {
	bot, admin string
	managers   []string
	spaces     []string
}

// chaosBody is message n's commands. Applied once, they leave
// chaos-n@ a member and chaos-n-x@ added and removed: one add and one remove
// of chaos-n-x@ and one add of chaos-n@ in the audit trail. Applied twice,
// the second run adds and removes chaos-n-x@ again (two adds in the audit)
// and fails to add chaos-n@ (an ERROR in the reply). Applied partly, one of
// the three records is missing.
func chaosBody(n int, space string) string {
	return fmt.Sprintf("Hello bot,\n\nadd member chaos-%d-x@%s.test\nremove member chaos-%d-x@%s.test\n"+
		"add member chaos-%d@%s.test name=\"Chaos %d\"\n\nthanks\n", n, space, n, space, n, space, n)
}

func chaosMessageID(n int) string { return fmt.Sprintf("chaos-%d@chaos.test", n) }

// chaosDomain is the mail domain of manager i, whose mail is signed.
func chaosDomain(i int) string { return fmt.Sprintf("space%d.test", i) }

func TestChaos(t *testing.T) {
	plan := chaosPlanFromEnv()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MAILBOT_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MAILBOT_CHAOS_SEED: %v", err)
		}
		seed = v
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	t.Logf("chaos: seed %d (MAILBOT_CHAOS_SEED=%d replays the schedule), %d messages from %d managers, %d kills",
		seed, seed, plan.messages, plan.managers, plan.kills)

	w := chaosWorld{bot: "visa-chaos@visa.test", admin: "admin-chaos@visa.test"}
	for i := range plan.managers {
		w.spaces = append(w.spaces, fmt.Sprintf("space%d", i))
		w.managers = append(w.managers, fmt.Sprintf("mgr%d-chaos@%s", i, chaosDomain(i)))
	}
	addUsers(t, append([]string{w.bot, w.admin}, w.managers...)...)

	dir := t.TempDir()
	store := filepath.Join(dir, "visa.db")
	cfg := writeBotConfig(t, botConfig{bot: w.bot, admin: w.admin, store: store, adjust: func(c *config.Config) {
		// Hundreds of messages per manager within minutes: the hourly
		// limit is not what this test is about.
		c.Limits.RepliesPerSenderPerHour = 100000
	}})
	b := startBotConfig(t, cfg)
	runs := []*bot{b}

	// The network: one space and one manager each, set up by email.
	var setup strings.Builder
	for i, sp := range w.spaces {
		fmt.Fprintf(&setup, "add space %s name=\"Chaos %d\"\nadd manager %s space=%s\n", sp, i, w.managers[i], sp)
	}
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "chaos setup"}, setup.String()))
	r := waitMail(t, w.admin, "INBOX", 1)[0]
	mustContain(t, r, fmt.Sprintf("%d commands: %d OK.", 2*plan.managers, 2*plan.managers))
	welcomed(t, w.managers...)
	if t.Failed() {
		t.FailNow()
	}

	// The burst, paced so that the chaos below lands in the middle of it.
	// A submission that fails (Postfix is down) is tried again until it
	// goes through; one that failed after Postfix took it arrives twice,
	// which the bot must handle once as well, like the messages sent twice
	// on purpose.
	start := time.Now()
	burst := time.Duration(float64(plan.messages) / plan.rate * float64(time.Second))
	var resubmits int
	sendErr := make(chan error, 1)
	go func() {
		defer close(sendErr)
		ctx, cancel := context.WithTimeout(context.Background(), burst+plan.settle)
		defer cancel()
		for n := range plan.messages {
			// In clumps of 10, so that the bot has a backlog to be
			// killed in the middle of.
			time.Sleep(time.Until(start.Add(time.Duration(float64(n-n%10) / plan.rate * float64(time.Second)))))
			i := n % plan.managers
			raw, err := keys.Sign(thunderbird(envelope{From: w.managers[i], To: w.bot, Subject: fmt.Sprintf("chaos %d", n),
				MessageID: chaosMessageID(n)}, chaosBody(n, w.spaces[i])))
			if err != nil {
				sendErr <- fmt.Errorf("message %d: %w", n, err)
				return
			}
			// Every 25th message arrives twice, as after a relay's retry.
			copies := 1
			if n%25 == 7 {
				copies = 2
			}
			for range copies {
				for {
					err := stack.Send(ctx, w.managers[i], []string{w.bot}, raw)
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						sendErr <- fmt.Errorf("message %d not submitted: %v", n, err)
						return
					}
					resubmits++
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
	}()

	// The chaos: kills at random moments, half of them in the middle of a
	// send, a short Dovecot outage, and the submission server (Postfix)
	// refusing connections for 10 s, in random order, spread over the
	// burst and just after it.
	events := []string{"dovecot", "postfix"}
	for k := range plan.kills {
		events = append(events, []string{"kill", "kill-send"}[k%2])
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	span := burst + burst/4
	at := make([]time.Duration, len(events))
	for i := range at {
		at[i] = time.Duration(rng.Int64N(int64(span)))
	}
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	ctx := context.Background()
	kills, outages := 0, 0
	// killAfter kills the bot as soon as its log shows one more line with
	// mark than now (within 2 s), a few milliseconds later, wherever it
	// is then.
	killAfter := func(mark, what string) {
		busy := time.Now().Add(2 * time.Second)
		for n := strings.Count(b.log.String(), mark); time.Now().Before(busy); {
			if strings.Count(b.log.String(), mark) > n {
				break
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		b.kill()
		kills++
		t.Logf("chaos: %5.1fs kill -9 #%d (%s)", time.Since(start).Seconds(), kills, what)
		b = startBotConfig(t, cfg)
		runs = append(runs, b)
	}
	var serversBack time.Time // when the last outage ended
	for i, ev := range events {
		time.Sleep(time.Until(start.Add(at[i])))
		switch ev {
		case "kill":
			killAfter("message handled", "after handling a message")
		case "kill-send":
			killAfter("outbox: sending", "while sending a reply")
		case "dovecot":
			t.Logf("chaos: %5.1fs Dovecot down", time.Since(start).Seconds())
			if err := stack.StopDovecot(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(800+rng.IntN(1200)) * time.Millisecond)
			if err := stack.StartDovecot(ctx); err != nil {
				t.Fatal(err)
			}
			if err := stack.FlushQueue(ctx); err != nil {
				t.Fatal(err)
			}
			outages++
			serversBack = time.Now()
			t.Logf("chaos: %5.1fs Dovecot up", time.Since(start).Seconds())
		case "postfix":
			// The bot's submission server refuses every connection for
			// 10 s: replies wait in the outbox, and must all go out soon
			// after it is back, with the default retry schedule.
			t.Logf("chaos: %5.1fs Postfix down for 10 s", time.Since(start).Seconds())
			if err := stack.StopPostfix(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Second)
			if err := stack.StartPostfix(ctx); err != nil {
				t.Fatal(err)
			}
			outages++
			serversBack = time.Now()
			t.Logf("chaos: %5.1fs Postfix up", time.Since(start).Seconds())
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos: %5.1fs burst submitted (%d submissions retried)", time.Since(start).Seconds(), resubmits)

	// Now the servers are back (the last outage ended at serversBack) and
	// the burst is in. Every message must have its reply within a minute:
	// a reply never waits minutes for nothing. The default config's retry
	// schedule is what is tested here.
	back := time.Now()
	t.Logf("chaos: %5.1fs servers back since %.1fs", time.Since(start).Seconds(), time.Since(serversBack).Seconds())
	deadline := back.Add(time.Minute)
	var replies map[int][]reply
	for {
		replies = chaosReplies(t, w)
		if len(replies) == plan.messages || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := plan.messages - len(replies); n > 0 {
		t.Errorf("%d messages still unanswered a minute after the servers were back and the burst was in", n)
	}
	answeredAfter := time.Since(back)
	t.Logf("chaos: %5.1fs %d of %d messages answered, the last %.1fs after the servers were back and the burst was in",
		time.Since(start).Seconds(), len(replies), plan.messages, answeredAfter.Seconds())
	b.stop()
	if err := stack.FlushQueue(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	replies = chaosReplies(t, w)

	// The store: the audit trail and the rosters.
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type tally struct{ addX, removeX, add int }
	audit := map[int]*tally{}
	byKey := regexp.MustCompile(`^chaos-(\d+)(-x)?@`)
	var stray []string
	err = db.View(func(tx *storage.Tx) error {
		return tx.Changes(0, func(c storage.Change) bool {
			if c.Kind != "member" {
				return true
			}
			m := byKey.FindStringSubmatch(c.Key)
			if m == nil {
				stray = append(stray, fmt.Sprintf("%s %s", c.Action, c.Key))
				return true
			}
			n, _ := strconv.Atoi(m[1])
			if c.MessageID != chaosMessageID(n) {
				stray = append(stray, fmt.Sprintf("%s %s recorded for message %q", c.Action, c.Key, c.MessageID))
			}
			if audit[n] == nil {
				audit[n] = &tally{}
			}
			switch {
			case m[2] != "" && c.Action == "add":
				audit[n].addX++
			case m[2] != "" && c.Action == "remove":
				audit[n].removeX++
			case m[2] == "" && c.Action == "add":
				audit[n].add++
			default:
				stray = append(stray, fmt.Sprintf("%s %s", c.Action, c.Key))
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]bool{}
	db.View(func(tx *storage.Tx) error {
		for _, sp := range w.spaces {
			ms, err := tx.Members(sp)
			if err != nil {
				return err
			}
			for _, m := range ms {
				members[m.Email] = true
			}
		}
		return nil
	})

	lost, doubled, partial, unanswered, dupReplies, badReplies := 0, 0, 0, 0, 0, 0
	var problems []string
	for n := range plan.messages {
		sp := w.spaces[n%plan.managers]
		a := audit[n]
		if a == nil {
			a = &tally{}
		}
		switch {
		case *a == tally{}:
			lost++
			problems = append(problems, fmt.Sprintf("message %d: no effect at all (lost)", n))
		case a.addX > 1 || a.removeX > 1 || a.add > 1:
			doubled++
			problems = append(problems, fmt.Sprintf("message %d: applied more than once: %+v", n, *a))
		case *a != tally{1, 1, 1}:
			partial++
			problems = append(problems, fmt.Sprintf("message %d: applied in part: %+v", n, *a))
		}
		if !members[fmt.Sprintf("chaos-%d@%s.test", n, sp)] || members[fmt.Sprintf("chaos-%d-x@%s.test", n, sp)] {
			problems = append(problems, fmt.Sprintf("message %d: the roster is wrong", n))
		}
		rs := replies[n]
		if len(rs) == 0 {
			unanswered++
			problems = append(problems, fmt.Sprintf("message %d: no reply", n))
			continue
		}
		first := rs[0]
		want := fmt.Sprintf("OK: added Chaos %d <chaos-%d@%s.test>", n, n, sp)
		if !strings.Contains(first.Text, want) || !strings.Contains(first.Text, "3 commands: 3 OK") {
			badReplies++
			problems = append(problems, fmt.Sprintf("message %d: the reply lacks %q or reports an error:\n%s", n, want, first.Text))
		}
		for _, again := range rs[1:] {
			dupReplies++
			if !bytes.Equal(botPart(again.Raw), botPart(first.Raw)) {
				problems = append(problems, fmt.Sprintf("message %d: a second reply differs from the first (Message-ID %s vs %s)",
					n, again.Header.Get("Message-ID"), first.Header.Get("Message-ID")))
			}
		}
	}
	for _, s := range stray {
		problems = append(problems, "unexpected audit record: "+s)
	}
	// How often the exactly-once record was what stopped a second
	// application: deliveries seen again after a kill, and duplicates.
	rehandled := 0
	for _, r := range runs {
		rehandled += strings.Count(r.log.String(), "message already handled")
	}
	t.Logf("chaos: %d kills, %d outages, %d messages, %d resubmitted, %d handled again and recognised, lost %d, doubled %d, partial %d, unanswered %d, duplicate replies %d, wrong replies %d",
		kills, outages, plan.messages, resubmits, rehandled, lost, doubled, partial, unanswered, dupReplies, badReplies)
	fmt.Printf("chaos: rounds=%d messages=%d lost=%d doubled=%d dup_replies=%d (outages=%d partial=%d unanswered=%d rehandled=%d seed=%d)\n",
		kills, plan.messages, lost, doubled, dupReplies, outages, partial, unanswered, rehandled, seed)
	for i, p := range problems {
		if i == 30 {
			t.Errorf("... and %d more problems", len(problems)-30)
			break
		}
		t.Error(p)
	}
}

// chaosReplies reads the managers' mailboxes and groups the bot's replies by
// the chaos message they answer (In-Reply-To).
func chaosReplies(t *testing.T, w chaosWorld) map[int][]reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[int][]reply{}
	re := regexp.MustCompile(`^<chaos-(\d+)@chaos\.test>$`)
	for _, m := range w.managers {
		raws, err := stack.WaitForMessages(ctx, m, password, "INBOX", 0)
		if err != nil {
			t.Fatalf("reading %s: %v", m, err)
		}
		for _, raw := range raws {
			r := parseReply(t, raw)
			g := re.FindStringSubmatch(r.Header.Get("In-Reply-To"))
			if g == nil {
				t.Errorf("%s got mail that answers no chaos message:\n%s", m, raw)
				continue
			}
			n, _ := strconv.Atoi(g[1])
			out[n] = append(out[n], r)
		}
	}
	return out
}

// botPart is a received message without the fields that the way in put on
// top (Return-Path, Delivered-To, Received, the milters'
// Authentication-Results): the bytes the bot wrote.
func botPart(raw []byte) []byte {
	return withoutLeading(raw, "return-path", "delivered-to", "received", "authentication-results")
}

// withoutLeading is raw without the header fields of the given lower-case
// names that stand on top of it, before any field of another name.
func withoutLeading(raw []byte, names ...string) []byte {
	rest := raw
	skipping := false
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i+1]
		cont := line[0] == ' ' || line[0] == '\t'
		name := strings.ToLower(string(line[:max(0, bytes.IndexByte(line, ':'))]))
		if cont && skipping || !cont && slices.Contains(names, name) {
			skipping = true
			rest = rest[i+1:]
			continue
		}
		break
	}
	return rest
}

// addUsers adds mailboxes to the shared stack, all at once (each waits for
// Dovecot's next look at its passwd-file).
func addUsers(t *testing.T, addrs ...string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(addrs))
	for i, a := range addrs {
		wg.Go(func() { errs[i] = stack.AddUser(a, password) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// botConfig is the bot of one test on the shared stack.
type botConfig struct {
	bot, admin, store string
	// smtpAddr is where replies go: the stack's Postfix when "".
	smtpAddr string
	// adjust changes what the test is about; nil runs the defaults.
	adjust func(*config.Config)
}

// writeBotConfig writes the config of a bot on the shared stack: the
// defaults of config.Default() (package botconfig), then adjust.
func writeBotConfig(t *testing.T, c botConfig) string {
	t.Helper()
	if c.smtpAddr == "" {
		c.smtpAddr = stack.SMTPAddr
	}
	cfg, err := botconfig.New(botconfig.Stack{Bot: c.bot, Admin: c.admin, IMAPAddr: stack.IMAPAddr, SMTPAddr: c.smtpAddr,
		Store: c.store, AuthservID: authservID})
	if err != nil {
		t.Fatal(err)
	}
	if c.adjust != nil {
		c.adjust(cfg)
	}
	path := filepath.Join(filepath.Dir(c.store), fmt.Sprintf("config-%d.yaml", time.Now().UnixNano()))
	if err := botconfig.Write(path, cfg); err != nil {
		t.Fatal(err)
	}
	return path
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
