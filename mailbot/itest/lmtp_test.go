package itest

import (
	"bufio"
	"net"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
)

// lmtpFront is where Postfix hands the lmtp world's bot its mail: a proxy
// the test controls, in front of the bot's own lmtp.listen.
var lmtpFront string

func init() {
	worlds = append(worlds, "lmtp")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	lmtpFront = l.Addr().String()
	l.Close()
	transports[newWorld("lmtp").bot] = "lmtp:inet:" + lmtpFront
}

// lmtpProxy passes LMTP connections from Postfix to the bot. Once told to
// hold, it keeps back the bot's next answer to a message's data: the bot
// has committed the message and said so, but Postfix has not heard it.
type lmtpProxy struct {
	ln      net.Listener
	backend string
	held    chan struct{} // a value once an answer is held
	drop    chan struct{} // closed: the held connection is cut, unanswered

	mu      sync.Mutex
	holding bool
	conns   []net.Conn
}

// dataReply is go-smtp's answer per recipient at the end of DATA in LMTP
// mode (RFC 2033 §4.2): "250 2.0.0 <rcpt> ...".
var dataReply = regexp.MustCompile(`^2\d\d \d\.\d\.\d <`)

func startLMTPProxy(t *testing.T, front, backend string) *lmtpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", front)
	if err != nil {
		t.Fatalf("LMTP proxy on %s: %v", front, err)
	}
	p := &lmtpProxy{ln: ln, backend: backend, held: make(chan struct{}, 1), drop: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *lmtpProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.backend)
		if err != nil {
			client.Close() // the bot is down: Postfix tries again later
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go func() { // client to server, as is
			buf := make([]byte, 32<<10)
			for {
				n, err := client.Read(buf)
				if n > 0 {
					server.Write(buf[:n])
				}
				if err != nil {
					server.Close()
					return
				}
			}
		}()
		go func() { // server to client, a line at a time
			defer client.Close()
			r := bufio.NewReader(server)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				p.mu.Lock()
				hold := p.holding && dataReply.MatchString(line)
				if hold {
					p.holding = false
				}
				p.mu.Unlock()
				if hold {
					p.held <- struct{}{}
					<-p.drop
					return // cut, unanswered
				}
				client.Write([]byte(line))
			}
		}()
	}
}

// hold keeps back the next answer to a message's data.
func (p *lmtpProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// startLMTPBot runs the bot of world w over LMTP alone: no imap section,
// lmtp.listen at listen (behind the proxy Postfix delivers to).
func startLMTPBot(t *testing.T, w world, store, listen string) *bot {
	t.Helper()
	cfg := writeConfig(t, w, store, stack.SMTPAddr, func(c *config.Config) {
		// What the test is about: mail handed over by Postfix, no mailbox.
		c.LMTP.Listen = listen
		c.IMAP.Host, c.IMAP.Port, c.IMAP.Username, c.IMAP.PasswordEnv = "", 0, "", ""
	})
	b := runBinary(t, nil, "run", "--config", cfg)
	b.config = cfg
	b.waitLog("lmtp listening", 30*time.Second)
	return b
}

// TestLMTPIntake runs the bot without a mailbox: Postfix, after the real
// OpenDKIM and OpenDMARC have judged each message, hands the bot's mail to
// its LMTP listener (transport_maps). A front desk's verify is answered; a
// message delivered twice is taken once; and a bot killed after taking a
// message but before Postfix heard so is delivered the message again by
// Postfix, which the next bot takes without acting twice.
func TestLMTPIntake(t *testing.T) {
	w := newWorld("lmtp")
	store := filepath.Join(t.TempDir(), "visa.db")
	listen := deadAddr(t)
	proxy := startLMTPProxy(t, lmtpFront, listen)
	b := startLMTPBot(t, w, store, listen)
	setup(t, w)

	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "roster"}, "add member adam@indyhall.test name=\"Adam Teterus\""))
	mustContain(t, waitMail(t, w.alex, "INBOX", 1)[0], "OK: added Adam Teterus <adam@indyhall.test>")
	send(t, w.mad, w.bot, outlook(envelope{From: w.mad, To: w.bot, Subject: "Visitor"}, "verify adam@indyhall.test"))
	mustContain(t, waitMail(t, w.mad, "INBOX", 1)[0], "VERIFIED: adam@indyhall.test is Adam Teterus, a member of Indy Hall")

	// The same message twice: the second is recognised and answered no
	// second time. A later message's reply comes after any reply to it
	// (one recipient's replies go out in order), so once it is there,
	// every reply to the duplicate is too.
	dup := signed(t, thunderbird(envelope{From: w.mad, To: w.bot, Subject: "Visitor", MessageID: "lmtp-dup@betahaus.test"}, "verify adam@indyhall.test"))
	sendAsIs(t, w.mad, w.bot, dup)
	sendAsIs(t, w.mad, w.bot, dup)
	b.waitLog("message already handled", 60*time.Second)
	send(t, w.mad, w.bot, thunderbird(envelope{From: w.mad, To: w.bot, Subject: "after", MessageID: "lmtp-after@betahaus.test"}, "verify nobody@indyhall.test"))
	replies := waitMail(t, w.mad, "INBOX", 3)
	if n := answering(replies, "<lmtp-dup@betahaus.test>"); n != 1 {
		t.Errorf("%d replies to the message delivered twice, want 1", n)
	}
	mustContain(t, replies[2], "NOT VERIFIED: nobody@indyhall.test")

	// Killed after taking a message, before Postfix heard it.
	proxy.hold()
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "add", MessageID: "lmtp-kill@indyhall.test"}, "add member kill@indyhall.test"))
	select {
	case <-proxy.held:
	case <-time.After(60 * time.Second):
		t.Fatalf("the bot did not answer the delivery:\n%s", lastLines(b.log.String(), 40))
	}
	b.kill()
	close(proxy.drop)
	b = startLMTPBot(t, w, store, listen)
	// Postfix delivers it again (minimal_backoff_time: 2 s here): taken
	// as already handled.
	b.waitLog("message already handled", 60*time.Second)
	if got := waitMail(t, w.alex, "INBOX", 2); answering(got, "<lmtp-kill@indyhall.test>") < 1 {
		t.Errorf("no reply to the message the bot was killed on")
	}
	b.stop()

	adds := memberAdds(t, store)
	if adds["kill@indyhall.test"] != 1 || adds["adam@indyhall.test"] != 1 {
		t.Errorf("adds = %v, want exactly one each", adds)
	}
	// A reply sent just before the kill may go out again after it, byte
	// for byte (at least once); the command took effect once.
	ids := map[string]bool{}
	for _, r := range waitMail(t, w.alex, "INBOX", 2) {
		if r.Header.Get("In-Reply-To") == "<lmtp-kill@indyhall.test>" {
			ids[r.Header.Get("Message-ID")] = true
		}
	}
	if len(ids) != 1 {
		t.Errorf("the replies to the killed delivery carry %d Message-IDs, want 1: %v", len(ids), ids)
	}
}

// answering counts the replies whose In-Reply-To is id.
func answering(rs []reply, id string) int {
	n := 0
	for _, r := range rs {
		if r.Header.Get("In-Reply-To") == id {
			n++
		}
	}
	return n
}
