package itest

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
)

func init() { worlds = append(worlds, "digest", "digestdown") }

// digestAt schedules the weekly digest at the instant at (UTC): its
// weekday and time of day, to the second, so that the test sees it go out
// instead of waiting for Monday 08:00.
func digestAt(at time.Time) func(*config.Config) {
	at = at.UTC()
	return func(c *config.Config) {
		c.Digest.Weekday = strings.ToLower(at.Weekday().String())
		c.Digest.Time = at.Format("15:04:05")
		c.Digest.Timezone = "UTC"
	}
}

// setupDigestSpace has the admin create a space in the default time zone
// with alex as its manager and two members.
func setupDigestSpace(t *testing.T, w world) {
	t.Helper()
	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "setup"},
		"add space indyhall name=\"Indy Hall\" city=Philadelphia\n"+
			"add manager "+w.alex+" space=indyhall\n"+
			"add member adam@indyhall.test name=\"Adam Teterus\" space=indyhall\n"+
			"add member zoe@indyhall.test name=\"Zoë Schmidt\" until="+time.Now().AddDate(0, 0, 10).Format("2006-01-02")+" space=indyhall"))
	r := waitMail(t, w.admin, "INBOX", 1)[0]
	mustContain(t, r, "4 commands: 4 OK.")
	welcomed(t, w.alex)
}

func checkDigest(t *testing.T, r reply, w world) {
	t.Helper()
	if got := r.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("digest Auto-Submitted = %q", got)
	}
	if subj := r.Header.Get("Subject"); !strings.Contains(subj, "Indy Hall") {
		t.Errorf("digest Subject = %q", subj)
	}
	mustContain(t, r, "Adam Teterus", "zoe@indyhall.test", w.admin)
	if !strings.Contains(string(r.Raw), ".csv") {
		t.Error("the digest has no CSV roster attached")
	}
}

// TestDigestAtItsHour: a digest scheduled a few seconds ahead reaches the
// space's manager at that time, and a restart after the hour does not send
// it again.
func TestDigestAtItsHour(t *testing.T) {
	w := newWorld("digest")
	store := filepath.Join(t.TempDir(), "visa.db")
	due := time.Now().Add(8 * time.Second)
	b := startBotWith(t, w, store, stack.SMTPAddr, digestAt(due))
	setupDigestSpace(t, w)
	digests := waitMail(t, w.alex, "INBOX", 1)
	if time.Now().Before(due.Truncate(time.Second)) {
		t.Errorf("the digest came before its hour")
	}
	checkDigest(t, digests[0], w)
	// The admin gets the network digest too (after the setup reply).
	mustContain(t, waitMail(t, w.admin, "INBOX", 2)[1], "indyhall")
	b.stop()

	b = startBotWith(t, w, store, stack.SMTPAddr, digestAt(due))
	// Give a wrongly repeated digest every chance to arrive: a verify
	// round trip after the restart, then a little more.
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "v"}, "verify adam@indyhall.test"))
	got := waitMail(t, w.alex, "INBOX", 2)
	time.Sleep(2 * time.Second)
	got = waitMail(t, w.alex, "INBOX", 2)
	if len(got) != 2 {
		t.Errorf("alex has %d messages after the restart, want the digest and one reply", len(got))
	}
	b.stop()
}

// TestDigestAfterDowntime: a bot that was down over the hour sends the
// missed digest once when it comes back.
func TestDigestAfterDowntime(t *testing.T) {
	w := newWorld("digestdown")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBotWith(t, w, store, stack.SMTPAddr, digestAt(time.Now().Add(-time.Hour)))
	setupDigestSpace(t, w)
	b.stop()
	due := time.Now().Add(3 * time.Second)
	time.Sleep(time.Until(due) + time.Second) // the hour passes while the bot is down
	b = startBotWith(t, w, store, stack.SMTPAddr, digestAt(due))
	checkDigest(t, waitMail(t, w.alex, "INBOX", 1)[0], w)
	b.stop()
	b = startBotWith(t, w, store, stack.SMTPAddr, digestAt(due))
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "v"}, "verify adam@indyhall.test"))
	waitMail(t, w.alex, "INBOX", 2)
	time.Sleep(2 * time.Second)
	if got := waitMail(t, w.alex, "INBOX", 2); len(got) != 2 {
		t.Errorf("alex has %d messages, want one digest and one reply", len(got))
	}
	b.stop()
}
