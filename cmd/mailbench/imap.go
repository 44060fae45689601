package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// login opens an IMAP connection for user. The connection is closed when
// ctx ends, which fails any command waiting on it (go-imap v2 has no read
// deadline of its own).
func login(ctx context.Context, addr, user string) (*imapclient.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := imapclient.New(conn, nil)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	go func() {
		<-c.Closed()
		stop()
	}()
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("IMAP greeting: %w", err)
	}
	if err := c.Login(user, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("LOGIN %s: %w", user, err)
	}
	return c, nil
}

// waitSpec is a mailbox to watch and the message count to wait for.
type waitSpec struct {
	user string
	want int
}

// waitCounts waits until every mailbox's INBOX holds its count and returns
// when the last one got there. Each mailbox is watched on its own
// connection, opened read-only (EXAMINE), with a NOOP every `every`: the
// server reports new mail in answer to any command (RFC 9051 §5.2), about
// 10 ms after delivery with Dovecot, where IDLE would wait 500 ms.
func waitCounts(ctx context.Context, addr string, specs []waitSpec, every time.Duration) (time.Time, error) {
	var (
		mu   sync.Mutex
		last time.Time
		errs []error
		wg   sync.WaitGroup
	)
	for _, s := range specs {
		wg.Go(func() {
			at, err := waitCount(ctx, addr, s, every)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if at.After(last) {
				last = at
			}
		})
	}
	wg.Wait()
	return last, errors.Join(errs...)
}

func waitCount(ctx context.Context, addr string, s waitSpec, every time.Duration) (time.Time, error) {
	c, err := login(ctx, addr, s.user)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	data, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return time.Time{}, fmt.Errorf("EXAMINE INBOX of %s: %w", s.user, err)
	}
	for {
		n := numMessages(c, data.NumMessages)
		if int(n) >= s.want {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("INBOX of %s holds %d of %d messages: %w", s.user, n, s.want, ctx.Err())
		case <-c.Closed():
			return time.Time{}, fmt.Errorf("INBOX of %s: connection closed with %d of %d messages", s.user, n, s.want)
		case <-time.After(every):
		}
		if err := c.Noop().Wait(); err != nil {
			return time.Time{}, fmt.Errorf("NOOP for %s: %w", s.user, err)
		}
	}
}

// drain stands in for the bot's own housekeeping while the limit is
// measured: it moves whatever arrives in user's INBOX to Processed, in one
// UID MOVE per sweep, so the inbox stays as small as the bot keeps its own
// (Dovecot delivers into a large mailbox much more slowly). It returns when
// n messages were moved.
func drain(ctx context.Context, addr, user string, n int, every time.Duration) (time.Time, error) {
	c, err := login(ctx, addr, user)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	if err := c.Create("Processed", nil).Wait(); err != nil {
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) {
			return time.Time{}, err
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return time.Time{}, fmt.Errorf("SELECT INBOX of %s: %w", user, err)
	}
	moved := 0
	for {
		found, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return time.Time{}, fmt.Errorf("UID SEARCH: %w", err)
		}
		if uids := found.AllUIDs(); len(uids) > 0 {
			at := time.Now()
			if _, err := c.Move(imap.UIDSetNum(uids...), "Processed").Wait(); err != nil {
				return time.Time{}, fmt.Errorf("UID MOVE: %w", err)
			}
			moved += len(uids)
			if moved >= n {
				return at, nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("INBOX of %s: %d of %d messages arrived: %w", user, moved, n, ctx.Err())
		case <-time.After(every):
		}
	}
}

// imapFigures are the plain IMAP client's rates, in messages/s.
type imapFigures struct {
	fetch          float64 // UID FETCH BODY.PEEK[] in batches of 50
	fetchEachMove  float64 // the same, then UID STORE and UID MOVE per message (as the bot does)
	fetchBatchMove float64 // the same, then one UID STORE and one UID MOVE per batch of 50
}

