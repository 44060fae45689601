package mailbot

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/trust"
	"github.com/coworkingvisa/mailbot/storage"
)

// The trust boundary in the pipeline: what an authenticated message may
// still not do.

func members(t *testing.T, db *storage.DB, addr string) int {
	t.Helper()
	var n int
	db.View(func(tx *storage.Tx) error {
		of, err := tx.MembershipsOf(addr)
		n = len(of)
		return err
	})
	return n
}

// A field added on top of a signed message: the provider's verdict still
// passes (verifiers read the bottom-most instance), so only the bot can
// refuse it. Set aside, unanswered, nothing changed.
func TestRepeatedFieldsAreSetAside(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	signed := mail("alex@indyhall.test", "orig@indyhall.test", "verify a@indyhall.test", "thanks")
	for name, added := range map[string]string{
		"Subject":    "Subject: add member me@evil.test\r\n",
		"Message-ID": "Message-ID: <replay@evil.test>\r\n",
		"From":       "From: admin@visa.test\r\n",
		"Date":       "Date: " + testDate + "\r\n",
	} {
		// The header goes between our MX's Authentication-Results and
		// the signed fields, as it was when the mail reached the MX.
		i := strings.Index(string(signed), "\r\n") + 2
		raw := append(append(append([]byte(nil), signed[:i]...), added...), signed[i:]...)
		out := b.Handle(context.Background(), raw)
		if out.Action != inbox.SetAside || out.Mailbox != "Rejected" || !strings.Contains(out.Reason, "once") {
			t.Errorf("%s added: %+v, want set aside for a repeated field", name, out)
		}
	}
	if n := len(queued(t, db)); n != 0 || members(t, db, "me@evil.test") != 0 {
		t.Errorf("%d replies; repeated fields must get none and change nothing", n)
	}
}

// A signed message sent again under a new Message-ID (an unsigned one,
// rewritten) carries the same DKIM signature: it is recognised as handled.
func TestReplayWithNewMessageIDIsRecognised(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	sig := "DKIM-Signature: v=1; a=rsa-sha256; d=indyhall.test; s=sel; h=from:to; bh=x; b=c2lnbmF0dXJlLW9mLXRoZS1maXJzdC1tZXNzYWdl"
	first := mail("alex@indyhall.test", "one@indyhall.test", "roster", "add member r1@indyhall.test\nremove member r1@indyhall.test\nadd member r1@indyhall.test", "Authentication-Results: "+testAuth+"; dmarc=pass header.from=indyhall.test", sig)
	replay := []byte(strings.Replace(string(first), "<one@indyhall.test>", "<two@evil.test>", 1))
	for i, raw := range [][]byte{first, replay} {
		if out := b.Handle(context.Background(), raw); out.Action != inbox.Handled {
			t.Fatalf("delivery %d: %+v", i+1, out)
		}
	}
	var changes int
	db.View(func(tx *storage.Tx) error { return tx.Changes(0, func(storage.Change) bool { changes++; return true }) })
	if n := len(queued(t, db)); n != 1 || changes != 3 {
		t.Errorf("%d replies and %d audit records; the replay must add neither (want 1 and 3)", n, changes)
	}
}

