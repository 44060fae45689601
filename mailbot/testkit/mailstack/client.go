package mailstack

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// AddUser adds a mailbox whose login name is its full address (any case).
// The user can log in over IMAP and receive mail when AddUser returns.
//
// Dovecot looks at its passwd-file again only in a new second, and a failed
// login costs 2 s or more (auth_failure_delay and a growing penalty), so
// AddUser waits for the next second, then checks with an IMAP LOGIN: it takes
// about half a second. Options.Users costs no wait.
func (s *Stack) AddUser(address, password string) error {
	line, err := passwdLine(address, password)
	if err != nil {
		return err
	}
	name := strings.ToLower(address)
	if err := s.appendUser(name, line); err != nil {
		return err
	}
	written := time.Now()

	s.mu.Lock()
	running := s.dovecotPID != 0
	s.mu.Unlock()
	if !running {
		return nil // Dovecot reads the whole file when it starts.
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	time.Sleep(time.Until(written.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	for {
		err := s.login(ctx, address, password)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mailstack: user %s cannot log in: %w", name, err)
		case <-time.After(time.Second):
		}
	}
}

// appendUser adds a line to the passwd-file. Appends always grow the file,
// so Dovecot, which compares its size and mtime, sees each one.
func (s *Stack) appendUser(name, line string) error {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if s.users[name] {
		return fmt.Errorf("mailstack: user %s exists already", name)
	}
	f, err := os.OpenFile(s.path(dovecotPasswd), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mailstack: adding user %s: %w", name, err)
	}
	s.users[name] = true
	return nil
}

// passwdLine returns a Dovecot passwd-file line for a user: name, {PLAIN}
// password, and empty uid, gid, gecos, home, shell and extra fields, which
// default_fields fills in.
func passwdLine(address, password string) (string, error) {
	if address == "" || strings.ContainsAny(address, ": \t\r\n") {
		return "", fmt.Errorf("mailstack: unusable address %q for a passwd-file", address)
	}
	if strings.ContainsAny(password, ":\r\n") {
		return "", fmt.Errorf("mailstack: password for %s holds ':' or a line break, which a passwd-file cannot", address)
	}
	return strings.ToLower(address) + ":{PLAIN}" + password + "::::::\n", nil
}

// login logs in over IMAP and out again.
func (s *Stack) login(ctx context.Context, user, password string) error {
	c, err := s.dialIMAP(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return fmt.Errorf("LOGIN: %w", err)
	}
	return c.Logout().Wait()
}

// dialIMAP connects to Dovecot's IMAP listener; the connection is closed when
// ctx ends, which ends any command waiting on it.
func (s *Stack) dialIMAP(ctx context.Context) (*imapclient.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.IMAPAddr)
	if err != nil {
		return nil, fmt.Errorf("mailstack: %w", waitErr(ctx, err))
	}
	c := imapclient.New(conn, nil)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	go func() {
		<-c.Closed()
		stop()
	}()
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("mailstack: IMAP greeting: %w", waitErr(ctx, err))
	}
	return c, nil
}

// openMailbox logs user in and selects mailbox, read-only (EXAMINE) when
// readOnly is set.
func (s *Stack) openMailbox(ctx context.Context, user, password, mailbox string, readOnly bool) (*imapclient.Client, error) {
	c, err := s.dialIMAP(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("mailstack: LOGIN %s: %w", user, waitErr(ctx, err))
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: readOnly}).Wait(); err != nil {
		c.Close()
		command := "SELECT"
		if readOnly {
			command = "EXAMINE"
		}
		return nil, fmt.Errorf("mailstack: %s %s of %s: %w", command, mailbox, user, waitErr(ctx, err))
	}
	return c, nil
}

// WaitForMessages waits until mailbox of user holds at least n messages and
// returns the raw bytes of all of them, in UID order. It polls every 50 ms
// without IDLE (which Dovecot delays by 500 ms), reads with BODY.PEEK[] and
// opens the mailbox read-only (EXAMINE), so it changes no flag.
func (s *Stack) WaitForMessages(ctx context.Context, user, password, mailbox string, n int) ([][]byte, error) {
	c, err := s.openMailbox(ctx, user, password, mailbox, true)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	count := 0
	failed := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("mailstack: %s of %s holds %d of %d messages: %w", mailbox, user, count, n, ctx.Err())
		}
		return fmt.Errorf("mailstack: %s in %s of %s: %w", what, mailbox, user, err)
	}
	for {
		// Each command lets Dovecot report new mail in the mailbox
		// (RFC 9051, section 5.2); UID SEARCH ALL also counts it.
		found, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return nil, failed("UID SEARCH", err)
		}
		uids := found.AllUIDs()
		count = len(uids)
		if count >= n {
			if count == 0 {
				return [][]byte{}, nil
			}
			return fetchAll(ctx, c, uids)
		}
		select {
		case <-ctx.Done():
			return nil, failed("", nil)
		case <-time.After(50 * time.Millisecond):
		}
		if err := c.Noop().Wait(); err != nil {
			return nil, failed("NOOP", err)
		}
	}
}

// fetchAll returns the raw bytes of the messages with the given UIDs, in UID
// order.
func fetchAll(ctx context.Context, c *imapclient.Client, uids []imap.UID) ([][]byte, error) {
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID:         true,
		BodySection: []*imap.FetchItemBodySection{body},
	}).Collect()
	if err != nil {
		return nil, fmt.Errorf("mailstack: UID FETCH: %w", waitErr(ctx, err))
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
	raw := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		raw = append(raw, m.FindBodySection(body))
	}
	return raw, nil
}

// Send submits raw (a whole message, header and body) to Postfix over plain
// SMTP as the envelope sender from ("" is the null sender, as in bounces) to
// the envelope recipients to. Postfix has queued it when Send returns.
func (s *Stack) Send(ctx context.Context, from string, to []string, raw []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.SMTPAddr)
	if err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("mailstack: EHLO: %w", waitErr(ctx, err))
	}
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("mailstack: sending from <%s> to %v: %w", from, to, waitErr(ctx, err))
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("mailstack: QUIT: %w", waitErr(ctx, err))
	}
	return nil
}

// waitErr prefers the context's error to the closed connection it caused.
func waitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
