// Package mailbot is the daemon: the pipeline that handles one command
// email (Bot), and the wiring of the inbox watcher, the store, the outbox
// queue and the digest scheduler around it (Daemon).
//
// One message's way through the pipeline (Bot.Handle), in named stages:
//
//	admit    raw bytes → message.Parse → trust: automatic? once-only fields
//	         repeated? impersonation? sender authenticated?
//	limit    who is it (admin, manager, stranger), and may they get an
//	         answer now (Limiter)
//	commit   ONE store transaction: handled mark + read (the lines to obey)
//	         + execute (commands) + answer (the reply into the outbox)
//
// then the inbox marks the message handled and the outbox sends the reply.
package mailbot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/message"
	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/mailbot/trust"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// Settings are the parts of the configuration the pipeline uses. NewBot
// takes them from config (SettingsFrom); every limit has its default there.
type Settings struct {
	BotAddress string
	BotName    string
	// Aliases are other addresses of the bot's mailbox: mail must name the
	// bot's address or one of these in To or Cc to be acted on.
	Aliases []string
	Admins  []string // lowercased
	Trust   trust.Policy
	Limits  Limits
	// Message bounds the reading of one message.
	Message     message.Limits
	MaxCommands int
	Commands    commands.Limits
	// MaxMessageAge: older mail (by its Date, or its author's DKIM
	// signing time) changes nothing and is answered with an ERROR.
	MaxMessageAge time.Duration
	// MaxReplyBytes caps one reply; a larger answer is shortened.
	MaxReplyBytes int
	// MaxAttempts: a message failing this often is quarantined.
	MaxAttempts int
	// QuarantineMailbox receives messages whose handling kept failing.
	QuarantineMailbox string
	// QuarantineKept: QuarantineMailbox is the directory where the LMTP
	// intake keeps such messages as files (the bot reads no mailbox).
	QuarantineKept bool
	// RejectedMailbox receives forged and automatic mail, and mail set
	// aside unanswered.
	RejectedMailbox string
	// Metrics counts what becomes of each message; nil counts nothing.
	Metrics *metrics.Metrics
	// Language is the network's language (bot.language): of admin
	// notices, and of replies to senders whose space chose none.
	Language string
	// The visa exchange: the zone of spaces that name none (free days
	// are counted in the host's calendar), and after how many days an
	// unconfirmed roster is pointed out (digest.roster_confirm_days).
	DefaultTZ         *time.Location
	RosterConfirmDays int
	// Contact is whom replies tell users to ask (bot.contact, by default
	// the first admin's address); "" names no one.
	Contact string
	// DigestDay and DigestTime are the network's digest slot
	// (digest.weekday, digest.time), told to an admin who adds a space.
	DigestDay, DigestTime string
}

// Bot handles command emails. It is safe for concurrent use.
type Bot struct {
	set      Settings
	db       *storage.DB
	tmpl     *templates.Set
	log      *slog.Logger
	now      func() time.Time
	kick     func() // tells the outbox something was queued
	limiter  *Limiter
	failures *failures

	dropMu   sync.Mutex     // guards dropped and dropLast
	dropped  []droppedReply // replies dropped for good, for the next notice
	dropLast time.Time      // when the last such notice went out

	store storeState // intake paused while the store cannot be written
	// direct sends a notice without the store (which may be what fails);
	// nil sends none. The daemon sets it (SetDirect).
	direct func(to string, raw []byte) error
	// resumed is called when intake resumes (SetResumed).
	resumed func()
}

// NewBot makes a bot over an open store. kick is called after something
// was put in the outbox (may be nil); now is the clock (nil: time.Now).
func NewBot(set Settings, db *storage.DB, tmpl *templates.Set, log *slog.Logger, now func() time.Time, kick func()) *Bot {
	if now == nil {
		now = time.Now
	}
	if kick == nil {
		kick = func() {}
	}
	return &Bot{set: set, db: db, tmpl: tmpl, log: log, now: now, kick: kick,
		limiter: NewLimiter(set.Limits), failures: newFailures(set.MaxAttempts), resumed: func() {}}
}

