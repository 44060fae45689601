package mailbot

import (
	"context"
	"io"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"

	"github.com/coworkingvisa/mailbot/storage"
)

// readReply is a queued reply's Subject and text part.
func readReply(t *testing.T, raw string) (subject, text string) {
	t.Helper()
	mr, err := gomail.CreateReader(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("the reply does not parse: %v", err)
	}
	if subject, err = mr.Header.Subject(); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*gomail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "text/plain" {
				b, _ := io.ReadAll(p.Body)
				text = string(b)
			}
		}
	}
	return subject, strings.ReplaceAll(text, "\r\n", "\n")
}

// newReadingBot is newTestBot with the default limits: these tests send
// more messages from one manager than newTestBot's hourly limit of 3.
func newReadingBot(t *testing.T) (*Bot, *storage.DB) {
	b, db, _ := newTestBot(t, fixedClock())
	b.set.Limits = SettingsFrom(testConfig()).Limits
	b.limiter = NewLimiter(b.set.Limits)
	return b, db
}

// handleOne handles one message and returns its reply.
func handleOne(t *testing.T, b *Bot, db *storage.DB, raw []byte) (subject, text string) {
	t.Helper()
	before := len(queued(t, db))
	b.Handle(context.Background(), raw)
	all := queued(t, db)
	if len(all) != before+1 {
		t.Fatalf("%d replies queued, want one more than %d", len(all), before)
	}
	return readReply(t, all[len(all)-1])
}

// A host at a busy desk reads the answer of a single verify where a phone
// shows it: in the Subject and as the first line.
func TestSingleVerifyAnswerFirst(t *testing.T) {
	b, db := newReadingBot(t)
	db.Update(func(tx *storage.Tx) error {
		tx.PutSpace(storage.Space{ID: "betahaus", Name: "betahaus", City: "Berlin", Country: "DE"})
		return tx.PutMember(storage.Member{Space: "betahaus", Email: "jonas@betahaus.test", Name: "Jonas Müller", Status: "active"})
	})
	for _, c := range []struct {
		subject, body string
		wantSubject   string
		wantFirst     string
		wantAlso      []string
	}{
		{"verify", "verify jonas@betahaus.test", "Re: verify: VERIFIED jonas@betahaus.test (betahaus)",
			"VERIFIED: jonas@betahaus.test is Jonas Müller, a member of betahaus (Berlin, DE).", nil},
		// The Subject names the address already: the answer does not repeat it.
		{"verify nobody@elsewhere.test", "Hi,\n\nAlex", "Re: verify nobody@elsewhere.test: NOT VERIFIED",
			"NOT VERIFIED: nobody@elsewhere.test is not an active member of a participating space.",
			[]string{"Check the spelling", "Questions about the network: admin@visa.test"}},
		{"", "- please verify Nobody@Elsewhere.test", "Re: NOT VERIFIED nobody@elsewhere.test",
			"NOT VERIFIED: nobody@elsewhere.test is not an active member of a participating space.", nil},
		// The Subject and the body ask once.
		{"verify jonas@betahaus.test", "verify jonas@betahaus.test", "Re: verify jonas@betahaus.test: VERIFIED (betahaus)",
			"VERIFIED: jonas@betahaus.test", []string{"1 command: 1 VERIFIED."}},
	} {
		subject, text := handleOne(t, b, db, mail("alex@indyhall.test", "", c.subject, c.body))
		if subject != c.wantSubject {
			t.Errorf("Subject = %q, want %q", subject, c.wantSubject)
		}
		if !strings.HasPrefix(text, c.wantFirst) {
			t.Errorf("the reply does not start with its answer %q:\n%s", c.wantFirst, text)
		}
		for _, w := range c.wantAlso {
			if !strings.Contains(text, w) {
				t.Errorf("the reply lacks %q:\n%s", w, text)
			}
		}
	}
	// Two commands: a transcript, under the sender's own Subject.
	subject, text := handleOne(t, b, db, mail("alex@indyhall.test", "", "front desk", "verify jonas@betahaus.test\nverify nobody@elsewhere.test"))
	if subject != "Re: front desk" || !strings.HasPrefix(text, "> verify jonas@betahaus.test") {
		t.Errorf("two verifies: Subject %q, text:\n%s", subject, text)
	}
}

