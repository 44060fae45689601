package localmail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	testID      = "demo.coworkingvisa.test"
	alice       = "alice@example.org"
	alicePass   = "alice-secret"
	bob         = "bob@example.org"
	bobPass     = "bob-secret"
	guardWait   = 10 * time.Second // only ever reached when a test fails
	multipartCT = `multipart/mixed; boundary="b1"`
)

// multipartMsg is a message as a mail client writes it, with a body that must
// arrive byte for byte (trailing spaces, a dot line, a base64 part).
func multipartMsg(from, subject string) string {
	return "From: Alice Example <" + from + ">\r\n" +
		"To: " + bob + "\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + subject + "@example.org>\r\n" +
		"Date: Mon, 30 Nov 2026 09:00:00 +0100\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: " + multipartCT + "\r\n" +
		"\r\n" +
		"--b1\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"verify carol@example.net  \r\n" +
		".\r\n" +
		"..leading dots survive\r\n" +
		"--b1\r\n" +
		"Content-Type: text/csv\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		"ZW1haWwsbmFtZQpjYXJvbEBleGFtcGxlLm5ldCxDYXJvbAo=\r\n" +
		"--b1--\r\n"
}

func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := Start(context.Background(), Options{
		IMAPAddr:   "127.0.0.1:0",
		SMTPAddr:   "127.0.0.1:0",
		AuthservID: testID,
		Logf:       t.Logf,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, u := range [][2]string{{alice, alicePass}, {bob, bobPass}} {
		if err := s.AddUser(u[0], u[1]); err != nil {
			t.Fatalf("AddUser(%q): %v", u[0], err)
		}
	}
	return s
}

// dialSMTP connects and says EHLO; auth is nil for an unauthenticated
// session.
func dialSMTP(t *testing.T, s *Server, auth sasl.Client) (*smtp.Client, error) {
	t.Helper()
	c, err := smtp.Dial(s.SMTPAddr())
	if err != nil {
		t.Fatalf("dial SMTP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return c, err
		}
	}
	return c, nil
}

// send submits msg as alice (or whoever auth names) and fails the test on
// any refusal.
func send(t *testing.T, s *Server, auth sasl.Client, from string, to []string, msg string) {
	t.Helper()
	c, err := dialSMTP(t, s, auth)
	if err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		t.Fatalf("send mail: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

func aliceAuth() sasl.Client { return sasl.NewPlainClient("", alice, alicePass) }

func dialIMAP(t *testing.T, s *Server, user, pass string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.IMAPAddr(), opts)
	if err != nil {
		t.Fatalf("dial IMAP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("LOGIN %s: %v", user, err)
	}
	return c
}

// inbox returns the raw messages in user's INBOX, read over IMAP.
func inbox(t *testing.T, s *Server, user, pass string) []string {
	t.Helper()
	c := dialIMAP(t, s, user, pass, nil)
	data, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	if data.NumMessages == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(seqAll(), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.FindBodySection(section)))
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}
	return out
}

func seqAll() imap.SeqSet {
	var set imap.SeqSet
	set.AddRange(1, 0) // 1:*
	return set
}

// header reads the header fields of a raw message, top to bottom.
func header(t *testing.T, msg string) *textproto.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(msg)))
	if err != nil {
		t.Fatalf("read header: %v", err)
	}
	return &h
}

// firstField returns the first header line of msg, unfolded.
func firstField(t *testing.T, msg string) (key, value string) {
	t.Helper()
	h := header(t, msg)
	f := h.Fields()
	if !f.Next() {
		t.Fatalf("message has no header fields:\n%s", msg)
	}
	return f.Key(), f.Value()
}

// ourResults parses the Authentication-Results fields carrying our id.
func ourResults(t *testing.T, msg string) []string {
	t.Helper()
	var l []string
	h := header(t, msg)
	for f := h.FieldsByKey("Authentication-Results"); f.Next(); {
		id, _, err := authres.Parse(f.Value())
		if err == nil && id == testID {
			l = append(l, f.Value())
		}
	}
	return l
}