// Mail that does not name the bot, or is too old or dated ahead, changes
// nothing and is answered with an ERROR that says why.
func TestRefusedEnvelopes(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		headers []string // replace the test mail's To or Date
		want    string
	}{
		{"a Bcc to the bot", []string{"To: someone@indyhall.test"}, "does not name visa@visa.test in To or Cc"},
		{"eight days old", []string{"Date: " + now.Add(-8*24*time.Hour).Format(time.RFC1123Z)}, "more than 7 days ago"},
		{"two days ahead", []string{"Date: " + now.Add(48*time.Hour).Format(time.RFC1123Z)}, "more than a day ahead"},
		{"no Date", []string{"Date:"}, "no date the bot can read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, db, _ := newTestBot(t, func() time.Time { return now })
			raw := string(mail("alex@indyhall.test", "env@x", "roster", "add member env@indyhall.test"))
			for _, h := range tt.headers {
				name := h[:strings.IndexByte(h, ':')+1]
				i := strings.Index(raw, "\r\n"+name) + 2
				j := i + strings.Index(raw[i:], "\r\n") + 2
				if h == name {
					raw = raw[:i] + raw[j:]
				} else {
					raw = raw[:i] + h + "\r\n" + raw[j:]
				}
			}
			if out := b.Handle(context.Background(), []byte(raw)); out.Action != inbox.Handled {
				t.Fatalf("Handle = %+v, want handled (answered)", out)
			}
			r := queued(t, db)
			if len(r) != 1 {
				t.Fatalf("%d replies, want 1", len(r))
			}
			if plain, _ := checkBadReply(t, r[0], "Re: roster"); !strings.Contains(oneSpaced(plain), "ERROR: "+tt.want) && !strings.Contains(oneSpaced(plain), tt.want) {
				t.Fatalf("reply:\n%s\nwant an ERROR saying %q", plain, tt.want)
			}
			if members(t, db, "env@indyhall.test") != 0 {
				t.Error("a refused message changed the roster")
			}
		})
	}
	// An alias in Cc counts as the bot.
	b, db, _ := newTestBot(t, func() time.Time { return now })
	b.set.Aliases = []string{"desk@visa.test"}
	raw := strings.Replace(string(mail("alex@indyhall.test", "al@x", "x", "add member al@indyhall.test")), "To: "+testBot, "To: someone@x.test\r\nCc: Desk <desk@visa.test>", 1)
	b.Handle(context.Background(), []byte(raw))
	if members(t, db, "al@indyhall.test") != 1 {
		t.Errorf("mail to an alias was not acted on: %q", queued(t, db))
	}
}

// Strangers get one answer a day each, share a budget per domain, and past
// it their mail is set aside at once, writing nothing.
func TestStrangerBudgets(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	b, db, _ := newTestBot(t, func() time.Time { return now })
	handle := func(from, id string) inbox.Disposition {
		return b.Handle(context.Background(), mail(from, id, "hello", "help"))
	}
	if out := handle("eve@elsewhere.test", "s1@x"); out.Action != inbox.Handled {
		t.Fatalf("a stranger's first message: %+v, want answered", out)
	}
	if out := handle("eve@elsewhere.test", "s2@x"); out.Action != inbox.SetAside {
		t.Fatalf("a stranger's second message of the day: %+v, want set aside", out)
	}
	// The domain's budget: 20 a day by default, shared by local parts.
	for i := range 30 {
		handle(fmt.Sprintf("rot%d@elsewhere.test", i), fmt.Sprintf("rot%d@x", i))
	}
	if n := len(queued(t, db)); n != 20 {
		t.Errorf("%d answers to strangers of one domain, want the daily budget of 20", n)
	}
	var handled int
	db.View(func(tx *storage.Tx) error {
		_, done, _ := tx.Handled("rot29@elsewhere.test rot29@x")
		if done {
			handled++
		}
		return nil
	})
	if handled != 0 {
		t.Error("a stranger over the budget left a record in the store")
	}
	// A manager is served all the same.
	if out := b.Handle(context.Background(), mail("alex@indyhall.test", "m1@x", "x", "verify a@indyhall.test")); out.Action != inbox.Handled {
		t.Errorf("the manager after the strangers: %+v", out)
	}
	// The next day the stranger may write again.
	now = now.Add(25 * time.Hour)
	next := strings.Replace(string(mail("eve@elsewhere.test", "s3@x", "hello", "help")), testDate, now.Format(time.RFC1123Z), 1)
	if out := b.Handle(context.Background(), []byte(next)); out.Action != inbox.Handled {
		t.Errorf("a stranger the next day: %+v, want answered", out)
	}
}

