// Package mailbot is the daemon: it wires the inbox watcher, the message
// pipeline, the store and the outbox sender together, and runs the demo.
//
// One message's way through the program (Bot.Handle):
//
//	raw bytes → message.Parse → trust.Automatic / trust.Authenticate
//	  → ONE store transaction: handled-mark + commands + audit + reply in outbox
//	  → the inbox marks the message handled; the outbox sends the reply.
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
	"github.com/coworkingvisa/mailbot/mailbot/message"
	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/mailbot/trust"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// Settings are the parts of the configuration the pipeline uses.
type Settings struct {
	BotAddress   string
	BotName      string
	Admins       []string // lowercased
	Trust        trust.Policy
	RepliesPerHr int // replies per sender per hour; 0 = no limit
	// RepliesPerMinute is the global circuit breaker: past it, handling
	// pauses until the minute is over (mail waits in the inbox) and the
	// admins are told once. 0 = no breaker.
	RepliesPerMinute int
	Limits           message.Limits
	MaxCommands      int
	Commands         commands.Limits
	MaxAttempts      int // a message failing this often is set aside (default 3)
	// QuarantineMailbox receives messages whose handling kept failing.
	QuarantineMailbox string
	// RejectedMailbox receives forged and automatic mail.
	RejectedMailbox string
}

// Bot handles command emails. It is safe for concurrent use.
type Bot struct {
	set   Settings
	db    *storage.DB
	tmpl  *templates.Set
	log   *slog.Logger
	now   func() time.Time
	wake  func() // tells the outbox there is new mail to send
	fails sync.Map

	mu          sync.Mutex // guards the breaker's window
	window      time.Time  // the minute being counted
	windowCount int        // replies queued in it
	tripped     bool       // the admins were told in this window
}

// NewBot makes a bot over an open store. wake is called after a reply was
// queued (may be nil); now is the clock (nil means time.Now).
func NewBot(set Settings, db *storage.DB, tmpl *templates.Set, log *slog.Logger, now func() time.Time, wake func()) *Bot {
	if now == nil {
		now = time.Now
	}
	if wake == nil {
		wake = func() {}
	}
	if set.MaxAttempts == 0 {
		set.MaxAttempts = 3
	}
	return &Bot{set: set, db: db, tmpl: tmpl, log: log, now: now, wake: wake}
}

// Action says what should happen to a message on the server after Handle.
type Action int

const (
	// Done: the message's effects and reply are committed; mark it handled.
	Done Action = iota
	// SetAside: no effect, no reply; move it to Outcome.Mailbox.
	SetAside
	// Retry: nothing was committed (an internal failure); leave it for the
	// next sweep.
	Retry
)

// Outcome is the result of handling one message.
type Outcome struct {
	Action  Action
	Mailbox string // for SetAside
	Reason  string // for the log
}

// Handle runs one raw message through the pipeline. Its effects, its audit
// records, its reply and the mark that it was handled are committed in one
// transaction, so calling Handle again with the same message changes
// nothing and queues no second reply.
func (b *Bot) Handle(ctx context.Context, raw []byte) (out Outcome) {
	key := rawKey(raw)
	defer func() {
		if p := recover(); p != nil {
			out = b.failed(key, fmt.Errorf("panic: %v", p))
		}
	}()
	msg, err := message.Parse(raw, b.set.Limits)
	tooLarge := errors.Is(err, message.ErrTooLarge)
	if tooLarge {
		// Read only the header: enough to authenticate the sender and
		// tell them why nothing was done.
		msg, err = message.Parse(headerOf(raw), b.set.Limits)
	}
	if err != nil {
		return b.setAside(b.set.RejectedMailbox, "unreadable message: "+err.Error(), nil)
	}
	if reason, auto := trust.Automatic(msg.Header, b.set.BotAddress); auto {
		return b.setAside(b.set.RejectedMailbox, "automatic mail ("+reason+"): not answered", msg)
	}
	if reason, bad := trust.Impersonation(msg.Header); bad {
		return b.setAside(b.set.RejectedMailbox, "impersonation: "+reason, msg)
	}
	sender, err := trust.AuthenticateMessage(ctx, msg.Header, raw, b.set.Trust)
	if errors.Is(err, trust.ErrDKIMTemporary) {
		// The DNS did not answer: not authenticated now, but perhaps
		// later. The message waits in the inbox; nothing was applied.
		b.log.Warn("DKIM key look-up failed; the message waits", "message_id", msg.MessageID, "error", err)
		return Outcome{Action: Retry, Reason: "DKIM look-up failed: " + err.Error()}
	}
	if err != nil {
		return b.setAside(b.set.RejectedMailbox, "sender not authenticated: "+err.Error(), msg)
	}
	if sender.Address == b.set.BotAddress {
		return b.setAside(b.set.RejectedMailbox, "mail from the bot's own address", msg)
	}
	key = handledKey(sender.Address, msg, raw)
	if !b.breakerAllows() {
		return Outcome{Action: Retry, Reason: "circuit breaker: too many replies this minute; the message waits"}
	}
	queued, err := b.apply(sender.Address, msg, key, tooLarge)
	if err != nil {
		return b.failed(key, err)
	}
	b.fails.Delete(key)
	if queued {
		b.countReply()
		b.wake()
	}
	return Outcome{Action: Done}
}