func TestDeliveryStampsDMARCPass(t *testing.T) {
	s := startServer(t)
	orig := multipartMsg(alice, "pass")
	send(t, s, aliceAuth(), alice, []string{bob}, orig)

	msgs := inbox(t, s, bob, bobPass)
	if len(msgs) != 1 {
		t.Fatalf("bob's INBOX has %d messages, want 1", len(msgs))
	}
	got := msgs[0]

	key, value := firstField(t, got)
	want := testID + "; dmarc=pass header.from=example.org"
	if key != "Authentication-Results" || !strings.HasPrefix(value, want) {
		t.Errorf("first field = %s: %s\nwant Authentication-Results: %s…", key, value, want)
	}
	id, results, err := authres.Parse(value)
	if err != nil || id != testID {
		t.Fatalf("authres.Parse(%q) = %q, %v", value, id, err)
	}
	var sawAuth bool
	for _, r := range results {
		if a, ok := r.(*authres.AuthResult); ok && a.Value == authres.ResultPass && a.Auth == alice {
			sawAuth = true
		}
	}
	if !sawAuth {
		t.Errorf("no auth=pass smtp.auth=%s in %q", alice, value)
	}

	h := header(t, got)
	if rp := h.Get("Return-Path"); rp != "<"+alice+">" {
		t.Errorf("Return-Path = %q, want <%s>", rp, alice)
	}
	if rcv := h.Get("Received"); !strings.Contains(rcv, "by "+testID+" with ESMTPA") || !strings.Contains(rcv, "for <"+bob+">") {
		t.Errorf("Received = %q", rcv)
	}
	// The original message follows our three fields untouched, header
	// bytes included.
	if !strings.HasSuffix(got, orig) {
		t.Errorf("stored message does not end with the submitted one:\n%s", got)
	}
	origHeader := header(t, orig)
	if n := h.Fields().Len() - origHeader.Fields().Len(); n != 3 {
		t.Errorf("%d header fields added, want 3 (Authentication-Results, Return-Path, Received)", n)
	}
}

// A client that leaves out Date or Message-ID gets them from the server, as
// from any submission server (RFC 6409 section 8).
func TestSubmissionAddsDateAndMessageID(t *testing.T) {
	s := startServer(t)
	bare := "From: " + alice + "\r\nTo: " + bob + "\r\nSubject: bare\r\n\r\nverify x@y.test\r\n"
	send(t, s, aliceAuth(), alice, []string{bob}, bare)
	msgs := inbox(t, s, bob, bobPass)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	h := header(t, msgs[0])
	if d, err := time.Parse(time.RFC1123Z, h.Get("Date")); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date = %q, %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.Contains(id, "@") {
		t.Errorf("Message-ID = %q", id)
	}
}

func TestDMARCFailsWhenFromIsNotTheLogin(t *testing.T) {
	s := startServer(t)
	send(t, s, aliceAuth(), alice, []string{bob}, multipartMsg(bob, "forged-from"))

	msgs := inbox(t, s, bob, bobPass)
	if len(msgs) != 1 {
		t.Fatalf("bob's INBOX has %d messages, want 1", len(msgs))
	}
	_, value := firstField(t, msgs[0])
	if want := testID + "; dmarc=fail header.from=example.org"; !strings.HasPrefix(value, want) {
		t.Errorf("Authentication-Results: %s\nwant %s…", value, want)
	}
}

