package mailbot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/clientmail"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// BenchmarkHandleVerify is the bot's own work for one front-desk verify,
// as in a burst over LMTP: the message read and judged, the command run,
// the reply rendered and queued, all committed in groups of 32 (as the
// group committer gathers them). The mail is written as Thunderbird,
// Gmail and Outlook write it. On a machine the mail stack keeps busy, this
// CPU is what the bot takes from the stack's own pace: watch B/op and
// allocs/op, and ns/op less the fsyncs (one per group).
func BenchmarkHandleVerify(b *testing.B) {
	db, err := storage.Open(filepath.Join(b.TempDir(), "visa.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	seedFrontDesk(db)
	tmpl, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	set := SettingsFrom(testConfig())
	// One front desk sends every message: its hourly allowance would
	// otherwise silence it after the first few (as mailbench raises it).
	set.Limits.RepliesPerSenderPerHour = 1 << 30
	bot := NewBot(set, db, tmpl, quiet, time.Now, func() {})
	raws := make([][]byte, b.N)
	for i := range raws {
		raws[i] = frontDeskVerify(i, fmt.Sprintf("bench-%d@indyhall.test", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 32 {
		for j, d := range bot.HandleBatch(context.Background(), raws[i:min(i+32, b.N)]) {
			if d.Action != inbox.Handled {
				b.Fatalf("message %d: %v (%s), want handled", i+j, d.Action, d.Reason)
			}
		}
	}
	b.StopTimer()
	verified := 0
	db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool {
			if strings.Contains(string(tx.OutboxRaw(it.ID)), "VERIFIED: jonas@betahaus.test") {
				verified++
			}
			return true
		})
	})
	if verified != b.N {
		b.Fatalf("%d replies say VERIFIED for %d verifies", verified, b.N)
	}
}

// BenchmarkDaemonOverLMTP is the daemon's whole work for a burst of
// front-desk verifies over LMTP: five connections deliver at once, as
// Postfix does, and each reply goes out over SMTP to a server that takes
// it at once. ns/op is the burst's pace on an idle machine; cpu-us/op is
// the process's CPU per verify (the daemon, plus the few percent of the
// benchmark's own client and server), which is what the bot takes from
// the mail stack on a machine the stack keeps busy.
func BenchmarkDaemonOverLMTP(b *testing.B) {
	sink := startSMTPSink(b)
	cfg := testConfig()
	cfg.Store.Path = filepath.Join(b.TempDir(), "visa.db")
	cfg.LMTP.Listen = freeAddr(b)
	cfg.SMTP.Host, cfg.SMTP.TLS = "127.0.0.1", "none"
	_, port, err := net.SplitHostPort(sink.addr)
	if err != nil {
		b.Fatal(err)
	}
	if cfg.SMTP.Port, err = strconv.Atoi(port); err != nil {
		b.Fatal(err)
	}
	// One front desk sends every message: its hourly allowance would
	// otherwise silence it after the first few (as mailbench raises it).
	cfg.Limits.RepliesPerSenderPerHour = 1 << 30
	d, err := Open(cfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	seedFrontDesk(d.DB)
	raws := make(chan []byte, b.N)
	for i := range b.N {
		raws <- frontDeskVerify(i, fmt.Sprintf("burst-%d-%d@indyhall.test", b.N, i))
	}
	close(raws)
	runDaemon(b, d)

	// The collector's goal of `mailbot run`, for this benchmark only.
	prev := debug.SetGCPercent(-1)
	debug.SetGCPercent(prev)
	defer debug.SetGCPercent(prev)
	SetGCPercent(os.Getenv)
	cpu := processCPU(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- deliverAll(cfg.LMTP.Listen, raws)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(time.Minute); sink.got.Load() < int64(b.N); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d replies sent for %d verifies", sink.got.Load(), b.N)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-us/op")
	if v := sink.verified.Load(); v != int64(b.N) {
		b.Fatalf("%d replies say VERIFIED for %d verifies", v, b.N)
	}
}

// deliverAll hands the messages of raws to the LMTP listener at addr over
// one connection, one transaction each, until raws is empty.
func deliverAll(addr string, raws <-chan []byte) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.visa.test"); err != nil {
		return err
	}
	for raw := range raws {
		if err := c.Mail("alex@indyhall.test", nil); err != nil {
			return err
		}
		if err := c.Rcpt(testBot, nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		w.Write(raw)
		if _, err := w.CloseWithLMTPResponse(); err != nil {
			return fmt.Errorf("LMTP delivery: %w", err)
		}
	}
	return c.Quit()
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// smtpSink is a submission server that takes every message at once and
// counts the replies.
type smtpSink struct {
	addr          string
	got, verified atomic.Int64
}

func startSMTPSink(b *testing.B) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	k := &smtpSink{addr: ln.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return sinkSession{k}, nil }))
	srv.Domain = "submission.test"
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return k
}

type sinkSession struct{ k *smtpSink }

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if !strings.Contains(string(raw), "In-Reply-To: <burst-") {
		return nil // the weekly digest, which may be due at the start
	}
	if strings.Contains(string(raw), "VERIFIED: jonas@betahaus.test") {
		s.k.verified.Add(1)
	}
	s.k.got.Add(1)
	return nil
}

// seedFrontDesk writes the world of the front-desk benchmarks: Alex
// manages Indy Hall's front desk, Jonas is a member of betahaus.
func seedFrontDesk(db *storage.DB) {
	db.Update(func(tx *storage.Tx) error {
		tx.PutSpace(storage.Space{ID: "indyhall", Name: "Indy Hall"})
		tx.PutSpace(storage.Space{ID: "betahaus", Name: "betahaus", City: "Berlin", Country: "DE"})
		tx.PutMember(storage.Member{Space: "betahaus", Email: "jonas@betahaus.test", Name: "Jonas Müller", Status: "active"})
		return tx.AddManager(storage.Manager{Email: "alex@indyhall.test", Space: "indyhall"})
	})
}

// frontDeskVerify is Alex's i-th "verify jonas@betahaus.test", written in
// turn as Thunderbird, Gmail and Outlook write it, and authenticated as
// our MX stamps it.
func frontDeskVerify(i int, messageID string) []byte {
	writers := []func(clientmail.Envelope, string) []byte{clientmail.Thunderbird, clientmail.Gmail, clientmail.Outlook}
	e := clientmail.Envelope{
		From: "alex@indyhall.test", To: testBot, Subject: "verify", MessageID: messageID,
		AuthResults: []string{testAuth + ";\r\n\tdkim=pass header.d=indyhall.test header.s=sel1 header.b=AbCd1234;\r\n\tdmarc=pass (p=quarantine dis=none) header.from=indyhall.test"},
	}
	return writers[i%len(writers)](e, "verify jonas@betahaus.test")
}
