package main

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// The benchmark's world. The store holds -members members spread round-robin
// over -spaces spaces (member i is in space i mod spaces); run r has its own
// mailboxes, so no run reads another's mail and every inbox starts empty.

const (
	password  = "bench-pw"
	adminAddr = "admin@visa.test"
	botName   = "Coworking Visa"
)

func spaceID(k int) string            { return fmt.Sprintf("sp%d", k) }
func memberAddr(i, spaces int) string { return fmt.Sprintf("m%d@sp%d.test", i, i%spaces) }

// shape is a kind of burst traffic.
type shape struct {
	name string
	// senders is how many people send the burst: managers, each managing
	// one space (space k for sender k).
	senders int
	// frontDesk: every message is a verify (80% of a member, 20% of a
	// stranger), as from one host at a front desk; otherwise the managers'
	// mix (see burstMessages).
	frontDesk bool
}

// shapeNamed is the shape of a -shapes entry: "many" (-managers managers,
// mixed commands) or "one" (one host, verify only).
func shapeNamed(name string, managers int) (shape, error) {
	switch name {
	case "many":
		return shape{name: name, senders: managers}, nil
	case "one":
		return shape{name: name, senders: 1, frontDesk: true}, nil
	}
	return shape{}, fmt.Errorf("unknown shape %q (want many or one)", name)
}

// Intakes: how command mail reaches the bot.
const (
	intakeIMAP = "imap" // Dovecot's mailbox, read over IMAP
	intakeLMTP = "lmtp" // Postfix delivers to the daemon's LMTP listener
)

// runBoxes are the mailboxes of one run.
type runBoxes struct {
	r       int
	sink    string // receives the plain SMTP client's submissions
	desk    string // the front desk of the latency phase (manages space 0)
	plain   string // receives plain messages for the stack's own latency
	visitor string // sends plain messages
	latBot  string // the bot of the latency phase: its IMAP mailbox
	latLMTP string // the same bot's alias, routed to its LMTP listener
	peer    string // the naive poller's mailbox
}

func boxesFor(r int) runBoxes {
	return runBoxes{
		r:       r,
		sink:    fmt.Sprintf("sink-r%d@visa.test", r),
		desk:    fmt.Sprintf("desk-r%d@sp0.test", r),
		plain:   fmt.Sprintf("plain-r%d@visa.test", r),
		visitor: fmt.Sprintf("visitor-r%d@elsewhere.test", r),
		latBot:  fmt.Sprintf("visa-r%d-lat@visa.test", r),
		latLMTP: fmt.Sprintf("visa-r%d-lat-lmtp@visa.test", r),
		peer:    fmt.Sprintf("peer-r%d@visa.test", r),
	}
}

// limitBoxes stand in for the bot and its correspondents while the
// stack's own limit is measured for an intake and a shape.
type limitBoxes struct {
	bot string   // the command messages' inbox, drained as the bot would; or routed to an LMTP sink
	to  []string // receive the reply-sized messages, as the senders would
}

func (b runBoxes) limit(intake string, s shape) limitBoxes {
	l := limitBoxes{bot: fmt.Sprintf("limit-r%d-%s-%s@visa.test", b.r, intake, s.name)}
	for k := range s.senders {
		l.to = append(l.to, fmt.Sprintf("lmgr-r%d-%s-%s-%d@sp%d.test", b.r, intake, s.name, k, k))
	}
	return l
}

// burstBoxes are the bot and the senders of one burst.
type burstBoxes struct {
	bot     string   // the bot's address: its IMAP mailbox, or routed to its LMTP listener
	senders []string // sender k manages space k
}

func (b runBoxes) burst(intake string, s shape) burstBoxes {
	bb := burstBoxes{bot: fmt.Sprintf("visa-r%d-%s-%s@visa.test", b.r, intake, s.name)}
	for k := range s.senders {
		bb.senders = append(bb.senders, fmt.Sprintf("mgr-r%d-%s-%s-%d@sp%d.test", b.r, intake, s.name, k, k))
	}
	return bb
}

// outboxTo are the recipients of the outbox's own measure: n of them.
func (b runBoxes) outboxTo(n int) []string {
	var out []string
	for k := range n {
		out = append(out, fmt.Sprintf("out-r%d-%d@visa.test", b.r, k))
	}
	return out
}