// incoming is a message that passed admission: an authenticated sender,
// no forgery, no automatic mail.
type incoming struct {
	raw      []byte
	msg      *message.Message
	tooLarge bool   // over the size limit: only the header was read
	sender   string // authenticated, canonical
	keys     []string
	// legacy are the keys older versions recorded the message under (with
	// the address itself): looked up, never written.
	legacy []string
}

// Handle runs one raw message through the pipeline and says what the inbox
// should do with it. Its effects, audit records, reply and the mark that
// it was handled are committed in one transaction, so calling Handle again
// with the same message changes nothing and queues no second reply.
func (b *Bot) Handle(ctx context.Context, raw []byte) inbox.Disposition {
	defer func(start time.Time) { b.set.Metrics.HandlingTime(time.Since(start)) }(time.Now())
	r, d := b.admitted(ctx, raw)
	if r == nil {
		return d
	}
	return b.commitOne(r)
}

// admit decides from the header whether the message may be acted on at
// all: it must be readable, not automatic, hold each once-only field once,
// not impersonate anyone, and come from an authenticated sender. When not,
// d says what to do with it and ok is false. The body is not read here:
// reading it (MIME, charsets, HTML as a browser would show it) costs far
// more than the header, and is spent only on mail the bot will act on.
func (b *Bot) admit(ctx context.Context, raw []byte, key string) (in incoming, d inbox.Disposition, ok bool) {
	head := headerOf(raw)
	msg, err := message.ParseHeader(head, b.set.Message)
	if err != nil {
		return in, b.setAside(metrics.Unreadable, "unreadable message: "+err.Error(), nil), false
	}
	if reason, auto := trust.Automatic(msg.Header, b.set.BotAddress); auto {
		return in, b.setAside(metrics.Automatic, "automatic mail ("+reason+"): not answered", msg), false
	}
	if repeated := trust.RepeatedFields(msg.Header, head); repeated != nil {
		return in, b.setAside(metrics.RepeatedFields, "header fields that may occur once occur more often: "+strings.Join(repeated, ", "), msg), false
	}
	if reason, bad := trust.Impersonation(msg.Header); bad {
		return in, b.setAside(metrics.Impersonation, "impersonation: "+reason, msg), false
	}
	sender, err := trust.AuthenticateMessage(ctx, msg.Header, raw, b.set.Trust)
	if errors.Is(err, trust.ErrDKIMTemporary) {
		// The DNS did not answer: not authenticated now, but perhaps
		// later. The message waits, with growing gaps, and goes to
		// quarantine when it has waited too long.
		return in, b.dnsFailed(key, msg, err), false
	}
	if err != nil {
		return in, b.setAside(metrics.Unauthenticated, "sender not authenticated: "+err.Error(), msg), false
	}
	if sender.Address == b.set.BotAddress {
		return in, b.setAside(metrics.OwnAddress, "mail from the bot's own address", msg), false
	}
	// The exactly-once record names the sender by pseudonym: a sender who
	// asks to be forgotten leaves no address in it.
	return incoming{raw: raw, msg: msg, tooLarge: len(raw) > b.maxBytes(), sender: sender.Address,
		keys: handledKeys(b.db.Pseudonym(sender.Address), msg, raw), legacy: handledKeys(sender.Address, msg, raw)}, d, true
}

// readBody reads the body of the message once the sender may be answered,
// into the Message whose header admit read. A message over the size limit
// keeps its header only: enough to tell the sender why nothing was done.
func (b *Bot) readBody(in *incoming) {
	if in.tooLarge {
		return
	}
	if err := in.msg.ReadBody(in.raw, b.set.Message); err != nil {
		in.tooLarge = errors.Is(err, message.ErrTooLarge) // the only way it fails
	}
}

