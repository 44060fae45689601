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

func init() { worlds = append(worlds, "stall", "refused") }

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
	return faultySMTP(t, backend, domains, nil)
}

// faultySMTP is stallSMTP that also refuses, for good (550), every
// recipient of the refused domains.
func faultySMTP(t *testing.T, backend string, domains, refused []string) *stallingSMTP {
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
						rcpt := strings.HasPrefix(strings.ToUpper(line), "RCPT TO:")
						for _, d := range domains {
							if rcpt && strings.Contains(strings.ToLower(line), "@"+d+">") {
								time.Sleep(time.Hour) // until close
							}
						}
						refuse := false
						for _, d := range refused {
							refuse = refuse || rcpt && strings.Contains(strings.ToLower(line), "@"+d+">")
						}
						if refuse {
							client.Write([]byte("550 5.1.1 <someone>: Recipient address rejected: User unknown\r\n"))
							continue
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
	mustContain(t, waitSubject(t, w.alex, "Re: front desk: NOT VERIFIED nobody@elsewhere.test"), "NOT VERIFIED: nobody@elsewhere.test")
	proxy.close()
	b.stop()
}

// TestRefusedReplyIsToldToTheAdmins: a reply the submission server refuses
// for good (550) is dropped, and the admins are told which, answering what.
func TestRefusedReplyIsToldToTheAdmins(t *testing.T) {
	w := newWorld("refused")
	store := t.TempDir() + "/visa.db"
	proxy := faultySMTP(t, stack.SMTPAddr, nil, []string{"stall1.test"})
	b := startBot(t, w, store, proxy.addr())
	setup(t, w)
	cmd := thunderbird(envelope{From: "someone@stall1.test", To: w.bot, Subject: "hello", MessageID: "refused-cmd@stall1.test"}, "help")
	send(t, "someone@stall1.test", w.bot, cmd)
	notice := waitSubject(t, w.admin, "[Coworking Visa] replies could not be delivered")
	mustContain(t, notice, "someone@stall1.test", "refused-cmd@stall1.test", "550")
	proxy.close()
	b.stop()
	if !strings.Contains(b.log.String(), "answers=refused-cmd@stall1.test") {
		t.Errorf("the log does not name the command mail the dropped reply answered")
	}
}