// imapBench measures a plain IMAP client on the messages in user's mailbox
// `from`: first a fetch of all, then the first half fetched and moved one by
// one, the second half fetched and moved per batch.
func imapBench(ctx context.Context, addr, user, from string, batch int) (imapFigures, error) {
	var f imapFigures
	c, err := login(ctx, addr, user)
	if err != nil {
		return f, err
	}
	defer c.Close()
	if err := c.Create("Done", nil).Wait(); err != nil {
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) {
			return f, err
		}
	}
	if _, err := c.Select(from, nil).Wait(); err != nil {
		return f, fmt.Errorf("SELECT %s of %s: %w", from, user, err)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return f, fmt.Errorf("UID SEARCH: %w", err)
	}
	uids := found.AllUIDs()
	slices.Sort(uids)
	if len(uids) < 2 {
		return f, fmt.Errorf("%s of %s holds %d messages", from, user, len(uids))
	}
	section := &imap.FetchItemBodySection{Peek: true}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}
	fetch := func(set []imap.UID) error {
		msgs, err := c.Fetch(imap.UIDSetNum(set...), opts).Collect()
		if err != nil {
			return fmt.Errorf("UID FETCH: %w", err)
		}
		if len(msgs) != len(set) {
			return fmt.Errorf("UID FETCH of %d messages returned %d", len(set), len(msgs))
		}
		return nil
	}
	mark := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$MailbotHandled", imap.FlagSeen}}

	start := time.Now()
	for b := range slices.Chunk(uids, batch) {
		if err := fetch(b); err != nil {
			return f, err
		}
	}
	f.fetch = rate(len(uids), time.Since(start))

	half := len(uids) / 2
	start = time.Now()
	for b := range slices.Chunk(uids[:half], batch) {
		if err := fetch(b); err != nil {
			return f, err
		}
		for _, u := range b {
			one := imap.UIDSetNum(u)
			if err := c.Store(one, mark, nil).Close(); err != nil {
				return f, fmt.Errorf("UID STORE: %w", err)
			}
			if _, err := c.Move(one, "Done").Wait(); err != nil {
				return f, fmt.Errorf("UID MOVE: %w", err)
			}
		}
	}
	f.fetchEachMove = rate(half, time.Since(start))

	start = time.Now()
	for b := range slices.Chunk(uids[half:], batch) {
		if err := fetch(b); err != nil {
			return f, err
		}
		set := imap.UIDSetNum(b...)
		if err := c.Store(set, mark, nil).Close(); err != nil {
			return f, fmt.Errorf("UID STORE: %w", err)
		}
		if _, err := c.Move(set, "Done").Wait(); err != nil {
			return f, fmt.Errorf("UID MOVE: %w", err)
		}
	}
	f.fetchBatchMove = rate(len(uids)-half, time.Since(start))
	return f, nil
}

// fetchInbox returns every message in user's INBOX.
func fetchInbox(ctx context.Context, addr, user string) ([][]byte, error) {
	c, err := login(ctx, addr, user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, fmt.Errorf("EXAMINE INBOX of %s: %w", user, err)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("UID SEARCH: %w", err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}
	var out [][]byte
	for b := range slices.Chunk(found.AllUIDs(), 500) {
		msgs, err := c.Fetch(imap.UIDSetNum(b...), opts).Collect()
		if err != nil {
			return nil, fmt.Errorf("UID FETCH: %w", err)
		}
		for _, m := range msgs {
			out = append(out, m.FindBodySection(section))
		}
	}
	return out, nil
}

// numMessages is the selected mailbox's message count as the server last
// reported it. go-imap v2 beta.8 may return from Select before it records
// the selected mailbox (Client.Mailbox is nil for a moment): then the count
// the SELECT answer gave, or the last one seen, stands.
func numMessages(c *imapclient.Client, last uint32) uint32 {
	if m := c.Mailbox(); m != nil {
		return m.NumMessages
	}
	return last
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