func TestForgedResultsOfOurIDAreRemoved(t *testing.T) {
	s := startServer(t)
	forged := "Authentication-Results: " + testID + "; dmarc=pass header.from=example.org\r\n" +
		"Authentication-Results: (trust me) DEMO.CoworkingVisa.TEST 1;\r\n\tdmarc=pass header.from=example.org\r\n" +
		"Authentication-Results: \"" + testID + "\"; dkim=pass header.d=example.org\r\n" +
		"Authentication-Results: mx.other.example; dmarc=pass header.from=example.org\r\n" +
		"Return-Path: <bob@example.org>\r\n"
	send(t, s, aliceAuth(), alice, []string{bob}, forged+multipartMsg(bob, "forged-results"))

	msgs := inbox(t, s, bob, bobPass)
	if len(msgs) != 1 {
		t.Fatalf("bob's INBOX has %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	ours := ourResults(t, got)
	if len(ours) != 1 || !strings.HasPrefix(ours[0], testID+"; dmarc=fail header.from=example.org") {
		t.Errorf("Authentication-Results of %s = %q, want only our dmarc=fail", testID, ours)
	}
	if strings.Contains(got, "trust me") || strings.Contains(got, "dkim=pass") {
		t.Errorf("a forged field survived:\n%s", got)
	}
	h := header(t, got)
	if others := h.Values("Authentication-Results"); len(others) != 2 || !strings.HasPrefix(others[1], "mx.other.example;") {
		t.Errorf("Authentication-Results = %q, want ours and the other id's kept", others)
	}
	if rp := h.Values("Return-Path"); len(rp) != 1 || rp[0] != "<"+alice+">" {
		t.Errorf("Return-Path = %q, want only <%s>", rp, alice)
	}
}

func TestNullSenderIsAccepted(t *testing.T) {
	s := startServer(t)
	send(t, s, aliceAuth(), "", []string{bob}, multipartMsg(alice, "bounce"))

	msgs := inbox(t, s, bob, bobPass)
	if len(msgs) != 1 {
		t.Fatalf("bob's INBOX has %d messages, want 1", len(msgs))
	}
	if rp := header(t, msgs[0]).Get("Return-Path"); rp != "<>" {
		t.Errorf("Return-Path = %q, want <>", rp)
	}
}

func TestAuthLoginAndCaseInsensitiveAddresses(t *testing.T) {
	s := startServer(t)
	send(t, s, sasl.NewLoginClient("Alice@Example.ORG", alicePass), alice, []string{"BOB@example.org"},
		strings.Replace(multipartMsg("ALICE@example.org", "login"), "From:", "FROM:", 1))

	msgs := inbox(t, s, "Bob@Example.Org", bobPass)
	if len(msgs) != 1 {
		t.Fatalf("bob's INBOX has %d messages, want 1", len(msgs))
	}
	_, value := firstField(t, msgs[0])
	want := testID + "; dmarc=pass header.from=example.org; auth=pass smtp.auth=" + alice
	if value != want {
		t.Errorf("Authentication-Results: %s\nwant %s", value, want)
	}
}

func smtpCode(err error) int {
	var e *smtp.SMTPError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestMailBeforeAuthIsRefused(t *testing.T) {
	s := startServer(t)
	c, _ := dialSMTP(t, s, nil)
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") || !strings.Contains(mechs, "LOGIN") {
		t.Errorf("AUTH extension = %v %q, want PLAIN and LOGIN", ok, mechs)
	}
	if err := c.Mail(alice, nil); smtpCode(err) != 530 {
		t.Errorf("MAIL without AUTH: %v, want 530", err)
	}
	if err := c.Rcpt(bob, nil); err == nil {
		t.Errorf("RCPT after a refused MAIL succeeded")
	}
}

func TestBadCredentialsAreRefused(t *testing.T) {
	s := startServer(t)
	for name, auth := range map[string]sasl.Client{
		"wrong password":   sasl.NewPlainClient("", alice, "guess"),
		"unknown user":     sasl.NewPlainClient("", "mallory@example.org", alicePass),
		"other identity":   sasl.NewPlainClient(bob, alice, alicePass),
		"LOGIN wrong pass": sasl.NewLoginClient(alice, bobPass),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := dialSMTP(t, s, auth)
			if smtpCode(err) != 535 {
				t.Fatalf("AUTH: %v, want 535", err)
			}
			if err := c.Mail(alice, nil); smtpCode(err) != 530 {
				t.Errorf("MAIL after failed AUTH: %v, want 530", err)
			}
		})
	}
	c, err := imapclient.DialInsecure(s.IMAPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(alice, "guess").Wait(); err == nil {
		t.Errorf("IMAP LOGIN with a wrong password succeeded")
	}
}

func TestUnknownRecipientIsRefusedAtRcpt(t *testing.T) {
	s := startServer(t)
	c, err := dialSMTP(t, s, aliceAuth())
	if err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail(alice, nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	if err := c.Rcpt("nobody@example.org", nil); smtpCode(err) != 550 {
		t.Errorf("RCPT to unknown user: %v, want 550", err)
	}
	if err := c.Rcpt(bob, nil); err != nil {
		t.Errorf("RCPT to bob after a refused one: %v", err)
	}
}

func TestSizeLimit(t *testing.T) {
	s := startServer(t)
	c, err := dialSMTP(t, s, aliceAuth())
	if err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if n, ok := c.MaxMessageSize(); !ok || n != MaxMessageBytes {
		t.Errorf("SIZE = %d, %v; want %d", n, ok, MaxMessageBytes)
	}
	if err := c.Mail(alice, &smtp.MailOptions{Size: MaxMessageBytes + 1}); smtpCode(err) != 552 {
		t.Errorf("MAIL with SIZE over the limit: %v, want 552", err)
	}
}

func TestIdleAnnouncesNewMail(t *testing.T) {
	s := startServer(t)
	exists := make(chan uint32, 16)
	c := dialIMAP(t, s, bob, bobPass, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					exists <- *data.NumMessages
				}
			},
		},
	})
	if !c.Caps().Has(imap.CapIdle) {
		t.Fatalf("server does not advertise IDLE: %v", c.Caps())
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT: %v", err)
	}

	// Mail that arrives between two commands must be announced as soon as
	// the client starts idling…
	send(t, s, aliceAuth(), alice, []string{bob}, multipartMsg(alice, "before-idle"))
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	waitExists(t, exists, 1)

	// …and mail that arrives while it idles, at once.
	send(t, s, aliceAuth(), alice, []string{bob}, multipartMsg(alice, "during-idle"))
	waitExists(t, exists, 2)

	if err := idle.Close(); err != nil {
		t.Fatalf("stop IDLE: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
}

func waitExists(t *testing.T, exists <-chan uint32, want uint32) {
	t.Helper()
	select {
	case n := <-exists:
		if n != want {
			t.Fatalf("EXISTS %d, want %d", n, want)
		}
	case <-time.After(guardWait):
		t.Fatalf("no EXISTS %d announced while idling", want)
	}
}

func TestMoveAndKeywords(t *testing.T) {
	s := startServer(t)
	for _, subject := range []string{"one", "two", "three"} {
		send(t, s, aliceAuth(), alice, []string{bob}, multipartMsg(alice, subject))
	}
	c := dialIMAP(t, s, bob, bobPass, nil)
	for _, cap := range []imap.Cap{imap.CapMove, imap.CapUIDPlus} {
		if !c.Caps().Has(cap) {
			t.Errorf("server does not advertise %s: %v", cap, c.Caps())
		}
	}
	if err := c.Create("Handled", nil).Wait(); err != nil {
		t.Fatalf("CREATE: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT: %v", err)
	}

	const keyword = imap.Flag("$Foo")
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{keyword}}
	if err := c.Store(imap.UIDSetNum(1), store, nil).Close(); err != nil {
		t.Fatalf("UID STORE +FLAGS (%s): %v", keyword, err)
	}
	unhandled := &imap.SearchCriteria{NotFlag: []imap.Flag{keyword}}
	if got := uidSearch(t, c, unhandled); !equalUIDs(got, 2, 3) {
		t.Errorf("UID SEARCH NOT KEYWORD %s = %v, want [2 3]", keyword, got)
	}
	if got := uidSearch(t, c, &imap.SearchCriteria{Flag: []imap.Flag{keyword}}); !equalUIDs(got, 1) {
		t.Errorf("UID SEARCH KEYWORD %s = %v, want [1]", keyword, got)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("UID FETCH 1 FLAGS: %v, %d messages", err, len(msgs))
	}
	if !hasFlagFold(msgs[0].Flags, keyword) {
		t.Errorf("flags of UID 1 = %v, want %s", msgs[0].Flags, keyword)
	}

	moved, err := c.Move(imap.UIDSetNum(2), "Handled").Wait()
	if err != nil {
		t.Fatalf("UID MOVE 2 Handled: %v", err)
	}
	if dest, ok := moved.DestUIDs.(imap.UIDSet); !ok || !dest.Contains(1) || moved.SourceUIDs.String() != "2" {
		t.Errorf("COPYUID = %v → %v, want 2 → 1", moved.SourceUIDs, moved.DestUIDs)
	}
	// imapmemserver's own MOVE announced every moved message twice.
	if n := c.Mailbox().NumMessages; n != 2 {
		t.Errorf("client counts %d messages in INBOX after the move, want 2", n)
	}
	if got := uidSearch(t, c, &imap.SearchCriteria{}); !equalUIDs(got, 1, 3) {
		t.Errorf("INBOX UIDs after move = %v, want [1 3]", got)
	}
	st, err := c.Status("Handled", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != 1 {
		t.Errorf("STATUS Handled = %+v, %v; want 1 message", st, err)
	}
	// A move to a missing mailbox fails and leaves the message in place.
	if _, err := c.Move(imap.UIDSetNum(3), "Missing").Wait(); err == nil {
		t.Errorf("UID MOVE to a missing mailbox succeeded")
	}
	if got := uidSearch(t, c, &imap.SearchCriteria{}); !equalUIDs(got, 1, 3) {
		t.Errorf("INBOX UIDs after failed move = %v, want [1 3]", got)
	}
}

func uidSearch(t *testing.T, c *imapclient.Client, criteria *imap.SearchCriteria) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(criteria, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH: %v", err)
	}
	return data.AllUIDs()
}

