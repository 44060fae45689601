package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// lmtpSink stands in for the bot while the stack's own limit is measured
// for the LMTP intake: an LMTP server that takes every message at once and
// counts them per recipient, so that the limit is what Postfix does to
// hand mail over, with nothing behind it.
type lmtpSink struct {
	srv *smtp.Server
	ln  net.Listener

	mu    sync.Mutex
	count map[string]int
	last  time.Time
}

func startSink(addr string) (*lmtpSink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("LMTP sink: %w", err)
	}
	k := &lmtpSink{ln: ln, count: map[string]int{}}
	k.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{k: k}, nil }))
	k.srv.LMTP = true
	k.srv.Domain = "sink.test"
	go k.srv.Serve(ln)
	return k, nil
}

func (k *lmtpSink) close() { k.srv.Close() }

// wait returns when rcpt got n messages: the time the last came.
func (k *lmtpSink) wait(ctx context.Context, rcpt string, n int) (time.Time, error) {
	for {
		k.mu.Lock()
		got, last := k.count[rcpt], k.last
		k.mu.Unlock()
		if got >= n {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("LMTP sink: %d of %d messages for %s: %w", got, n, rcpt, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type sinkSession struct {
	k  *lmtpSink
	to []string
}

func (s *sinkSession) Reset()                               { s.to = nil }
func (s *sinkSession) Logout() error                        { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, strings.ToLower(to))
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	for _, to := range s.to {
		s.k.count[to]++
	}
	s.k.last = time.Now()
	return nil
}
