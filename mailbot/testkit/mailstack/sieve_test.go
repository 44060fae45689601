package mailstack_test

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
)

// TestSieveVacation: a real Sieve "vacation" on a mailbox answers a person's
// mail once, from a null envelope sender with Auto-Submitted: auto-replied,
// through the stack's Postfix; it does not answer automatic mail.
func TestSieveVacation(t *testing.T) {
	t.Parallel()
	s := mailstack.StartForTest(t)
	const away, writer, robot = "away@sieve.test", "writer@sieve.test", "robot@sieve.test"
	var wg sync.WaitGroup
	for _, u := range []string{away, writer, robot} {
		wg.Go(func() {
			if err := s.AddUser(u, "pw"); err != nil {
				t.Errorf("AddUser: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := s.SetSieve(away, "require [\"vacation\"];\nthis is not sieve;\n"); err == nil {
		t.Error("SetSieve took a script that does not compile")
	}
	err := s.SetSieve(away, `require ["vacation"];
vacation :days 1 :subject "Away" "I am away until Monday.";
`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msg := func(from, subject string, extra ...string) []byte {
		h := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d@sieve.test>\r\nDate: %s\r\n",
			from, away, subject, time.Now().UnixNano(), time.Now().Format(time.RFC1123Z))
		for _, x := range extra {
			h += x + "\r\n"
		}
		return []byte(h + "\r\nhello\r\n")
	}
	// Automatic mail first: no notice for it.
	if err := s.Send(ctx, robot, []string{away}, msg(robot, "automatic", "Auto-Submitted: auto-replied")); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, writer, []string{away}, msg(writer, "first")); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, writer, []string{away}, msg(writer, "second")); err != nil {
		t.Fatal(err)
	}
	// Sieve keeps the mail it answers.
	if _, err := s.WaitForMessages(ctx, away, "pw", "INBOX", 3); err != nil {
		t.Fatal(err)
	}
	notices, err := s.WaitForMessages(ctx, writer, "pw", "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(notices[0])))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Auto-Submitted"); !strings.HasPrefix(got, "auto-replied") {
		t.Errorf("vacation notice: Auto-Submitted = %q", got)
	}
	if got := m.Header.Get("Return-Path"); got != "<>" {
		t.Errorf("vacation notice: Return-Path = %q, want the null sender", got)
	}
	if got := m.Header.Get("Subject"); got != "Away" {
		t.Errorf("vacation notice: Subject = %q", got)
	}
	// One notice per sender and period; none for automatic mail.
	time.Sleep(2 * time.Second)
	if n, _ := s.WaitForMessages(ctx, writer, "pw", "INBOX", 0); len(n) != 1 {
		t.Errorf("writer got %d vacation notices, want 1", len(n))
	}
	if n, _ := s.WaitForMessages(ctx, robot, "pw", "INBOX", 0); len(n) != 0 {
		t.Errorf("automatic mail got %d vacation notices, want none", len(n))
	}
}