// maxBytes is the size limit of a message the bot reads.
func (b *Bot) maxBytes() int {
	if n := b.set.Message.MaxBytes; n > 0 {
		return n
	}
	return message.DefaultMaxBytes
}

// errOverBudget ends a transaction that must not write: a stranger over
// their budget.
var errOverBudget = errors.New("over the strangers' budget")

// The commit stage, one transaction per message or per group of them
// (prepare, apply, finish), is in group.go.

// act reads what the sender wrote and meant, carries it out and queues the
// answer, inside the message's transaction. It reports whether an answer
// was queued, and the outcome for the handled record; done gets the same
// for the metrics.
func (b *Bot) act(tx *storage.Tx, in incoming, role role, now time.Time, done *tally) (answered bool, outcome string, err error) {
	l, err := b.languageOf(tx, in.sender)
	if err != nil {
		return false, "", err
	}
	var report commands.Report
	switch refusal, err := b.refusal(l, in, now); {
	case err != nil:
		return false, "", err
	case refusal != "":
		label, err := l.Phrase("label.whole-message", nil)
		if err != nil {
			return false, "", err
		}
		report.Results = []commands.Result{{Command: label, Status: commands.Error, Text: refusal}}
		outcome, done.reason = "refused: "+refusal, metrics.Refused
	default:
		script := b.read(in.msg)
		unread, err := b.unread(l, in.msg)
		if err != nil {
			return false, "", err
		}
		if script.Commands == 0 && len(unread) == 0 && b.answersBot(in.msg) {
			// "Thanks!" to a transcript, or an auto-responder that marks
			// nothing: answering with the help text would only start a
			// conversation between robots.
			done.reason = metrics.NoCommands
			return false, "no commands in a reply to the bot: not answered", nil
		}
		actor := commands.Actor{Address: in.sender, Admin: role.admin}
		env := commands.Env{Now: now, MessageID: in.msg.MessageID, Attachments: attachments(in.msg), Limits: b.set.Commands,
			Printer: l.Printer(), Languages: b.tmpl.Languages(),
			Templates: b.tmpl, Language: b.set.Language, DefaultTZ: b.set.DefaultTZ, RosterConfirmDays: b.set.RosterConfirmDays,
			Contact: b.set.Contact, DigestDay: b.set.DigestDay, DigestTime: b.set.DigestTime}
		if report, err = commands.Execute(tx, actor, env, script); err != nil {
			return false, "", err
		}
		done.reason = metrics.Replied
		done.commands(report)
		report.Results = append(unread, report.Results...)
		outcome = fmt.Sprintf("replied: %d commands, %d lines ignored", len(report.Results), len(report.Ignored))
	}
	v := view{sender: in.sender, now: now}
	if report.Help {
		if v.audience, err = b.audience(tx, in.sender, role, now); err != nil {
			return false, "", err
		}
	}
	if err := b.queueReport(tx, l, in, report, v, now); err != nil {
		return false, "", err
	}
	if err := b.queueNotices(tx, report.Notices, now); err != nil {
		return false, "", err
	}
	return true, outcome, nil
}

// refusal says why nothing in a message may be carried out although its
// sender is authenticated, or "": a message too large to read, one not
// written to the bot (a Bcc, a forward), one too old (a signed mail sent
// again by someone who received it) or dated in the future.
func (b *Bot) refusal(l *templates.Lang, in incoming, now time.Time) (string, error) {
	if in.tooLarge {
		return l.Phrase("too-large", struct{ KiB int }{b.set.Message.MaxBytes / 1024})
	}
	bot := b.set.BotAddress
	if !trust.AddressedTo(in.msg.Header, append([]string{bot}, b.set.Aliases...)...) {
		return l.Phrase("not-addressed", struct{ Bot string }{bot})
	}
	verdict, written := trust.CheckDate(in.msg.Header, in.raw, now, b.set.MaxMessageAge)
	data := struct {
		Written     string
		Days, Hours int
	}{written.UTC().Format("2006-01-02 15:04 UTC"), int(b.set.MaxMessageAge / (24 * time.Hour)), int(b.set.MaxMessageAge / time.Hour)}
	switch verdict {
	case trust.DateMissing:
		return l.Phrase("date-missing", nil)
	case trust.DateTooOld:
		return l.Phrase("date-too-old", data)
	case trust.DateAhead:
		return l.Phrase("date-ahead", data)
	}
	return "", nil
}