// breakerAllows reports whether the global reply budget of this minute has
// room. When it first runs out, the admins are told (once per minute).
func (b *Bot) breakerAllows() bool {
	if b.set.RepliesPerMinute <= 0 {
		return true
	}
	b.mu.Lock()
	now := b.now().Truncate(time.Minute)
	if !now.Equal(b.window) {
		b.window, b.windowCount, b.tripped = now, 0, false
	}
	open := b.windowCount >= b.set.RepliesPerMinute
	notify := open && !b.tripped
	if notify {
		b.tripped = true
	}
	b.mu.Unlock()
	if notify {
		b.log.Error("circuit breaker open: pausing until the minute is over", "replies", b.set.RepliesPerMinute)
		b.notifyAdmins("circuit breaker open", fmt.Sprintf(
			"The bot queued %d replies within one minute, its limit (limits.replies_per_minute). "+
				"It pauses handling mail until the minute is over; messages wait in the inbox and nothing is lost. "+
				"If this happens again, look for a mail loop.", b.set.RepliesPerMinute))
	}
	return !open
}

func (b *Bot) countReply() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := b.now().Truncate(time.Minute); !now.Equal(b.window) {
		b.window, b.windowCount, b.tripped = now, 0, false
	}
	b.windowCount++
}

// notifyAdmins queues a notice to every admin. It is best effort: the
// trouble it reports may be the store itself, so a failure is only logged.
func (b *Bot) notifyAdmins(subject, text string) {
	if len(b.set.Admins) == 0 {
		return
	}
	now := b.now()
	body, html, err := b.tmpl.Notice(templates.Notice{BotName: b.set.BotName, BotAddress: b.set.BotAddress, Text: text})
	if err == nil {
		err = b.db.Update(func(tx *storage.Tx) error {
			for _, admin := range b.set.Admins {
				raw, id, err := reply.Render(reply.Message{
					From: b.set.BotAddress, FromName: b.set.BotName, To: admin,
					Subject: "[" + b.set.BotName + "] " + subject, Text: body, HTML: html,
					Date: now, AutoSubmitted: "auto-generated",
				})
				if err != nil {
					return err
				}
				if _, err := tx.Enqueue(storage.OutboxItem{From: b.set.BotAddress, To: []string{admin}, Raw: raw, MessageID: id, Created: now}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		b.log.Error("could not notify the admins", "subject", subject, "error", err)
		return
	}
	b.wake()
}

// apply is the one transaction of a message. It reports whether a reply
// was queued.
func (b *Bot) apply(sender string, msg *message.Message, key string, tooLarge bool) (queued bool, err error) {
	now := b.now()
	err = b.db.Update(func(tx *storage.Tx) error {
		queued = false
		if h, done, err := tx.Handled(key); err != nil {
			return err
		} else if done {
			b.log.Info("message already handled", "message_id", msg.MessageID, "from", sender, "outcome", h.Outcome)
			return nil
		}
		allowed, notice, err := b.allowReply(tx, sender, now)
		if err != nil {
			return err
		}
		if !allowed {
			outcome := "rate limited: not acted on, no reply"
			if notice {
				if err := b.queueNotice(tx, sender, msg, now); err != nil {
					return err
				}
				queued = true
				outcome = "rate limited: not acted on, notice sent"
			}
			b.log.Warn("rate limit reached", "from", sender, "message_id", msg.MessageID)
			return tx.MarkHandled(key, storage.HandledMessage{At: now, Sender: sender, Outcome: outcome})
		}
		subject := msg.Subject
		if b.answersBot(msg) {
			// "Re: <the bot's subject>" was written by the bot, not the sender:
			// a manager replying "confirm TOKEN" must not re-run the original.
			subject = ""
		}
		var report commands.Report
		if tooLarge {
			report.Results = []commands.Result{{Command: "(the whole message)", Status: commands.Error,
				Text: fmt.Sprintf("the message is larger than %d KiB, so none of it was read and nothing changed; "+
					"send the commands again without large attachments.", b.maxBytes()/1024)}}
		} else {
			script := commands.Parse(subject, message.OwnLines(msg.Text), b.set.MaxCommands)
			if script.Commands == 0 {
				// Nothing above the quote: a reply written below it
				// (Thunderbird's default). The quote itself is never read.
				if below := commands.Parse(subject, message.BelowQuote(msg.Text), b.set.MaxCommands); below.Commands > 0 {
					script = below
				}
			}
			unread := b.unread(msg)
			if script.Commands == 0 && len(unread) == 0 && b.answersBot(msg) {
				// "Thanks!" to a transcript, or an auto-responder that
				// marks nothing: answering with the help text would only
				// start a conversation between robots.
				b.log.Info("reply to the bot without commands: not answered", "message_id", msg.MessageID, "from", sender)
				return tx.MarkHandled(key, storage.HandledMessage{At: now, Sender: sender, Outcome: "no commands in a reply to the bot: not answered"})
			}
			actor := commands.Actor{Address: sender, Admin: b.isAdmin(sender)}
			env := commands.Env{Now: now, MessageID: msg.MessageID, Attachments: attachments(msg), Limits: b.set.Commands}
			if report, err = commands.Execute(tx, actor, env, script); err != nil {
				return err
			}
			report.Results = append(unread, report.Results...)
		}
		id, err := b.queueReply(tx, sender, msg, report, now)
		if err != nil {
			return err
		}
		queued = true
		b.log.Info("message handled", "message_id", msg.MessageID, "from", sender,
			"commands", len(report.Results), "ignored", len(report.Ignored))
		return tx.MarkHandled(key, storage.HandledMessage{At: now, Sender: sender, Outcome: "replied", ReplyID: id})
	})
	if err != nil {
		return false, fmt.Errorf("handle message %s: %w", msg.MessageID, err)
	}
	return queued, nil
}

// allowReply counts a reply against the sender's hourly allowance. When the
// allowance is spent, the first message over it gets a notice (notice=true)
// and later ones nothing until the hour has passed.
func (b *Bot) allowReply(tx *storage.Tx, sender string, now time.Time) (allowed, notice bool, err error) {
	if b.set.RepliesPerHr <= 0 {
		return true, false, nil
	}
	w, err := tx.RateWindow(sender)
	if err != nil {
		return false, false, err
	}
	if now.Sub(w.Start) >= time.Hour || now.Before(w.Start) {
		w = storage.RateWindow{Start: now}
	}
	if w.Count < b.set.RepliesPerHr {
		w.Count++
		return true, false, tx.PutRateWindow(sender, w)
	}
	if w.Noticed {
		return false, false, nil
	}
	w.Noticed = true
	return false, true, tx.PutRateWindow(sender, w)
}

// answersBot reports whether msg replies to a message of the bot's (its
// In-Reply-To or References name a Message-ID the bot made).
func (b *Bot) answersBot(msg *message.Message) bool {
	for _, id := range append(append([]string(nil), msg.InReplyTo...), msg.References...) {
		if reply.IsOwnMessageID(id, b.set.BotAddress) {
			return true
		}
	}
	return false
}

func (b *Bot) isAdmin(addr string) bool {
	for _, a := range b.set.Admins {
		if a == addr {
			return true
		}
	}
	return false
}

// queueReply renders the transcript and puts it in the outbox.
func (b *Bot) queueReply(tx *storage.Tx, to string, msg *message.Message, r commands.Report, now time.Time) (uint64, error) {
	data := templates.Reply{
		BotName: b.set.BotName, BotAddress: b.set.BotAddress,
		Ignored: r.Ignored, Help: r.Help, Cut: r.Cut, MaxCmds: b.set.MaxCommands,
		Summary: summary(r),
	}
	for _, res := range r.Results {
		data.Entries = append(data.Entries, templates.Entry{
			Command: res.Command, Status: string(res.Status), Text: res.Text, Detail: res.Detail,
		})
	}
	text, html, err := b.tmpl.Reply(data)
	if err != nil {
		return 0, err
	}
	var files []reply.Attachment
	for _, res := range r.Results {
		for _, f := range res.Files {
			files = append(files, reply.Attachment{Name: f.Name, ContentType: f.ContentType, Data: f.Data})
		}
	}
	return b.enqueue(tx, to, msg, text, html, files, now)
}

// unread reports, as ERROR lines, the parts of a message the bot could not
// read: a body cut at the line limit (unless the sender's own text ended
// before, at a quote or a signature), parts nested too deep, a body that
// could not be decoded at all. A sender must never believe that a command
// the bot did not see was carried out.
func (b *Bot) unread(msg *message.Message) []commands.Result {
	var out []commands.Result
	note := func(text string) {
		out = append(out, commands.Result{Command: "(the message)", Status: commands.Error, Text: text})
	}
	text := strings.TrimRight(msg.Text, "\n")
	if msg.Truncated && len(message.OwnLines(text)) == strings.Count(text, "\n")+1 {
		note("this message is longer than the bot reads (too many lines, or parts nested too deep); " +
			"what comes after was not read. Send the rest in another message.")
	}
	if strings.TrimSpace(msg.Text) == "" && len(msg.Problems) > 0 {
		note("the text of this message could not be read (" + msg.Problems[0] + "); nothing in it was carried out.")
	}
	return out
}

// maxBytes is the message size limit in force.
func (b *Bot) maxBytes() int {
	if b.set.Limits.MaxBytes > 0 {
		return b.set.Limits.MaxBytes
	}
	return 10 << 20
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

// queueNotice tells a sender once that they hit the hourly reply limit.
func (b *Bot) queueNotice(tx *storage.Tx, to string, msg *message.Message, now time.Time) error {
	text, html, err := b.tmpl.Notice(templates.Notice{
		BotName: b.set.BotName, BotAddress: b.set.BotAddress,
		Text: fmt.Sprintf("ERROR: you have sent more than %d messages to this address in an hour. "+
			"This message and the next ones until %s UTC are not acted on and get no answer. "+
			"Please send them again after that time.", b.set.RepliesPerHr, now.Add(time.Hour).UTC().Format("15:04")),
	})
	if err != nil {
		return err
	}
	_, err = b.enqueue(tx, to, msg, text, html, nil, now)
	return err
}

func (b *Bot) enqueue(tx *storage.Tx, to string, msg *message.Message, text, html string, files []reply.Attachment, now time.Time) (uint64, error) {
	raw, id, err := reply.Render(reply.Message{
		From: b.set.BotAddress, FromName: b.set.BotName, To: to,
		Subject:   reply.ReplySubject(msg.Subject),
		InReplyTo: msg.MessageID, References: msg.References,
		Text: text, HTML: html, Attachments: files, Date: now, AutoSubmitted: "auto-replied",
	})
	if err != nil {
		return 0, err
	}
	return tx.Enqueue(storage.OutboxItem{From: b.set.BotAddress, To: []string{to}, Raw: raw, MessageID: id, Created: now})
}

// summary is the closing line of a transcript.
func summary(r commands.Report) string {
	counts := r.Counts()
	var parts []string
	for _, s := range []commands.Status{commands.OK, commands.Verified, commands.NotVerified, commands.Error, commands.Denied} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	out := fmt.Sprintf("%d commands", len(r.Results))
	if len(r.Results) == 1 {
		out = "1 command"
	}
	if len(parts) > 0 {
		out += ": " + strings.Join(parts, ", ")
	}
	if n := len(r.Ignored); n > 0 {
		out += fmt.Sprintf("; %d lines ignored", n)
	}
	return out + "."
}

// setAside logs why a message gets no effect and no reply.
func (b *Bot) setAside(mailbox, reason string, msg *message.Message) Outcome {
	attrs := []any{"reason", reason}
	if msg != nil {
		attrs = append(attrs, "message_id", msg.MessageID, "from", msg.Header.Get("From"), "subject", msg.Subject)
	}
	b.log.Warn("message set aside", attrs...)
	return Outcome{Action: SetAside, Mailbox: mailbox, Reason: reason}
}

// failed counts an internal failure; after MaxAttempts the message is set
// aside in quarantine so that one bad message cannot stall the inbox.
func (b *Bot) failed(key string, err error) Outcome {
	n := 1
	if v, loaded := b.fails.LoadOrStore(key, 1); loaded {
		n = v.(int) + 1
		b.fails.Store(key, n)
	}
	b.log.Error("message handling failed", "attempt", n, "error", err)
	if n >= b.set.MaxAttempts {
		b.fails.Delete(key)
		reason := fmt.Sprintf("failed %d times: %v", n, err)
		b.notifyAdmins("a message was quarantined", fmt.Sprintf(
			"A message could not be handled after %d attempts and was moved to the mailbox %q, unanswered. "+
				"Reason: %v. Look at it there; once the cause is fixed, move it back to the inbox.", n, b.set.QuarantineMailbox, err))
		return Outcome{Action: SetAside, Mailbox: b.set.QuarantineMailbox, Reason: reason}
	}
	return Outcome{Action: Retry, Reason: err.Error()}
}

// handledKey identifies a message for the exactly-once record: the sender
// and the Message-ID, or a hash of the content where there is no id. The
// sender is part of the key so nobody can block another's message by
// reusing its id.
func handledKey(sender string, msg *message.Message, raw []byte) string {
	if msg.MessageID != "" {
		return sender + " " + msg.MessageID
	}
	return sender + " " + rawKey(contentOf(raw))
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