func equalUIDs(got []imap.UID, want ...imap.UID) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func hasFlagFold(flags []imap.Flag, flag imap.Flag) bool {
	for _, f := range flags {
		if strings.EqualFold(string(f), string(flag)) {
			return true
		}
	}
	return false
}

func TestInboxCannotBeDeleted(t *testing.T) {
	s := startServer(t)
	c := dialIMAP(t, s, bob, bobPass, nil)
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Errorf("DELETE INBOX succeeded")
	}
	if err := c.Rename("INBOX", "Old", nil).Wait(); err != nil {
		t.Fatalf("RENAME INBOX Old: %v", err)
	}
	send(t, s, aliceAuth(), alice, []string{bob}, multipartMsg(alice, "after-rename"))
	if msgs := inbox(t, s, bob, bobPass); len(msgs) != 1 {
		t.Errorf("INBOX after rename has %d messages, want 1", len(msgs))
	}
}

func TestAddUser(t *testing.T) {
	s := startServer(t)
	for _, bad := range []string{"", "carol", "Carol <carol@example.org>", "carol@example.org, dave@example.org"} {
		if err := s.AddUser(bad, "pw"); err == nil {
			t.Errorf("AddUser(%q) succeeded", bad)
		}
	}
	if err := s.AddUser("Alice@example.org", "other"); err == nil {
		t.Errorf("AddUser of an existing address in other case succeeded")
	}
	if err := s.AddUser("carol@example.org", ""); err == nil {
		t.Errorf("AddUser with an empty password succeeded")
	}
	if err := s.AddUser("carol@example.org", "carol-pw"); err != nil {
		t.Fatalf("AddUser(carol): %v", err)
	}
	c := dialIMAP(t, s, "carol@example.org", "carol-pw", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("SELECT INBOX of a new user: %v", err)
	}
}

