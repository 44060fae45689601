package mailstack_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
)

// lmtpTaker is an LMTP server that passes each message it takes on a
// channel, as the mailbot's lmtp.listen would take it.
type lmtpTaker struct{ got chan string }

func (l lmtpTaker) NewSession(*smtp.Conn) (smtp.Session, error) { return &takerSession{l: l}, nil }

type takerSession struct {
	l  lmtpTaker
	to []string
}

func (s *takerSession) Reset()                               {}
func (s *takerSession) Logout() error                        { return nil }
func (s *takerSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *takerSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *takerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err == nil {
		s.l.got <- strings.Join(s.to, ",") + "\n" + string(b)
	}
	return err
}

// TestTransports: an address routed by Options.Transports reaches its next
// hop over LMTP, not Dovecot.
func TestTransports(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taker := lmtpTaker{got: make(chan string, 1)}
	srv := smtp.NewServer(taker)
	srv.LMTP = true
	go srv.Serve(ln)
	defer srv.Close()
	s := mailstack.StartForTestWith(t, mailstack.Options{
		Transports: map[string]string{"Bot@Visa.test": "lmtp:inet:" + ln.Addr().String()},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg := "From: alex@indyhall.test\r\nTo: bot@visa.test\r\nSubject: routed\r\n\r\nverify adam@indyhall.test\r\n"
	if err := s.Send(ctx, "alex@indyhall.test", []string{"bot@visa.test"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-taker.got:
		if !strings.HasPrefix(got, "bot@visa.test\n") || !strings.Contains(got, "Subject: routed") {
			t.Errorf("the next hop got %q", got)
		}
	case <-ctx.Done():
		t.Fatalf("nothing reached the LMTP next hop:\n%s", s.Logs())
	}
}
