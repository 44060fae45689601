package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"
)

// peer is the naive bot the mailbot is compared with: what a competent
// admin writes in an afternoon, as the 250-line script a new user first
// measured it against. It polls its INBOX with NOOP every `every`, fetches
// what arrived, answers each `verify` from a set in memory over a new SMTP
// connection, then flags the message \Deleted and expunges it. It keeps no
// store, checks no sender and promises nothing across a crash: it only
// shows what the mail stack allows a simple poller, in the same run.
type peer struct {
	imapAddr, smtpAddr string
	user               string // its mailbox and the From of its replies
	every              time.Duration
	members            map[string]bool
}

// run serves until ctx ends; it returns nil then.
func (p *peer) run(ctx context.Context) error {
	c, err := login(ctx, p.imapAddr, p.user)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return fmt.Errorf("peer: SELECT INBOX: %w", err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}
	for {
		if m := c.Mailbox(); m != nil && m.NumMessages > 0 {
			msgs, err := c.Fetch(imap.SeqSetNum(1, m.NumMessages), opts).Collect()
			if err != nil {
				return fmt.Errorf("peer: FETCH: %w", err)
			}
			var done imap.UIDSet
			for _, msg := range msgs {
				if err := p.answer(ctx, msg.FindBodySection(section)); err != nil {
					return err
				}
				done.AddNum(msg.UID)
			}
			if len(done) > 0 {
				if err := c.Store(done, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
					return fmt.Errorf("peer: STORE: %w", err)
				}
				if err := c.Expunge().Close(); err != nil {
					return fmt.Errorf("peer: EXPUNGE: %w", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.every):
		}
		if err := c.Noop().Wait(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("peer: NOOP: %w", err)
		}
	}
}

// answer replies to one message: a line per verify it holds.
func (p *peer) answer(ctx context.Context, raw []byte) error {
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return nil // not mail it can read: ignored
	}
	from, err := mr.Header.AddressList("From")
	if err != nil || len(from) == 0 {
		return nil
	}
	id, _ := mr.Header.MessageID()
	subject, _ := mr.Header.Subject()
	var text string
	for text == "" {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := part.Header.(*mail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "text/plain" {
				b, _ := io.ReadAll(part.Body)
				text = string(b)
			}
		}
	}
	var out strings.Builder
	s := bufio.NewScanner(strings.NewReader(text))
	for s.Scan() {
		addr, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "verify ")
		if !ok {
			continue
		}
		addr = strings.ToLower(strings.TrimSpace(addr))
		if p.members[addr] {
			fmt.Fprintf(&out, "VERIFIED: %s is a member.\r\n", addr)
		} else {
			fmt.Fprintf(&out, "NOT VERIFIED: %s is not a member.\r\n", addr)
		}
	}
	if out.Len() == 0 {
		out.WriteString("No verify line found.\r\n")
	}
	to := from[0].Address
	reply := "From: " + p.user + "\r\nTo: " + to + "\r\nSubject: Re: " + subject + "\r\nIn-Reply-To: <" + id +
		">\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nAuto-Submitted: auto-replied\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\n\r\n" + out.String()
	if err := sendOne(ctx, p.smtpAddr, outMsg{from: p.user, to: to, raw: []byte(reply)}); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("peer: reply to %s: %w", to, err)
	}
	return nil
}
