package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/outbox"
	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/mailbot/smtpsend"
	"github.com/coworkingvisa/mailbot/storage"
)

// outboxBench measures what the bot can send: its own outbox (the code the
// daemon runs: attempts recorded before each send and outcomes after, in a
// store of its own) draining n replies, queued at once, to the given
// recipients through the stack's Postfix over conns connections. It returns
// the sends per second, from the start of the queue until it is empty.
// This is what limits.replies_per_minute is sized from.
func outboxBench(ctx context.Context, dir, smtpAddr, from string, to []string, n, conns int) (float64, error) {
	db, err := storage.Open(filepath.Join(dir, fmt.Sprintf("outbox-bench-%d.db", time.Now().UnixNano())))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	err = db.Update(func(tx *storage.Tx) error {
		for i := range n {
			if _, err := outbox.Add(tx, reply.Message{From: from, FromName: botName, To: to[i%len(to)], Subject: "Re: Visitor at the front desk",
				InReplyTo: fmt.Sprintf("outbox-%d@sp0.test", i), Text: fmt.Sprintf("VERIFIED: m%d@sp0.test is a member.", i),
				Date: time.Now(), AutoSubmitted: "auto-replied"}, outbox.KindReply, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	host, port, err := splitHostPort(smtpAddr)
	if err != nil {
		return 0, err
	}
	senders := make([]outbox.Sender, conns)
	for i := range senders {
		senders[i] = smtpsend.New(smtpsend.Config{Host: host, Port: port, TLS: "none"})
	}
	q := outbox.New(db, senders, outbox.Config{Log: slog.New(slog.DiscardHandler)})
	qctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- q.Run(qctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for {
		// The queue is empty when its first item is gone: a look that
		// reads one item, not all.
		var left bool
		if err := db.View(func(tx *storage.Tx) error {
			return tx.Outbox(func(storage.OutboxItem) bool { left = true; return false })
		}); err != nil {
			return 0, err
		}
		if !left {
			return rate(n, time.Since(start)), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("outbox: replies still queued: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}