// read returns the command lines to obey: the Subject (unless it is the
// bot's own, in a reply to it) and the sender's own lines of the body,
// or, when those hold no command, a reply written below a reply quote.
func (b *Bot) read(msg *message.Message) commands.Script {
	subject := msg.Subject
	if b.answersBot(msg) {
		// "Re: <the bot's subject>" was written by the bot, not the sender:
		// a manager replying "confirm TOKEN" must not re-run the original.
		subject = ""
	}
	script := commands.Parse(subject, message.OwnLines(msg.Text), b.set.MaxCommands)
	if script.Commands == 0 {
		// Nothing above the quote: a reply written below it (Thunderbird's
		// default). The quote itself is never read.
		if below := commands.Parse(subject, message.BelowQuote(msg.Text), b.set.MaxCommands); below.Commands > 0 {
			script = below
		}
	}
	return script
}

// unread reports, as ERROR lines, the parts of a message the bot could not
// read: a body cut at the line limit (unless the sender's own text ended
// before, at a quote or a signature), parts nested too deep, a body that
// could not be decoded at all. A sender must never believe that a command
// the bot did not see was carried out.
func (b *Bot) unread(l *templates.Lang, msg *message.Message) ([]commands.Result, error) {
	var out []commands.Result
	note := func(name string, data any) error {
		label, err := l.Phrase("label.message", nil)
		if err != nil {
			return err
		}
		text, err := l.Phrase(name, data)
		out = append(out, commands.Result{Command: label, Status: commands.Error, Text: text})
		return err
	}
	text := strings.TrimRight(msg.Text, "\n")
	if msg.Truncated && len(message.OwnLines(text)) == strings.Count(text, "\n")+1 {
		if err := note("cut-short", nil); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(msg.Text) == "" && len(msg.Problems) > 0 {
		if err := note("unreadable", struct{ Problem string }{msg.Problems[0]}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setAside logs why a message gets no effect and no reply; why is the
// same for the metrics.
func (b *Bot) setAside(why metrics.Reason, reason string, msg *message.Message) inbox.Disposition {
	b.set.Metrics.Message(metrics.SetAside, why)
	attrs := []any{"reason", reason}
	if msg != nil {
		attrs = append(attrs, "message_id", msg.MessageID, "from", msg.Header.Get("From"), "subject", msg.Subject)
	}
	b.log.Warn("message set aside", attrs...)
	return inbox.Disposition{Action: inbox.SetAside, Mailbox: b.set.RejectedMailbox, Reason: reason}
}

// failed counts an internal failure; after MaxAttempts the message is set
// aside in quarantine so that one bad message cannot stall the inbox.
func (b *Bot) failed(key string, err error) inbox.Disposition {
	n, quarantine := b.failures.internal(key)
	b.log.Error("message handling failed", "attempt", n, "error", err)
	if !quarantine {
		b.set.Metrics.Message(metrics.Deferred, metrics.InternalError)
		return inbox.Disposition{Action: inbox.Leave, Reason: err.Error()}
	}
	b.set.Metrics.Message(metrics.Quarantined, metrics.InternalError)
	return b.quarantine(n, err)
}

// dnsFailed counts a DKIM key look-up that failed for a reason that may
// pass: the message waits, tried again with growing gaps, and goes to
// quarantine after MaxAttempts tries spread over at least an hour.
func (b *Bot) dnsFailed(key string, msg *message.Message, err error) inbox.Disposition {
	n, next, quarantine := b.failures.temporary(key, b.now())
	if !quarantine {
		b.log.Warn("DKIM key look-up failed; the message waits", "message_id", msg.MessageID,
			"attempt", n, "next", next.Format(time.RFC3339), "error", err)
		b.set.Metrics.Message(metrics.Deferred, metrics.DNSUnavailable)
		return inbox.Disposition{Action: inbox.Leave, Reason: "DKIM look-up failed: " + err.Error()}
	}
	b.set.Metrics.Message(metrics.Quarantined, metrics.DNSUnavailable)
	return b.quarantine(n, fmt.Errorf("the DKIM key look-up kept failing: %w", err))
}

func (b *Bot) quarantine(attempts int, err error) inbox.Disposition {
	b.notifyAdmins("quarantine", struct {
		Attempts        int
		Mailbox, Reason string
		Kept            bool
	}{attempts, b.set.QuarantineMailbox, err.Error(), b.set.QuarantineKept})
	b.log.Error("message quarantined", "attempts", attempts, "mailbox", b.set.QuarantineMailbox, "error", err)
	// Quarantine, not SetAside: the message carries none of the bot's
	// keywords there, so an admin who moves it back has it handled again
	// (nothing was committed for it: it never got that far).
	return inbox.Disposition{Action: inbox.Quarantine, Mailbox: b.set.QuarantineMailbox,
		Reason: fmt.Sprintf("failed %d times: %v", attempts, err)}
}

// handledKeys identify a message for the exactly-once record: the sender
// and the Message-ID (or a hash of the content where there is no id), and
// the sender with each DKIM signature the message carries, so that a
// signed message sent again under another Message-ID is still recognised.
// The sender is part of each key so nobody can block another's message by
// reusing its id.
func handledKeys(sender string, msg *message.Message, raw []byte) []string {
	id := msg.MessageID
	if id == "" {
		id = rawKey(contentOf(raw))
	}
	keys := []string{sender + " " + id}
	for _, id := range trust.SignatureIDs(raw) {
		keys = append(keys, sender+" dkim:"+rawKey([]byte(id)))
	}
	return keys
}

// handledAny reports whether any of the keys was handled.
func handledAny(tx *storage.Tx, keys []string) (bool, error) {
	for _, k := range keys {
		if _, done, err := tx.Handled(k); done || err != nil {
			return done, err
		}
	}
	return false, nil
}

// contentOf drops the trace header fields a delivery adds, so two
// deliveries of the same message hash alike.
func contentOf(raw []byte) []byte {
	var out []byte
	lines := strings.SplitAfter(string(raw), "\n")
	inHeader, skipping := true, false
	for _, l := range lines {
		if inHeader {
			if strings.TrimRight(l, "\r\n") == "" {
				inHeader = false
			} else if l[0] == ' ' || l[0] == '\t' {
				if skipping {
					continue
				}
			} else {
				name := strings.ToLower(strings.SplitN(l, ":", 2)[0])
				skipping = name == "received" || name == "return-path" || name == "delivered-to" ||
					name == "x-original-to" || name == "authentication-results"
				if skipping {
					continue
				}
			}
		}
		out = append(out, l...)
	}
	return out
}

func rawKey(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// headerOf returns the header of a raw message (up to its first blank
// line, read from at most the first MiB), with an empty body.
func headerOf(raw []byte) []byte {
	head := raw[:min(len(raw), 1<<20)]
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(head, []byte(sep)); i >= 0 {
			return head[:i+len(sep)]
		}
	}
	return append(append([]byte(nil), head...), "\r\n\r\n"...)
}

// attachments hands the message's files to the commands.
func attachments(msg *message.Message) []commands.Attachment {
	out := make([]commands.Attachment, len(msg.Attachments))
	for i, a := range msg.Attachments {
		out[i] = commands.Attachment{Filename: a.Filename, ContentType: a.ContentType, Charset: a.Charset,
			Data: a.Data, TooLarge: a.TooLarge}
	}
	return out
}