// mailboxes are the run's Dovecot users: every address mail is delivered
// to or read from over IMAP (LMTP bots' addresses go to the bot instead).
func (b runBoxes) mailboxes(intakes []string, shapes []shape, managers int) []string {
	out := append([]string{b.sink, b.desk, b.plain, b.visitor, b.latBot, b.peer}, b.outboxTo(managers)...)
	for _, s := range shapes {
		for _, in := range intakes {
			l, bb := b.limit(in, s), b.burst(in, s)
			if in == intakeIMAP {
				out = append(out, l.bot, bb.bot)
			}
			out = append(append(out, l.to...), bb.senders...)
		}
	}
	return out
}

// lmtpRoutes are the run's addresses Postfix hands to the daemon's LMTP
// listener.
func (b runBoxes) lmtpRoutes(intakes []string, shapes []shape) []string {
	out := []string{b.latLMTP}
	if slices.Contains(intakes, intakeLMTP) {
		for _, s := range shapes {
			out = append(out, b.limit(intakeLMTP, s).bot, b.burst(intakeLMTP, s).bot)
		}
	}
	return out
}

// managers are the run's senders the store knows as managers, each with
// the space they manage.
func (b runBoxes) managers(intakes []string, shapes []shape) map[string]string {
	m := map[string]string{b.desk: spaceID(0)}
	for _, s := range shapes {
		for _, in := range intakes {
			for k, a := range b.burst(in, s).senders {
				m[a] = spaceID(k)
			}
		}
	}
	return m
}

// kind is the command a burst message carries.
type kind int

const (
	verifyMember   kind = iota // an active member: VERIFIED
	verifyStranger             // nobody: NOT VERIFIED
	addMember
	updateMember
)

// expect is the start of the result line each kind must get.
var expect = map[kind]string{
	verifyMember:   "VERIFIED: ",
	verifyStranger: "NOT VERIFIED: ",
	addMember:      "OK: added ",
	updateMember:   "OK: updated ",
}

// command is one burst message: who sends it, its id and what it must get.
type command struct {
	from, id string
	kind     kind
	raw      []byte
}

// burstMessages composes n command messages for run r to bot, from the
// senders in turn, in Thunderbird, Gmail and Outlook styles. The managers'
// mix is 40% verify of a member, 10% verify of a stranger, 25% add member,
// 25% update member; the front desk's is 80% verify of a member, 20% of a
// stranger.
// tag names the burst, so that no two bursts add the same address or
// reuse a Message-ID.
func burstMessages(tag string, n int, bot string, senders []string, s shape, members, spaces int, rng *rand.Rand, stamp int64) []command {
	out := make([]command, n)
	for i := range n {
		k := i % len(senders)
		from := senders[k]
		var kd kind
		switch x := rng.IntN(100); {
		case s.frontDesk && x < 80, !s.frontDesk && x < 40:
			kd = verifyMember
		case s.frontDesk, x < 50:
			kd = verifyStranger
		case x < 75:
			kd = addMember
		default:
			kd = updateMember
		}
		perSpace := members / spaces // members of space k: k, k+spaces, ...
		if perSpace == 0 && (kd == verifyMember || kd == updateMember) {
			kd = addMember
		}
		var subject, body string
		switch kd {
		case verifyMember:
			subject = "Visitor at the front desk"
			body = fmt.Sprintf("Hi,\n\nverify %s\n\nThanks!", memberAddr(rng.IntN(members), spaces))
		case verifyStranger:
			subject = "Visitor at the front desk"
			body = fmt.Sprintf("Hi,\n\nverify walk-in-%s-%d@elsewhere.test\n\nThanks!", tag, i)
		case addMember:
			subject = "New member"
			body = fmt.Sprintf("Hello,\n\nadd member new-%s-%d@newcomers.test name=\"New Person %d\" until=2027-12-31\n\nBest,", tag, i, i)
		case updateMember:
			subject = "Roster change"
			target := memberAddr(k+spaces*rng.IntN(perSpace), spaces)
			body = fmt.Sprintf("Hello,\n\nupdate member %s name=\"Renamed %s %d\"\n\nBest,", target, tag, i)
		}
		id := fmt.Sprintf("bench-%d-%s-%d@%s", stamp, tag, i, domainOf(from))
		e := envelope{From: from, To: bot, Subject: subject, MessageID: id}
		var raw []byte
		switch i % 3 {
		case 0:
			raw = thunderbird(e, body)
		case 1:
			raw = gmail(e, body)
		default:
			raw = outlook(e, body)
		}
		out[i] = command{from: from, id: id, kind: kd, raw: raw}
	}
	return out
}