// A message with the same command in the Subject and the body runs it once:
// one help, one roster file, one verification.
func TestSubjectAndBodyRunOnce(t *testing.T) {
	b, db := newReadingBot(t)
	_, text := handleOne(t, b, db, mail("alex@indyhall.test", "", "help", "help"))
	if n := strings.Count(text, "How to use the Coworking Visa bot"); n != 1 || !strings.Contains(text, "1 command: 1 OK.") {
		t.Errorf("help in the Subject and the body: %d help texts:\n%s", n, text)
	}
	_, text = handleOne(t, b, db, mail("alex@indyhall.test", "", "add member ann@indyhall.test", "add member ann@indyhall.test"))
	if strings.Contains(text, "ERROR") || strings.Count(text, "OK: added") != 1 {
		t.Errorf("add member in the Subject and the body:\n%s", text)
	}
	var verifications int
	handleOne(t, b, db, mail("alex@indyhall.test", "", "verify ann@indyhall.test", "verify ann@indyhall.test"))
	db.View(func(tx *storage.Tx) error {
		return tx.Verifications(0, func(storage.Verification) bool { verifications++; return true })
	})
	if verifications != 1 {
		t.Errorf("%d verifications recorded, want 1", verifications)
	}
}

// First contact: a message without a command opens with why it gets the
// help, then the help for that reader, and only then the lines it ignored.
func TestFirstContact(t *testing.T) {
	b, db := newReadingBot(t)
	subject, text := handleOne(t, b, db, mail("someone@elsewhere.test", "", "Hello", "Hi there,\n\nhow does this work?\n\nBest, Sam"))
	if subject != "Re: Hello" {
		t.Errorf("Subject = %q", subject)
	}
	help, ignored := strings.Index(text, "How to use"), strings.Index(text, "Not commands (ignored):")
	if !strings.HasPrefix(text, "Your message holds no command the bot knows") || help < 0 || ignored < help {
		t.Errorf("first contact does not open with the help:\n%s", text)
	}
	// A stranger's help: what they may do, and whom to ask.
	for _, w := range []string{"someone@elsewhere.test is on no roster", "my data", "Questions? Ask admin@visa.test."} {
		if !strings.Contains(text, w) {
			t.Errorf("a stranger's help lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "add member EMAIL") {
		t.Errorf("a stranger's help shows the managers' commands:\n%s", text)
	}
	// A manager's help shows theirs.
	_, text = handleOne(t, b, db, mail("alex@indyhall.test", "", "Hi", "Hello bot"))
	if !strings.Contains(text, "verify visitor@example.org") || !strings.Contains(text, "add member EMAIL") ||
		strings.Contains(text, "add space ID") {
		t.Errorf("a manager's help:\n%s", text)
	}
}

// A manager an admin adds gets a welcome of their own: what they can do,
// examples, and whom to ask.
func TestWelcomeNotice(t *testing.T) {
	b, db := newReadingBot(t)
	b.Handle(context.Background(), mail("admin@visa.test", "", "new manager", "add manager sam@indyhall.test space=indyhall"))
	all := queued(t, db)
	if len(all) != 2 {
		t.Fatalf("%d messages queued, want the reply and the welcome", len(all))
	}
	var welcome string
	for _, raw := range all {
		if strings.Contains(raw, "To: <sam@indyhall.test>") {
			welcome = raw
		}
	}
	subject, text := readReply(t, welcome)
	if subject != "[Visa] Welcome: you now manage indyhall" {
		t.Errorf("welcome Subject = %q", subject)
	}
	for _, w := range []string{"admin@visa.test made you a manager of Indy Hall", "  verify visitor@example.org",
		"Send help for every command you can use.", "Questions? Ask admin@visa.test.", "Auto-Submitted: auto-generated"} {
		if !strings.Contains(text, w) && !strings.Contains(welcome, w) {
			t.Errorf("the welcome lacks %q:\n%s", w, text)
		}
	}
}
