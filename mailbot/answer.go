package mailbot

import (
	"errors"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/mailbot/message"
	"github.com/coworkingvisa/mailbot/mailbot/outbox"
	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// maxDetailWhenCut is how many listing lines a result keeps in a reply that
// had to be shortened to fit limits.max_reply_bytes.
const maxDetailWhenCut = 50

// queueReport renders a transcript and puts it in the outbox. An answer
// larger than MaxReplyBytes is rendered again without its files and with
// short listings, and says so: the commands were carried out all the same.
func (b *Bot) queueReport(tx *storage.Tx, l *templates.Lang, in incoming, r commands.Report, v view, now time.Time) error {
	text, html, err := b.renderReport(l, r, v)
	if err != nil {
		return err
	}
	subject, err := b.replySubject(l, in.msg.Subject, r)
	if err != nil {
		return err
	}
	var files []reply.Attachment
	for _, res := range r.Results {
		for _, f := range res.Files {
			files = append(files, reply.Attachment{Name: f.Name, ContentType: f.ContentType, Data: f.Data})
		}
	}
	full, err := outbox.Add(tx, b.answer(in, subject, text, html, files, now), outbox.KindReply, b.set.MaxReplyBytes)
	if !errors.Is(err, outbox.ErrTooLarge) {
		return err
	}
	cut := shorten(r)
	note, err := l.Phrase("reply-cut", struct {
		Size, Limit int
		Files       bool
	}{full.Size, b.set.MaxReplyBytes, len(files) > 0})
	if err != nil {
		return err
	}
	label, err := l.Phrase("label.message", nil)
	if err != nil {
		return err
	}
	cut.Results = append([]commands.Result{{Command: label, Status: commands.Error, Text: note}}, cut.Results...)
	if text, html, err = b.renderReport(l, cut, v); err != nil {
		return err
	}
	_, err = outbox.Add(tx, b.answer(in, subject, text, html, nil, now), outbox.KindReply, b.set.MaxReplyBytes)
	return err
}

// view is what a reply shows of its reader besides the report: whom its
// help is for, and their address.
type view struct {
	audience templates.Audience
	sender   string
	now      time.Time
}

// verdict is the answer of a message that is a single verify, or nil: the
// answer a host at the front desk reads in the Subject and the first line.
func verdict(r commands.Report) *commands.Result {
	if len(r.Results) != 1 || r.Results[0].Verdict == nil {
		return nil
	}
	return &r.Results[0]
}

// replySubject is "Re: <the sender's subject>", and for a single verify
// the answer after it ("Re: verify: VERIFIED jonas@… (betahaus)"), without
// the address when the subject names it already.
func (b *Bot) replySubject(l *templates.Lang, original string, r commands.Report) (string, error) {
	s := reply.ReplySubject(original)
	res := verdict(r)
	if res == nil {
		return s, nil
	}
	visitor := res.Verdict.Visitor
	if strings.Contains(strings.ToLower(original), visitor) {
		visitor = ""
	}
	answer, err := l.Phrase("subject.verify", struct {
		Status, Visitor string
		Homes           string
	}{string(res.Status), visitor, strings.Join(res.Verdict.Homes, ", ")})
	if err != nil || strings.TrimSpace(original) == "" {
		return "Re: " + answer, err
	}
	return s + ": " + answer, nil
}

// shorten keeps the first lines of every listing and drops the files.
func shorten(r commands.Report) commands.Report {
	out := r
	out.Results = make([]commands.Result, len(r.Results))
	for i, res := range r.Results {
		res.Files = nil
		if len(res.Detail) > maxDetailWhenCut {
			res.Detail = append(res.Detail[:maxDetailWhenCut:maxDetailWhenCut], "…")
		}
		out.Results[i] = res
	}
	if len(out.Ignored) > maxDetailWhenCut {
		out.Ignored = append(out.Ignored[:maxDetailWhenCut:maxDetailWhenCut], "…")
	}
	return out
}

// renderReport renders a transcript as text and HTML in a language. Its
// lead, the line a phone shows first, is a single verify's answer, or for a
// message without a command the reason it gets the help.
func (b *Bot) renderReport(l *templates.Lang, r commands.Report, v view) (text, html string, err error) {
	sum, err := l.Phrase("summary", summary(r))
	if err != nil {
		return "", "", err
	}
	data := templates.Reply{
		BotName: b.set.BotName, BotAddress: b.set.BotAddress,
		Ignored: r.Ignored, Help: r.Help, Cut: r.Cut, MaxCmds: b.set.MaxCommands,
		Summary: sum,
		For:     v.audience, Contact: b.set.Contact, Sender: v.sender,
		ExampleDate: v.now.AddDate(0, 0, 14).UTC().Format(time.DateOnly),
	}
	switch res := verdict(r); {
	case res != nil:
		data.Lead = string(res.Status) + ": " + res.Text
	case len(r.Results) == 0 && r.Help:
		if data.Lead, err = l.Phrase("lead.no-command", nil); err != nil {
			return "", "", err
		}
	}
	for _, res := range r.Results {
		data.Entries = append(data.Entries, templates.Entry{
			Command: res.Command, Status: string(res.Status), Text: res.Text, Detail: res.Detail,
		})
	}
	return l.Reply(data)
}

// answer is a reply to the sender of in, threaded under their message.
func (b *Bot) answer(in incoming, subject, text, html string, files []reply.Attachment, now time.Time) reply.Message {
	msg := in.msg
	return reply.Message{
		From: b.set.BotAddress, FromName: b.set.BotName, To: in.sender,
		Subject:   subject,
		InReplyTo: msg.MessageID, References: msg.References,
		Text: text, HTML: html, Attachments: files, Date: now, AutoSubmitted: "auto-replied",
	}
}

// queueNotices puts the messages commands send to others (a visit notice
// to a host's managers, a declined visit to its visitor, an erasure to a
// space's managers) in the outbox, one per recipient, each in the language
// the command wrote it in.
func (b *Bot) queueNotices(tx *storage.Tx, notices []commands.Notice, now time.Time) error {
	for _, n := range notices {
		if len(n.Lines) == 0 {
			continue
		}
		text, html, err := b.tmpl.In(n.Language).Notice(templates.Notice{BotName: b.set.BotName, BotAddress: b.set.BotAddress,
			Text: n.Lines[0], Lines: n.Lines[1:]})
		if err != nil {
			return err
		}
		for _, to := range n.To {
			if to == b.set.BotAddress {
				continue
			}
			m := reply.Message{From: b.set.BotAddress, FromName: b.set.BotName, To: to,
				Subject: "[" + b.set.BotName + "] " + n.Subject, Text: text, HTML: html, Date: now, AutoSubmitted: "auto-generated"}
			if _, err := outbox.Add(tx, m, outbox.KindNotice, b.set.MaxReplyBytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// queueRateNotice tells a sender once, in their language, that they hit
// the hourly reply limit.
func (b *Bot) queueRateNotice(tx *storage.Tx, in incoming, now time.Time) error {
	l, err := b.languageOf(tx, in.sender)
	if err != nil {
		return err
	}
	line, err := l.Phrase("rate-limit", struct {
		Limit int
		Until string
	}{b.set.Limits.RepliesPerSenderPerHour, now.Add(time.Hour).UTC().Format("15:04")})
	if err != nil {
		return err
	}
	text, html, err := l.Notice(templates.Notice{BotName: b.set.BotName, BotAddress: b.set.BotAddress, Text: line})
	if err != nil {
		return err
	}
	_, err = outbox.Add(tx, b.answer(in, reply.ReplySubject(in.msg.Subject), text, html, nil, now), outbox.KindNotice, b.set.MaxReplyBytes)
	return err
}

// notifyAdmins queues a notice to every admin, in the network's language:
// the phrases name+".subject" and name+".text" rendered with data. It is
// best effort: the trouble it reports may be the store itself, so a
// failure is only logged.
func (b *Bot) notifyAdmins(name string, data any) {
	if len(b.set.Admins) == 0 {
		return
	}
	err := b.db.Update(func(tx *storage.Tx) error {
		for _, admin := range b.set.Admins {
			m, err := b.adminNotice(name, data, admin)
			if err != nil {
				return err
			}
			if _, err := outbox.Add(tx, m, outbox.KindNotice, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.log.Error("could not notify the admins", "notice", name, "error", err)
		return
	}
	b.kick()
}

// adminNotice is the notice name (its phrases name.subject and name.text
// rendered with data) to one admin.
func (b *Bot) adminNotice(name string, data any, admin string) (reply.Message, error) {
	l := b.tmpl.In(b.set.Language)
	subject, err := l.Phrase(name+".subject", data)
	if err != nil {
		return reply.Message{}, err
	}
	line, err := l.Phrase(name+".text", data)
	if err != nil {
		return reply.Message{}, err
	}
	text, html, err := l.Notice(templates.Notice{BotName: b.set.BotName, BotAddress: b.set.BotAddress, Text: line})
	if err != nil {
		return reply.Message{}, err
	}
	return reply.Message{
		From: b.set.BotAddress, FromName: b.set.BotName, To: admin,
		Subject: "[" + b.set.BotName + "] " + subject, Text: text, HTML: html,
		Date: b.now(), AutoSubmitted: "auto-generated",
	}, nil
}

// NotifyHeld tells the admins that the outbox holds a message whose sending
// kept killing the process (outbox.Config.OnHeld).
func (b *Bot) NotifyHeld(it storage.OutboxItem) {
	b.notifyAdmins("held", struct {
		ID                uint64
		Crashes           int
		Kind, To, Answers string
	}{it.ID, it.Crashes, it.Kind, strings.Join(it.To, ", "), it.Answers})
}

// dropNoticeEvery bounds the admins' notices about dropped replies: the
// first drop is told at once, the ones in the following minute together
// at its end.
const dropNoticeEvery = time.Minute

// droppedReply is one line of the admins' notice about dropped replies.
type droppedReply struct {
	Kind, To, Answers, Error string
}

// NotifyDropped tells the admins of a message the outbox dropped for good
// (refused with a 5xx, or given up on; outbox.Config.OnDropped), batched
// by dropNoticeEvery. A dropped notice is not reported, so that an admin
// address that refuses mail cannot start a loop of notices about notices.
func (b *Bot) NotifyDropped(it storage.OutboxItem, err error) {
	if it.Kind == outbox.KindNotice {
		return
	}
	b.dropMu.Lock()
	b.dropped = append(b.dropped, droppedReply{Kind: it.Kind, To: strings.Join(it.To, ", "), Answers: it.Answers, Error: err.Error()})
	now := b.now()
	wait := b.dropLast.Add(dropNoticeEvery).Sub(now)
	first := len(b.dropped) == 1
	b.dropMu.Unlock()
	switch {
	case !first:
		// A flush is planned already.
	case wait <= 0:
		b.flushDropped()
	default:
		time.AfterFunc(wait, b.flushDropped)
	}
}

// flushDropped sends the gathered dropped replies as one notice.
func (b *Bot) flushDropped() {
	b.dropMu.Lock()
	list := b.dropped
	b.dropped, b.dropLast = nil, b.now()
	b.dropMu.Unlock()
	if len(list) > 0 {
		b.notifyAdmins("dropped", struct{ Replies []droppedReply }{list})
	}
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

// summary counts a transcript's results by status word, for the summary
// phrase.
func summary(r commands.Report) templates.Summary {
	counts := r.Counts()
	s := templates.Summary{Total: len(r.Results), Ignored: len(r.Ignored)}
	for _, st := range []commands.Status{commands.OK, commands.Verified, commands.NotVerified, commands.Error, commands.Denied} {
		if n := counts[st]; n > 0 {
			s.Counts = append(s.Counts, templates.Count{N: n, Status: string(st)})
		}
	}
	return s
}
