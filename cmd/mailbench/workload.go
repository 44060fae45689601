package main

import (
	"fmt"
	"math/rand/v2"
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

// runBoxes are the mailboxes of one run.
type runBoxes struct {
	bot      string   // the bot's inbox for the burst and latency phases
	limitBot string   // stands in for the bot's inbox while measuring the limit
	managers []string // burst senders; manager k manages space k
	limitMgr []string // receive the limit's reply-sized messages
	sink     string   // receives the plain SMTP client's submissions
	desk     string   // the front desk of the latency phase (manages space 0)
	plain    string   // receives plain messages for the stack's own latency
	visitor  string   // sends plain messages
}

func boxesFor(r, managers int) runBoxes {
	b := runBoxes{
		bot:      fmt.Sprintf("visa-r%d@visa.test", r),
		limitBot: fmt.Sprintf("limit-r%d@visa.test", r),
		sink:     fmt.Sprintf("sink-r%d@visa.test", r),
		desk:     fmt.Sprintf("desk-r%d@sp0.test", r),
		plain:    fmt.Sprintf("plain-r%d@visa.test", r),
		visitor:  fmt.Sprintf("visitor-r%d@elsewhere.test", r),
	}
	for k := range managers {
		b.managers = append(b.managers, fmt.Sprintf("mgr-r%d-%d@sp%d.test", r, k, k))
		b.limitMgr = append(b.limitMgr, fmt.Sprintf("lmgr-r%d-%d@sp%d.test", r, k, k))
	}
	return b
}

func (b runBoxes) all() []string {
	out := []string{b.bot, b.limitBot, b.sink, b.desk, b.plain, b.visitor}
	out = append(out, b.managers...)
	return append(out, b.limitMgr...)
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

// burstMessages composes n command messages for run r: 40% verify of a
// member, 10% verify of a stranger, 25% add member, 25% update member, from
// the run's managers in turn, in Thunderbird, Gmail and Outlook styles.
func burstMessages(r, n int, b runBoxes, members, spaces int, rng *rand.Rand, stamp int64) []command {
	out := make([]command, n)
	for i := range n {
		k := i % len(b.managers)
		from := b.managers[k]
		var kd kind
		switch x := rng.IntN(100); {
		case x < 40:
			kd = verifyMember
		case x < 50:
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
			body = fmt.Sprintf("Hi,\n\nverify walk-in-%d-%d@elsewhere.test\n\nThanks!", r, i)
		case addMember:
			subject = "New member"
			body = fmt.Sprintf("Hello,\n\nadd member new-r%d-%d@newcomers.test name=\"New Person %d\" until=2027-12-31\n\nBest,", r, i, i)
		case updateMember:
			subject = "Roster change"
			target := memberAddr(k+spaces*rng.IntN(perSpace), spaces)
			body = fmt.Sprintf("Hello,\n\nupdate member %s name=\"Renamed %d %d\"\n\nBest,", target, r, i)
		}
		id := fmt.Sprintf("bench-%d-r%d-%d@%s", stamp, r, i, domainOf(from))
		e := envelope{From: from, To: b.bot, Subject: subject, MessageID: id}
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
func seedStore(path string, members, spaces, runs, managers int) (time.Duration, int64, error) {
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
		for r := 1; r <= runs; r++ {
			b := boxesFor(r, managers)
			for k, m := range b.managers {
				if err := tx.AddManager(storage.Manager{Email: m, Space: spaceID(k), Added: now}); err != nil {
					return err
				}
			}
			if err := tx.AddManager(storage.Manager{Email: b.desk, Space: spaceID(0), Added: now}); err != nil {
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