// replyLike renders n messages as the bot renders its replies (same
// templates, same go-mail rendering), with the burst's mix of results, to
// the limit's stand-in managers.
func replyLike(n int, from string, to []string, rng *rand.Rand) ([][]byte, error) {
	tmpl, err := templates.New("")
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i := range n {
		var e templates.Entry
		switch x := rng.IntN(100); {
		case x < 40:
			e = templates.Entry{Command: fmt.Sprintf("verify m%d@sp%d.test", i, i%100), Status: "VERIFIED",
				Text: fmt.Sprintf("m%d@sp%d.test is Member %d, a member of Space %d (Berlin, DE).", i, i%100, i, i%100)}
		case x < 50:
			e = templates.Entry{Command: fmt.Sprintf("verify walk-in-%d@elsewhere.test", i), Status: "NOT VERIFIED",
				Text: fmt.Sprintf("walk-in-%d@elsewhere.test is not an active member of a participating space.", i)}
		case x < 75:
			e = templates.Entry{Command: fmt.Sprintf("add member new-%d@newcomers.test name=\"New Person %d\" until=2027-12-31", i, i), Status: "OK",
				Text: fmt.Sprintf("added New Person %d <new-%d@newcomers.test> (active, until 2027-12-31) to sp%d.", i, i, i%100)}
		default:
			e = templates.Entry{Command: fmt.Sprintf("update member m%d@sp%d.test name=\"Renamed %d\"", i, i%100, i), Status: "OK",
				Text: fmt.Sprintf("updated name of m%d@sp%d.test: Renamed %d <m%d@sp%d.test> (active).", i, i%100, i, i, i%100)}
		}
		text, html, err := tmpl.Reply(templates.Reply{BotName: botName, BotAddress: from, Entries: []templates.Entry{e},
			Ignored: []string{"Hi,", "Thanks!"}, MaxCmds: 100, Summary: "1 command: 1 " + e.Status + "."})
		if err != nil {
			return nil, err
		}
		raw, _, err := reply.Render(reply.Message{From: from, FromName: botName, To: to[i%len(to)],
			Subject: "Re: Visitor at the front desk", InReplyTo: fmt.Sprintf("limit-%d@sp0.test", i),
			Text: text, HTML: html, Date: time.Now(), AutoSubmitted: "auto-replied"})
		if err != nil {
			return nil, err
		}
		out[i] = raw
	}
	return out, nil
}

// seedStore writes the spaces, every run's managers and the members, 100k
// records per transaction (one fsync each).
func seedStore(path string, members, spaces int, managers map[string]string) (time.Duration, int64, error) {
	start := time.Now()
	db, err := storage.Open(path)
	if err != nil {
		return 0, 0, err
	}
	now := time.Now().UTC()
	err = db.Update(func(tx *storage.Tx) error {
		for k := range spaces {
			if err := tx.PutSpace(storage.Space{ID: spaceID(k), Name: fmt.Sprintf("Space %d", k), City: "Berlin", Country: "DE",
				Created: now, Updated: now}); err != nil {
				return err
			}
		}
		for _, m := range slices.Sorted(maps.Keys(managers)) {
			if err := tx.AddManager(storage.Manager{Email: m, Space: managers[m], Added: now}); err != nil {
				return err
			}
		}
		return nil
	})
	const per = 100_000
	for lo := 0; err == nil && lo < members; lo += per {
		err = db.Update(func(tx *storage.Tx) error {
			for i := lo; i < min(lo+per, members); i++ {
				if err := tx.PutMember(storage.Member{Space: spaceID(i % spaces), Email: memberAddr(i, spaces),
					Name: fmt.Sprintf("Member %d", i), Status: storage.StatusActive, Added: now, Updated: now}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("seed store: %w", err)
	}
	return time.Since(start), fileSize(path), nil
}
