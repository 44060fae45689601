package itest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() { worlds = append(worlds, "stall") }

// stallingSMTP is a proxy in front of the submission server that holds a
// connection as soon as the client names a recipient of a stalled domain,
// as a submission server does while it checks a recipient whose server
// does not answer. close ends it all.
type stallingSMTP struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func stallSMTP(t *testing.T, backend string, domains ...string) *stallingSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingSMTP{ln: ln}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", backend)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			go func() { // server to client, as is
				buf := make([]byte, 4096)
				for {
					n, err := server.Read(buf)
					if n > 0 {
						client.Write(buf[:n])
					}
					if err != nil {
						client.Close()
						return
					}
				}
			}()
			go func() { // client to server, line by line, stalling
				r := bufio.NewReader(client)
				for {
					line, err := r.ReadString('\n')
					if len(line) > 0 {
						for _, d := range domains {
							if strings.HasPrefix(strings.ToUpper(line), "RCPT TO:") && strings.Contains(strings.ToLower(line), "@"+d+">") {
								time.Sleep(time.Hour) // until close
							}
						}
						if _, err := server.Write([]byte(line)); err != nil {
							return
						}
					}
					if err != nil {
						server.Close()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *stallingSMTP) addr() string { return p.ln.Addr().String() }

func (p *stallingSMTP) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestStalledRecipientsBesideTheFrontDesk: two strangers whose servers
// stall hold both of the bot's SMTP connections (the default two); a host's
// verify at the front desk is answered all the same, on a connection the
// bot opens beside the stalled ones.
func TestStalledRecipientsBesideTheFrontDesk(t *testing.T) {
	w := newWorld("stall")
	store := t.TempDir() + "/visa.db"
	proxy := stallSMTP(t, stack.SMTPAddr, "stall1.test", "stall2.test")
	b := startBot(t, w, store, proxy.addr())
	setup(t, w)
	for i := range 2 {
		from := fmt.Sprintf("someone@stall%d.test", i+1)
		send(t, from, w.bot, thunderbird(envelope{From: from, To: w.bot, Subject: "hello"}, "help"))
	}
	b.waitLog(`to=[someone@stall1.test]`, 30*time.Second)
	b.waitLog(`to=[someone@stall2.test]`, 30*time.Second)
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "front desk"}, "verify nobody@elsewhere.test"))
	mustContain(t, waitSubject(t, w.alex, "Re: front desk"), "NOT VERIFIED: nobody@elsewhere.test")
	proxy.close()
	b.stop()
}
