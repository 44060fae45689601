package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// outMsg is one message to submit.
type outMsg struct {
	from, to string
	raw      []byte
}

// submitAll submits msgs over conns SMTP connections, each reused for all
// its messages, taking the next message as soon as the previous one was
// accepted. It returns when the last one was accepted (Postfix has queued
// it).
func submitAll(ctx context.Context, addr string, conns int, msgs []outMsg) (time.Time, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for w := range conns {
		wg.Go(func() {
			errs[w] = submitWorker(ctx, addr, msgs, &next)
		})
	}
	wg.Wait()
	return time.Now(), errors.Join(errs...)
}

func submitWorker(ctx context.Context, addr string, msgs []outMsg, next *atomic.Int64) error {
	if next.Load() >= int64(len(msgs)) {
		return nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("mailbench.test"); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	for {
		i := next.Add(1) - 1
		if i >= int64(len(msgs)) {
			return c.Quit()
		}
		m := msgs[i]
		if err := c.SendMail(m.from, []string{m.to}, bytes.NewReader(m.raw)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("submitting message %d from <%s> to <%s>: %w", i, m.from, m.to, err)
		}
	}
}

// sendOne submits one message on a new connection, as a mail client does.
func sendOne(ctx context.Context, addr string, m outMsg) error {
	_, err := submitAll(ctx, addr, 1, []outMsg{m})
	return err
}