func TestStartRejectsBadAuthservID(t *testing.T) {
	if s, err := Start(context.Background(), Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0", AuthservID: "a; dmarc=pass"}); err == nil {
		s.Close()
		t.Fatalf("Start with an authserv-id holding ';' succeeded")
	}
}

func TestCloseStopsListenersAndSessions(t *testing.T) {
	s, err := Start(context.Background(), Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := s.AddUser(bob, bobPass); err != nil {
		t.Fatal(err)
	}
	c := dialIMAP(t, s, bob, bobPass, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	raw, err := net.Dial("tcp", s.SMTPAddr()) // a session that never says a word
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, addr := range []string{s.IMAPAddr(), s.SMTPAddr()} {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Close", addr)
		}
	}
	select {
	case <-c.Closed():
	case <-time.After(guardWait):
		t.Fatalf("idling IMAP connection still open after Close")
	}
	idle.Wait()
	raw.SetReadDeadline(time.Now().Add(guardWait))
	if _, err := readAll(raw); err != nil {
		t.Errorf("SMTP connection not closed by Close: %v", err)
	}
}

func TestContextCancelStopsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Options{IMAPAddr: "127.0.0.1:0", SMTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()
	if err := s.AddUser(bob, bobPass); err != nil {
		t.Fatal(err)
	}
	c := dialIMAP(t, s, bob, bobPass, nil)
	cancel()
	select {
	case <-c.Closed():
	case <-time.After(guardWait):
		t.Fatalf("IMAP connection still open after the context was cancelled")
	}
}

// readAll reads until the peer closes the connection (greeting included).
func readAll(c net.Conn) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(c)
	return buf.Bytes(), err
}

func TestMalformedHeaderIsRejected(t *testing.T) {
	s := startServer(t)
	c, err := dialSMTP(t, s, aliceAuth())
	if err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	err = c.SendMail(alice, []string{bob}, strings.NewReader("this is not a header\r\n\r\nverify carol@example.net\r\n"))
	if smtpCode(err) != 554 {
		t.Errorf("DATA with a malformed header: %v, want 554", err)
	}
	if msgs := inbox(t, s, bob, bobPass); len(msgs) != 0 {
		t.Errorf("bob's INBOX has %d messages, want none", len(msgs))
	}
}
