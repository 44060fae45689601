package itest

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
)

func init() { worlds = append(worlds, "slowlink") }

// throttle is a TCP proxy to the real Dovecot that delivers the server's
// bytes at rate bytes per second, as a throttled provider link does.
func throttle(t *testing.T, backend string, rate int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
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
			go func() { io.Copy(server, client); server.Close() }()
			go func() {
				defer client.Close()
				buf := make([]byte, rate/20) // 50 ms worth
				for {
					n, err := server.Read(buf)
					if n > 0 {
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
						time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSlowIMAPLink: the bot reads its inbox through a link of 100 KB/s
// while commands with large attachments arrive: a fetch takes far longer
// than the watchdog's limit, bytes flowing all the while, and every
// command is answered; the log says the link is slow.
func TestSlowIMAPLink(t *testing.T) {
	w := newWorld("slowlink")
	store := t.TempDir() + "/visa.db"
	slow := throttle(t, stack.IMAPAddr, 100<<10)
	b := startBotConfig(t, writeBotConfig(t, botConfig{bot: w.bot, admin: w.admin, store: store, adjust: func(c *config.Config) {
		host, port := splitHostPort(t, slow)
		c.IMAP.Host = host
		fmt.Sscan(port, &c.IMAP.Port)
		// A watchdog of 4 s instead of 60 s, so that a fetch of half a
		// megabyte over this link (5 s) takes longer than it in a test
		// of seconds, while a login on a busy machine does not.
		c.IMAP.CommandTimeout = 4 * time.Second
	}}))
	setup(t, w)
	attachment := strings.Repeat("This line pads a large attachment that a slow link carries slowly.\n", 7500) // ~500 KB
	for i := range 3 {
		send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: fmt.Sprintf("slow %d", i)},
			fmt.Sprintf("verify nobody%d@elsewhere.test\n\n%s", i, attachment)))
	}
	for i := range 3 {
		mustContain(t, waitSubject(t, w.alex, fmt.Sprintf("Re: slow %d", i)), fmt.Sprintf("NOT VERIFIED: nobody%d@elsewhere.test", i))
	}
	b.stop()
	log := b.log.String()
	if !strings.Contains(log, "slow link") {
		t.Errorf("the log does not say the link is slow")
	}
	if strings.Contains(log, "UID FETCH: the server sent nothing for too long") {
		t.Errorf("the watchdog cut a fetch while bytes flowed")
	}
}