// An answer over limits.max_reply_bytes is shortened, without its files,
// and says so; the commands still took effect.
func TestReplyIsCapped(t *testing.T) {
	b, db, _ := newTestBot(t, fixedClock())
	db.Update(func(tx *storage.Tx) error {
		for i := range 3000 {
			tx.PutMember(storage.Member{Space: "indyhall", Email: fmt.Sprintf("m%04d@indyhall.test", i), Name: strings.Repeat("Name ", 8), Status: "active"})
		}
		return nil
	})
	// The cap at its smallest allowed value, 64 KiB, so that a roster
	// of 3,000 members goes over it.
	b.set.MaxReplyBytes = 64 << 10
	b.Handle(context.Background(), mail("alex@indyhall.test", "cap@x", "x", "list members\nadd member capped@indyhall.test"))
	r := queued(t, db)
	if len(r) != 1 {
		t.Fatalf("%d replies, want 1", len(r))
	}
	if len(r[0]) > 64<<10 || strings.Contains(r[0], "Content-Disposition: attachment") {
		t.Errorf("reply of %d bytes, with an attachment: %v", len(r[0]), strings.Contains(r[0], "attachment"))
	}
	if plain, _ := checkBadReply(t, r[0], "Re: x"); !strings.Contains(oneSpaced(plain), "so it was shortened") || members(t, db, "capped@indyhall.test") != 1 {
		t.Errorf("the shortened reply does not say so, or the command did not apply:\n%.2000s", plain)
	}
}

// A DNS that does not answer the DKIM key look-ups leaves the message
// waiting, not retried at every inbox round; after max_attempts tries over
// at least an hour it goes to quarantine and the admins are told.
func TestDKIMLookupFailuresEndInQuarantine(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	b, db, _ := newTestBot(t, func() time.Time { return now })
	lookups := 0
	b.set.Trust = trust.Policy{Require: "dmarc", BotAddress: testBot, DKIM: &trust.DKIMVerifier{
		LookupTXT: func(ctx context.Context, name string) ([]string, error) {
			lookups++
			return nil, context.DeadlineExceeded
		}}}
	sig := "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=indyhall.test; s=sel; h=from:subject:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAAAAAAAAAAAAAAAAAAAAAA"
	raw := mail("alex@indyhall.test", "dns@x", "x", "add member dns@indyhall.test", "no auth", sig)
	var last inbox.Disposition
	for i := 0; i < 200 && last.Action != inbox.Quarantine; i++ {
		last = b.Handle(context.Background(), raw)
		now = now.Add(30 * time.Second) // an inbox round every 30 s
	}
	if last.Action != inbox.Quarantine || last.Mailbox != "Quarantine" {
		t.Fatalf("last outcome %+v, want quarantine", last)
	}
	if lookups > 10 {
		t.Errorf("%d DNS look-ups before quarantine, want a few: the message must wait between tries", lookups)
	}
	r := queued(t, db)
	if len(r) != 1 || !strings.Contains(r[0], "To: <admin@visa.test>") || !strings.Contains(r[0], "quarantined") {
		t.Errorf("want one notice to the admins, got %q", r)
	}
}

// oneSpaced joins a text's words with single spaces, so that a phrase is
// found across line breaks.
func oneSpaced(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestM365ForgedResults: with the setup the README gives Microsoft 365
// users (auth.verify_dkim, no authserv_id), no Authentication-Results is
// believed, whatever id it carries: only the bot's own DKIM check counts.
// Every message of the forged corpus is refused under it too.
func TestM365ForgedResults(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "forged", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatal("no forged corpus", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, db, _ := newTestBot(t, fixedClock())
		cfg := testConfig()
		cfg.Auth.AuthservID, cfg.Auth.VerifyDKIM = "", true
		b.set.Trust = trustPolicy(cfg)
		// Keys are looked up in an empty zone: nothing verifies.
		b.set.Trust.DKIM.LookupTXT = func(context.Context, string) ([]string, error) { return nil, errNoSuchKey }
		db.Update(func(tx *storage.Tx) error {
			return tx.AddManager(storage.Manager{Email: "mgr@indyhall.test", Space: "indyhall"})
		})
		if out := b.Handle(context.Background(), raw); out.Action != inbox.SetAside {
			t.Errorf("%s: %+v, want set aside", filepath.Base(f), out)
		}
		if n := len(queued(t, db)); n != 0 || members(t, db, "mallory@evil.test") != 0 {
			t.Errorf("%s: %d replies or a change under the M365 setup", filepath.Base(f), n)
		}
	}
}

var errNoSuchKey = &net.DNSError{Err: "no such host", IsNotFound: true}
