package mailbot

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/clientmail"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// BenchmarkHandleVerify is the bot's own work for one front-desk verify,
// as in a burst over LMTP: the message read and judged, the command run,
// the reply rendered and queued, all committed in groups of 32 (as the
// group committer gathers them). The mail is written as Thunderbird,
// Gmail and Outlook write it. On a machine the mail stack keeps busy, this
// CPU is what the bot takes from the stack's own pace: watch B/op and
// allocs/op, and ns/op less the fsyncs (one per group).
func BenchmarkHandleVerify(b *testing.B) {
	db, err := storage.Open(filepath.Join(b.TempDir(), "visa.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *storage.Tx) error {
		tx.PutSpace(storage.Space{ID: "indyhall", Name: "Indy Hall"})
		tx.PutSpace(storage.Space{ID: "betahaus", Name: "betahaus", City: "Berlin", Country: "DE"})
		tx.PutMember(storage.Member{Space: "betahaus", Email: "jonas@betahaus.test", Name: "Jonas Müller", Status: "active"})
		return tx.AddManager(storage.Manager{Email: "alex@indyhall.test", Space: "indyhall"})
	})
	tmpl, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	set := SettingsFrom(testConfig())
	// One front desk sends every message: its hourly allowance would
	// otherwise silence it after the first few (as mailbench raises it).
	set.Limits.RepliesPerSenderPerHour = 1 << 30
	bot := NewBot(set, db, tmpl, quiet, time.Now, func() {})
	writers := []func(clientmail.Envelope, string) []byte{clientmail.Thunderbird, clientmail.Gmail, clientmail.Outlook}
	raws := make([][]byte, b.N)
	for i := range raws {
		e := clientmail.Envelope{
			From: "alex@indyhall.test", To: testBot, Subject: "verify",
			MessageID:   fmt.Sprintf("bench-%d@indyhall.test", i),
			AuthResults: []string{testAuth + ";\r\n\tdkim=pass header.d=indyhall.test header.s=sel1 header.b=AbCd1234;\r\n\tdmarc=pass (p=quarantine dis=none) header.from=indyhall.test"},
		}
		raws[i] = writers[i%len(writers)](e, "verify jonas@betahaus.test")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 32 {
		for j, d := range bot.HandleBatch(context.Background(), raws[i:min(i+32, b.N)]) {
			if d.Action != inbox.Handled {
				b.Fatalf("message %d: %v (%s), want handled", i+j, d.Action, d.Reason)
			}
		}
	}
	b.StopTimer()
	verified := 0
	db.View(func(tx *storage.Tx) error {
		return tx.Outbox(func(it storage.OutboxItem) bool {
			if strings.Contains(string(tx.OutboxRaw(it.ID)), "VERIFIED: jonas@betahaus.test") {
				verified++
			}
			return true
		})
	})
	if verified != b.N {
		b.Fatalf("%d replies say VERIFIED for %d verifies", verified, b.N)
	}
}
