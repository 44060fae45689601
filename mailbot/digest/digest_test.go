package digest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// clock is a settable clock for the scheduler.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// fixture is a store with two spaces in two zones, their managers, members,
// a week of changes and verifications, and a scheduler over it (Mondays
// 08:00, network zone UTC).
type fixture struct {
	db    *storage.DB
	clock *clock
	s     *Scheduler
	wakes *atomic.Int32
}

const (
	created = "2026-01-05T12:00:00Z"
	// The slot of Monday 30 Nov 2026, 08:00: in New York (EST) 13:00 UTC,
	// in Paris (CET) 07:00 UTC, in UTC 08:00.
	nyDue    = "2026-11-30T13:00:00Z"
	nyPrev   = "2026-11-23T13:00:00Z"
	parisDue = "2026-11-30T07:00:00Z"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, clock: &clock{t: utc(nyDue)}, wakes: &atomic.Int32{}}
	f.s = New(db, tmpl, Settings{
		BotAddress: "visa@bot.test", BotName: "Coworking Visa", Admins: []string{"admin@network.test"},
		Weekday: time.Monday, Hour: 8, DefaultTZ: time.UTC,
	}, nil, f.clock.now, func() { f.wakes.Add(1) })
	f.update(t, func(tx *storage.Tx) error {
		at := utc(created)
		for _, sp := range []storage.Space{
			{ID: "indyhall", Name: "Indy Hall", City: "Philadelphia", Country: "US", TZ: "America/New_York", Created: at},
			{ID: "cantine", Name: "La Cantine", City: "Paris", Country: "FR", TZ: "Europe/Paris", Created: at},
		} {
			if err := tx.PutSpace(sp); err != nil {
				return err
			}
		}
		for _, m := range []storage.Manager{
			{Email: "m1@indyhall.test", Space: "indyhall"}, {Email: "m2@indyhall.test", Space: "indyhall"},
			{Email: "boss@cantine.test", Space: "cantine"},
		} {
			if err := tx.AddManager(m); err != nil {
				return err
			}
		}
		for _, m := range []storage.Member{
			{Space: "indyhall", Email: "amy@x.test", Name: "Amy Adams", Status: "active", Until: "2026-12-10"},
			{Space: "indyhall", Email: "bob@x.test", Name: "=Bob", Status: "active"},
			{Space: "indyhall", Email: "cat@x.test", Name: "Cat, the second", Status: "inactive"},
			{Space: "indyhall", Email: "dan@x.test", Status: "active", Until: "2026-11-01"},
			{Space: "cantine", Email: "eve@x.test", Name: "Eve", Status: "active"},
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		for _, c := range []storage.Change{
			change("2026-11-20T10:00:00Z", "m2@indyhall.test", "indyhall", "remove", storage.Member{Email: "old@x.test", Status: "active"}, nil),
			change("2026-11-24T15:00:00Z", "m1@indyhall.test", "indyhall", "add", nil, storage.Member{Email: "amy@x.test", Name: "Amy Adams", Status: "active", Until: "2026-12-10"}),
			change("2026-11-25T16:30:00Z", "admin@network.test", "indyhall", "update",
				storage.Member{Email: "cat@x.test", Name: "Cat", Status: "active"}, storage.Member{Email: "cat@x.test", Name: "Cat, the second", Status: "inactive"}),
			change("2026-11-26T09:00:00Z", "boss@cantine.test", "cantine", "add", nil, storage.Member{Email: "eve@x.test", Name: "Eve", Status: "active"}),
			change("2026-11-30T14:00:00Z", "m1@indyhall.test", "indyhall", "add", nil, storage.Member{Email: "late@x.test", Status: "active"}),
		} {
			if _, err := tx.Record(c); err != nil {
				return err
			}
		}
		for _, v := range []storage.Verification{
			{At: utc("2026-11-25T11:00:00Z"), Host: "boss@cantine.test", HostSpace: "cantine", Visitor: "amy@x.test", HomeSpace: "indyhall", Verified: true},
			{At: utc("2026-11-26T18:00:00Z"), Host: "m1@indyhall.test", HostSpace: "indyhall", Visitor: "eve@x.test", HomeSpace: "cantine", Verified: true},
			{At: utc("2026-11-27T18:00:00Z"), Host: "m2@indyhall.test", HostSpace: "indyhall", Visitor: "zed@x.test"},
			{At: utc("2026-11-27T19:00:00Z"), Host: "m2@indyhall.test", HostSpace: "indyhall", Visitor: "bob@x.test", HomeSpace: "indyhall", Verified: true},
			{At: utc("2026-11-10T19:00:00Z"), Host: "m2@indyhall.test", HostSpace: "indyhall", Visitor: "early@x.test"},
		} {
			if err := tx.RecordVerification(v); err != nil {
				return err
			}
		}
		return nil
	})
	return f
}

func change(at, actor, space, action string, before, after any) storage.Change {
	c := storage.Change{At: utc(at), Actor: actor, Space: space, Kind: "member", Action: action, MessageID: "m@x.test"}
	if before != nil {
		c.Before, _ = json.Marshal(before)
		c.Key = before.(storage.Member).Email
	}
	if after != nil {
		c.After, _ = json.Marshal(after)
		c.Key = after.(storage.Member).Email
	}
	return c
}

func (f *fixture) update(t *testing.T, fn func(*storage.Tx) error) {
	t.Helper()
	if err := f.db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) sendDue(t *testing.T, at string) int {
	t.Helper()
	f.clock.set(utc(at))
	n, err := f.s.SendDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) period(t *testing.T, name string) string {
	t.Helper()
	var p string
	f.db.View(func(tx *storage.Tx) error { p = tx.Period(name); return nil })
	return p
}

// queued is one message in the outbox.
type queued struct {
	to  string
	raw []byte
}

// outbox lists the queued messages and empties the outbox.
func (f *fixture) outbox(t *testing.T) []queued {
	t.Helper()
	var out []queued
	f.update(t, func(tx *storage.Tx) error {
		var items []storage.OutboxItem
		if err := tx.Outbox(func(it storage.OutboxItem) bool { items = append(items, it); return true }); err != nil {
			return err
		}
		for _, it := range items {
			out = append(out, queued{to: strings.Join(it.To, ","), raw: tx.OutboxRaw(it.ID)})
			if err := tx.DeleteOutboxItem(it.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out
}

func recipients(q []queued) string {
	var to []string
	for _, m := range q {
		to = append(to, m.to)
	}
	return strings.Join(to, " ")
}

// parsed is a queued message as a mail client reads it.
type parsed struct {
	header      mail.Header
	text, html  string
	attachments map[string][]byte
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{header: r.Header, attachments: map[string][]byte{}}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := part.Header.(*mail.InlineHeader); ok {
			body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
		}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			if ct == "text/html" {
				p.html = string(body)
			} else {
				p.text = string(body)
			}
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			p.attachments[name] = body
		}
	}
	return p
}

func find(t *testing.T, q []queued, to string) parsed {
	t.Helper()
	for _, m := range q {
		if m.to == to {
			return parse(t, m.raw)
		}
	}
	t.Fatalf("no message to %s among %s", to, recipients(q))
	return parsed{}
}

func TestExactlyOncePerWeek(t *testing.T) {
	f := newFixture(t)
	// Monday 30 Nov, 08:00 in New York: every digest of the week is due
	// (Paris and UTC passed earlier that day).
	if n := f.sendDue(t, nyDue); n != 4 {
		t.Fatalf("first pass queued %d, want 4 (2 Indy Hall managers, 1 La Cantine, 1 admin)", n)
	}
	q := f.outbox(t)
	if got, want := recipients(q), "boss@cantine.test m1@indyhall.test m2@indyhall.test admin@network.test"; got != want {
		// cantine comes before indyhall: spaces go in id order.
		t.Errorf("recipients %q, want %q", got, want)
	}
	if f.wakes.Load() == 0 {
		t.Error("the outbox was not woken")
	}
	for _, name := range []string{"digest:indyhall", "digest:cantine", "digest:network"} {
		if p := f.period(t, name); p != "2026-11-30" {
			t.Errorf("period %s = %q, want 2026-11-30", name, p)
		}
	}
	// The same period again, a minute later, a day later: nothing.
	for _, at := range []string{nyDue, "2026-11-30T13:01:00Z", "2026-12-06T23:59:59Z"} {
		if n := f.sendDue(t, at); n != 0 {
			t.Errorf("pass at %s queued %d, want 0", at, n)
		}
	}
	if q := f.outbox(t); len(q) != 0 {
		t.Errorf("the outbox holds %s", recipients(q))
	}
	// The next week's slots come one zone after another.
	if n := f.sendDue(t, "2026-12-07T07:00:00Z"); n != 1 {
		t.Errorf("Paris's next slot queued %d, want 1", n)
	}
	if n := f.sendDue(t, "2026-12-07T08:00:00Z"); n != 1 {
		t.Errorf("the network's next slot queued %d, want 1", n)
	}
	if n := f.sendDue(t, "2026-12-07T12:59:59Z"); n != 0 {
		t.Errorf("before New York's slot queued %d, want 0", n)
	}
	if n := f.sendDue(t, "2026-12-07T13:00:00Z"); n != 2 {
		t.Errorf("New York's next slot queued %d, want 2", n)
	}
	if p := f.period(t, "digest:indyhall"); p != "2026-12-07" {
		t.Errorf("period = %q, want 2026-12-07", p)
	}
}

func TestDownOverTheHour(t *testing.T) {
	f := newFixture(t)
	// Back three days after the slot: the missed digest goes out once.
	if n := f.sendDue(t, "2026-12-03T13:00:00Z"); n != 4 {
		t.Fatalf("queued %d, want 4", n)
	}
	if p := f.period(t, "digest:indyhall"); p != "2026-11-30" {
		t.Errorf("period = %q, want 2026-11-30", p)
	}
	if n := f.sendDue(t, "2026-12-03T13:00:01Z"); n != 0 {
		t.Errorf("second pass queued %d", n)
	}
	// It covers the week up to its slot; later changes wait for the next.
	msg := find(t, f.outbox(t), "m1@indyhall.test")
	if strings.Contains(msg.text, "late@x.test") {
		t.Error("a change after the slot is in the late digest")
	}
	if n := f.sendDue(t, "2026-12-07T13:00:00Z"); n != 4 {
		t.Fatalf("next week queued %d, want 4", n)
	}
	if msg := find(t, f.outbox(t), "m1@indyhall.test"); !strings.Contains(msg.text, "late@x.test") {
		t.Errorf("the change after the last slot is not in the next digest:\n%s", msg.text)
	}
}

func TestDownForWeeksSendsOnlyTheLatest(t *testing.T) {
	f := newFixture(t)
	f.update(t, func(tx *storage.Tx) error { return tx.SetPeriod("digest:indyhall", "2026-11-09") })
	// Down since before the slot of 16 Nov; back on 3 Dec.
	f.sendDue(t, "2026-12-03T13:00:00Z")
	var toM1 int
	q := f.outbox(t)
	for _, m := range q {
		if m.to == "m1@indyhall.test" {
			toM1++
		}
	}
	if toM1 != 1 {
		t.Fatalf("%d digests to m1, want 1", toM1)
	}
	if p := f.period(t, "digest:indyhall"); p != "2026-11-30" {
		t.Errorf("period = %q, want 2026-11-30", p)
	}
	// It covers everything since the last digest that went out.
	msg := find(t, q, "m1@indyhall.test")
	for _, want := range []string{"removed member old@x.test", "early@x.test, not verified", "Mon 9 Nov 2026 08:00 EST"} {
		if !strings.Contains(msg.text, want) {
			t.Errorf("text lacks %q:\n%s", want, msg.text)
		}
	}
}

func TestNewSpaceWaitsForItsSlot(t *testing.T) {
	f := newFixture(t)
	f.sendDue(t, nyDue)
	f.outbox(t)
	f.update(t, func(tx *storage.Tx) error {
		if err := tx.PutSpace(storage.Space{ID: "newco", Name: "New Co", TZ: "America/New_York", Created: utc("2026-11-30T14:00:00Z")}); err != nil {
			return err
		}
		return tx.AddManager(storage.Manager{Email: "new@newco.test", Space: "newco"})
	})
	if n := f.sendDue(t, "2026-11-30T15:00:00Z"); n != 0 {
		t.Errorf("a space created after its slot got %d digests", n)
	}
	if p := f.period(t, "digest:newco"); p != "" {
		t.Errorf("period recorded for the new space: %q", p)
	}
	f.sendDue(t, "2026-12-07T13:00:00Z")
	msg := find(t, f.outbox(t), "new@newco.test")
	if !strings.Contains(msg.text, "Changes from Mon 30 Nov 2026 09:00 EST to Mon 7 Dec 2026 08:00 EST") {
		t.Errorf("the first digest of a new space does not start at its creation:\n%s", msg.text)
	}
}

// A space created while the clock ran ahead (its creation time in the
// future once the clock is set back) gets its digest at its next slot, not
// when the clock catches up with the bad time.
func TestSpaceCreatedInTheFuture(t *testing.T) {
	f := newFixture(t)
	f.sendDue(t, nyDue)
	f.outbox(t)
	f.update(t, func(tx *storage.Tx) error {
		if err := tx.PutSpace(storage.Space{ID: "ahead", Name: "Ahead", TZ: "America/New_York", Created: utc("2027-03-01T10:00:00Z")}); err != nil {
			return err
		}
		return tx.AddManager(storage.Manager{Email: "m@ahead.test", Space: "ahead"})
	})
	f.sendDue(t, "2026-12-07T13:00:45Z")
	find(t, f.outbox(t), "m@ahead.test")
}

func TestSpaceDigestContent(t *testing.T) {
	f := newFixture(t)
	f.sendDue(t, nyDue)
	q := f.outbox(t)
	msg := find(t, q, "m1@indyhall.test")

	h := msg.header
	if got, want := h.Get("Subject"), "Coworking Visa weekly digest: Indy Hall, week of 30 Nov 2026"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if got := h.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if h.Get("In-Reply-To") != "" || h.Get("References") != "" {
		t.Error("a digest answers nothing, yet has In-Reply-To or References")
	}
	if to, _ := h.AddressList("To"); len(to) != 1 || to[0].Address != "m1@indyhall.test" {
		t.Errorf("To = %v", to)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Address != "visa@bot.test" {
		t.Errorf("From = %v", from)
	}
	if date, err := h.Date(); err != nil || !date.Equal(utc(nyDue)) {
		t.Errorf("Date = %v, %v", date, err)
	}

	for _, want := range []string{
		"Indy Hall (indyhall): weekly digest, week of 30 Nov 2026",
		// Dan is marked active but past his end date.
		"4 members, 2 active, 1 inactive, 1 expired (past their end date), 1 ending within 30 days.",
		// What the managers act on comes first.
		"=== To act on ===\n\nMemberships ending within 30 days (renew them, or let them lapse):\n  Thu 10 Dec 2026  Amy Adams <amy@x.test>\n",
		"Changes from Mon 23 Nov 2026 08:00 EST to Mon 30 Nov 2026 08:00 EST (America/New_York):",
		// Who and when, in New York time.
		"Tue 24 Nov 10:00  by m1@indyhall.test\n    added member amy@x.test: Amy Adams, active, until 2026-12-10",
		"Wed 25 Nov 11:30  by admin@network.test\n    updated member cat@x.test: name Cat → Cat, the second; status active → inactive",
		// One line per person, with the name their roster gives them.
		"Visitors you hosted (1 verified, 1 not):\n  Eve <eve@x.test>, member of La Cantine: 1 visit, last Thu 26 Nov 13:00\n" +
			"  zed@x.test, not verified: 1 check, last Fri 27 Nov 13:00\n",
		"Your members visiting elsewhere (1 verified):\n  Amy Adams <amy@x.test>, at La Cantine: 1 visit, last Wed 25 Nov 06:00\n",
		"also attached as indyhall-roster-2026-11-30.csv",
		"Amy Adams <amy@x.test>  active  until 2026-12-10",
		"dan@x.test  expired  until 2026-11-01",
	} {
		if !strings.Contains(msg.text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	for _, not := range []string{
		"old@x.test",              // before the window
		"late@x.test",             // after the slot
		"added member eve@x.test", // La Cantine's change, not Indy Hall's
		"bob@x.test, member of",   // checking one's own member is no visit
		"early@x.test",
	} {
		if strings.Contains(msg.text, not) {
			t.Errorf("text holds %q", not)
		}
	}
	if t.Failed() {
		t.Logf("text:\n%s", msg.text)
	}
	for _, want := range []string{">Indy Hall (indyhall): weekly digest, week of 30 Nov 2026</h1>", `<html lang="en">`, "Cat, the second", "=Bob", "m1@indyhall.test"} {
		if !strings.Contains(msg.html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}

	data, ok := msg.attachments["indyhall-roster-2026-11-30.csv"]
	if !ok {
		t.Fatalf("no roster attachment; attachments: %v", msg.attachments)
	}
	// An English digest: Excel's byte order mark, and commas.
	if !bytes.HasPrefix(data, []byte("\uFEFF")) {
		t.Errorf("the roster has no byte order mark: %q", data[:min(len(data), 20)])
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF")))).ReadAll()
	if err != nil {
		t.Fatalf("the roster is not CSV: %v\n%s", err, data)
	}
	if len(rows) != 5 || strings.Join(rows[0], ",") != "email,name,status,until,updated" {
		t.Fatalf("roster rows = %q", rows)
	}
	byEmail := map[string][]string{}
	for _, r := range rows[1:] {
		byEmail[r[0]] = r
	}
	if r := byEmail["cat@x.test"]; r == nil || r[1] != "Cat, the second" || r[2] != "inactive" {
		t.Errorf("cat's row = %q", r)
	}
	if r := byEmail["bob@x.test"]; r == nil || r[1] != "'=Bob" {
		t.Errorf("bob's row = %q (a formula must be defused)", r)
	}

	// Every manager gets one, each a message of its own.
	m2 := find(t, q, "m2@indyhall.test")
	if m2.header.Get("Message-Id") == h.Get("Message-Id") {
		t.Error("two managers' digests share a Message-ID")
	}
	// La Cantine's digest sees the other side of the same visits.
	cantine := find(t, q, "boss@cantine.test")
	for _, want := range []string{
		"Changes from Mon 23 Nov 2026 08:00 CET to Mon 30 Nov 2026 08:00 CET (Europe/Paris):",
		"Thu 26 Nov 10:00  by boss@cantine.test\n    added member eve@x.test",
		"Your members visiting elsewhere (1 verified):\n  Eve <eve@x.test>, at Indy Hall: 1 visit, last Thu 26 Nov 19:00",
		"Visitors you hosted (1 verified, 0 not):\n  Amy Adams <amy@x.test>, member of Indy Hall: 1 visit, last Wed 25 Nov 12:00",
	} {
		if !strings.Contains(cantine.text, want) {
			t.Errorf("La Cantine's text lacks %q:\n%s", want, cantine.text)
		}
	}
}

func TestNetworkDigest(t *testing.T) {
	f := newFixture(t)
	// Indy Hall had last week's digest; its slot this week is later (New York).
	f.update(t, func(tx *storage.Tx) error { return tx.SetPeriod("digest:indyhall", "2026-11-23") })
	if n := f.sendDue(t, "2026-11-30T08:00:00Z"); n != 2 {
		t.Fatalf("queued %d, want La Cantine's and the network's", n)
	}
	q := f.outbox(t)
	msg := find(t, q, "admin@network.test")
	if got := msg.header.Get("Subject"); got != "Coworking Visa weekly digest: the network, week of 30 Nov 2026" {
		t.Errorf("Subject = %q", got)
	}
	if got := msg.header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	for _, want := range []string{
		"2 spaces, 5 members (3 active).",
		// the UTC window holds 3 changes (not the one of 20 Nov) and all 4 recent verifications
		"From Mon 23 Nov 2026 08:00 UTC to Mon 30 Nov 2026 08:00 UTC (UTC): 3 changes, 4 verifications (3 verified, 1 not).",
		"cantine  La Cantine, Paris (FR): 1 / 1 / 1; 1 change, hosted 1, sent 1",
		"indyhall  Indy Hall, Philadelphia (US): 4 / 2 / 2; 2 changes, hosted 1, sent 1",
		"Tue 24 Nov 15:00  indyhall  by m1@indyhall.test\n    added member amy@x.test",
		"zed@x.test at Indy Hall: not verified",
		"amy@x.test at La Cantine: member of Indy Hall",
	} {
		if !strings.Contains(msg.text, want) {
			t.Errorf("network text lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("text:\n%s", msg.text)
	}
	if !strings.Contains(msg.html, "<b>Indy Hall</b> <span style=\"color:#4d4d4d\">(indyhall), Philadelphia (US)</span>") {
		t.Errorf("network HTML:\n%s", msg.html)
	}
	if p := f.period(t, "digest:network"); p != "2026-11-30" {
		t.Errorf("network period = %q", p)
	}
}

func TestSendNow(t *testing.T) {
	f := newFixture(t)
	f.clock.set(utc("2026-12-02T12:00:00Z"))

	var out bytes.Buffer
	if err := f.s.SendNow("", true, &out); err != nil {
		t.Fatal(err)
	}
	if q := f.outbox(t); len(q) != 0 {
		t.Errorf("a dry run queued %s", recipients(q))
	}
	for _, want := range []string{
		"==== To: m1@indyhall.test\n==== Subject: Coworking Visa weekly digest: Indy Hall, as of 2 Dec 2026",
		"==== Attachment: indyhall-roster-2026-12-02.csv",
		"==== To: admin@network.test",
		"Sent on request",
		"late@x.test", // up to now, not to the slot
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "<html") {
		t.Error("the dry run prints HTML")
	}

	out.Reset()
	if err := f.s.SendNow("indyhall", false, &out); err != nil {
		t.Fatal(err)
	}
	if got := recipients(f.outbox(t)); got != "m1@indyhall.test m2@indyhall.test" {
		t.Errorf("SendNow(indyhall) queued %q", got)
	}
	if !strings.Contains(out.String(), "to m1@indyhall.test") {
		t.Errorf("output: %s", out.String())
	}
	if p := f.period(t, "digest:indyhall"); p != "" {
		t.Errorf("SendNow recorded the period %q", p)
	}
	// The weekly one still goes out.
	if n := f.sendDue(t, "2026-12-02T12:00:01Z"); n != 4 {
		t.Errorf("SendDue after SendNow queued %d, want 4", n)
	}
	if err := f.s.SendNow("nowhere", false, nil); err == nil {
		t.Error("SendNow of an unknown space succeeded")
	}
}

func TestNoManagersRecordsThePeriod(t *testing.T) {
	f := newFixture(t)
	f.update(t, func(tx *storage.Tx) error { return tx.RemoveManager("boss@cantine.test", "cantine") })
	f.sendDue(t, nyDue)
	if p := f.period(t, "digest:cantine"); p != "2026-11-30" {
		t.Errorf("period = %q: a manager added later would get last week's digest", p)
	}
}

// TestRun sets the slot two seconds ahead on the real clock and waits for
// the digest, as the daemon would.
func TestRun(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := db.Update(func(tx *storage.Tx) error {
		if err := tx.PutSpace(storage.Space{ID: "s", Name: "S", Created: now.Add(-time.Hour)}); err != nil {
			return err
		}
		return tx.AddManager(storage.Manager{Email: "m@s.test", Space: "s"})
	}); err != nil {
		t.Fatal(err)
	}
	at := now.Add(2 * time.Second).UTC().Truncate(time.Second)
	// Pretend the previous slot's digest went out, so only the new one is due.
	prev := schedule{weekday: at.Weekday(), hour: at.Hour(), minute: at.Minute(), second: at.Second()}
	_, key := prev.current(now, time.UTC)
	db.Update(func(tx *storage.Tx) error { return tx.SetPeriod("digest:s", key) })

	woken := make(chan struct{}, 10)
	s := New(db, tmpl, Settings{BotAddress: "visa@bot.test", Weekday: at.Weekday(), Hour: at.Hour(), Minute: at.Minute(), Second: at.Second()},
		nil, nil, func() { woken <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("no digest within 10 s of a slot 2 s ahead")
	}
	if time.Now().Before(at) {
		t.Errorf("sent at %v, before its slot %v", time.Now(), at)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	var n int
	db.View(func(tx *storage.Tx) error { return tx.Outbox(func(storage.OutboxItem) bool { n++; return true }) })
	if n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

// TestChangesInMatchesAScan checks the search by sequence number against a
// plain scan, on a long trail with records a little out of time order.
func TestChangesInMatchesAScan(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "visa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	base := utc("2026-01-01T00:00:00Z")
	const n = 1500
	err = db.Update(func(tx *storage.Tx) error {
		for i := range n {
			at := base.Add(time.Duration(i) * 17 * time.Minute)
			if i%7 == 3 {
				at = at.Add(-40 * time.Minute) // committed after a later one
			}
			if _, err := tx.Record(storage.Change{At: at, Kind: "space", Key: "k", Action: "update"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	windows := [][2]time.Time{
		{base.Add(-time.Hour), base.Add(time.Hour)},
		{base.Add(100 * time.Hour), base.Add(268 * time.Hour)},
		{base.Add(300*time.Hour + 17*time.Minute), base.Add(301 * time.Hour)},
		{base.Add(17 * n * time.Minute), base.Add(10000 * time.Hour)},
		{base.Add(-1000 * time.Hour), base.Add(10000 * time.Hour)},
	}
	db.View(func(tx *storage.Tx) error {
		for _, w := range windows {
			var got, want []uint64
			if err := changesIn(tx, w[0], w[1], func(c storage.Change) { got = append(got, c.Seq) }); err != nil {
				t.Fatal(err)
			}
			tx.Changes(0, func(c storage.Change) bool {
				if c.At.After(w[0]) && !c.At.After(w[1]) {
					want = append(want, c.Seq)
				}
				return true
			})
			if len(got) != len(want) || (len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1])) {
				t.Errorf("window %v: %d records (%v…), want %d (%v…)", w, len(got), head(got), len(want), head(want))
			}
		}
		return nil
	})
	// And it reads few records to find the start.
	db.View(func(tx *storage.Tx) error {
		probes := 0
		seekAfter(func(from uint64) (uint64, time.Time, bool, error) {
			probes++
			var seq uint64
			var at time.Time
			var ok bool
			err := tx.Changes(from, func(c storage.Change) bool { seq, at, ok = c.Seq, c.At, true; return false })
			return seq, at, ok, err
		}, base.Add(300*time.Hour))
		if probes > 30 {
			t.Errorf("%d probes to find a start among %d records", probes, n)
		}
		return nil
	})
}

func head(s []uint64) []uint64 { return s[:min(len(s), 3)] }

// TestSettingsFrom reads the schedule from the configuration, seconds
// included.
func TestSettingsFrom(t *testing.T) {
	cfg := config.Default()
	cfg.Bot.Address = "visa@bot.test"
	cfg.Admins = []string{"admin@network.test"}
	cfg.Digest = config.Digest{Weekday: "friday", Time: "17:45:30", Timezone: "Asia/Kolkata"}
	set, err := SettingsFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if set.Weekday != time.Friday || set.Hour != 17 || set.Minute != 45 || set.Second != 30 || set.DefaultTZ.String() != "Asia/Kolkata" ||
		set.BotAddress != "visa@bot.test" || set.BotName != "Coworking Visa" || len(set.Admins) != 1 {
		t.Errorf("SettingsFrom = %+v", set)
	}
	cfg.Digest.Time = "17:45:61"
	if _, err := SettingsFrom(cfg); err == nil || !strings.Contains(err.Error(), "digest.time") {
		t.Errorf("a bad time: %v", err)
	}
}

// A space may keep its own digest day and time (update space … digest_day=
// digest_time=), in its own zone.
func TestSpaceOwnSchedule(t *testing.T) {
	f := newFixture(t)
	f.sendDue(t, nyDue)
	f.outbox(t)
	f.update(t, func(tx *storage.Tx) error {
		if err := tx.PutSpace(storage.Space{ID: "wed", Name: "Midweek", TZ: "Europe/Paris", DigestDay: "wednesday", DigestTime: "09:30",
			Created: utc("2026-11-26T10:00:00Z")}); err != nil {
			return err
		}
		return tx.AddManager(storage.Manager{Email: "w@wed.test", Space: "wed"})
	})
	// Wednesday 2 Dec, 09:29 in Paris (08:29 UTC): not yet; 09:30: due.
	f.sendDue(t, "2026-12-02T08:29:00Z")
	for _, q := range f.outbox(t) {
		if strings.Contains(recipients([]queued{q}), "w@wed.test") {
			t.Fatal("the space's digest went out before its own time")
		}
	}
	f.sendDue(t, "2026-12-02T08:30:00Z")
	find(t, f.outbox(t), "w@wed.test")
	if p := f.period(t, "digest:wed"); p != "2026-12-02" {
		t.Errorf("period = %q, want 2026-12-02", p)
	}
}

// run executes command lines as a manager at a time, as the bot would.
func (f *fixture) run(t *testing.T, at, actor string, lines ...string) commands.Report {
	t.Helper()
	var rep commands.Report
	f.update(t, func(tx *storage.Tx) error {
		var err error
		rep, err = commands.Execute(tx, commands.Actor{Address: actor}, commands.Env{Now: utc(at), MessageID: "cmd@x.test"},
			commands.Parse("", lines, 100))
		return err
	})
	return rep
}

// withBetahaus adds a third space with a manager, and a member of both
// Indy Hall and La Cantine.
func (f *fixture) withBetahaus(t *testing.T) {
	t.Helper()
	f.update(t, func(tx *storage.Tx) error {
		if err := tx.PutSpace(storage.Space{ID: "betahaus", Name: "betahaus", City: "Berlin", TZ: "Europe/Berlin", Created: utc(created)}); err != nil {
			return err
		}
		if err := tx.AddManager(storage.Manager{Email: "mad@betahaus.test", Space: "betahaus"}); err != nil {
			return err
		}
		for _, sp := range []string{"indyhall", "cantine"} {
			if err := tx.PutMember(storage.Member{Space: sp, Email: "two@x.test", Status: "active"}); err != nil {
				return err
			}
		}
		return nil
	})
}

// A visitor who is a member of two spaces shows in both spaces' digests,
// whichever sorts first; a record of the older form (one home) still reads.
func TestVisitOfAMemberOfTwoSpaces(t *testing.T) {
	f := newFixture(t)
	f.withBetahaus(t)
	if rep := f.run(t, "2026-11-28T12:00:00Z", "mad@betahaus.test", "verify two@x.test"); rep.Results[0].Status != commands.Verified {
		t.Fatalf("verify = %+v", rep.Results[0])
	}
	f.update(t, func(tx *storage.Tx) error {
		return tx.RecordVerification(storage.Verification{At: utc("2026-11-28T13:00:00Z"), Host: "mad@betahaus.test",
			HostSpace: "betahaus", Visitor: "eve@x.test", HomeSpace: "cantine", Verified: true})
	})
	f.sendDue(t, nyDue)
	q := f.outbox(t)
	indy, cantine := find(t, q, "m1@indyhall.test"), find(t, q, "boss@cantine.test")
	for _, c := range []struct {
		who  string
		text string
		want []string
	}{
		{"Indy Hall", indy.text, []string{"Your members visiting elsewhere (2 verified):", "two@x.test, at betahaus: 1 visit"}},
		{"La Cantine", cantine.text, []string{"Your members visiting elsewhere (3 verified):", "two@x.test, at betahaus: 1 visit", "Eve <eve@x.test>, at Indy Hall, betahaus: 2 visits"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.text, w) {
				t.Errorf("%s's digest lacks %q:\n%s", c.who, w, c.text)
			}
		}
	}
}

// A manager who adds another space's active member to their roster is
// shown to that space's managers: who, to which space, when.
func TestCrossSpaceAddShownToTheOtherSpace(t *testing.T) {
	f := newFixture(t)
	rep := f.run(t, "2026-11-28T10:00:00Z", "boss@cantine.test", "add member amy@x.test", "add member new@x.test")
	for _, r := range rep.Results {
		if r.Status != commands.OK {
			t.Fatalf("add = %+v", r)
		}
	}
	f.sendDue(t, nyDue)
	q := f.outbox(t)
	indy, cantine := find(t, q, "m1@indyhall.test"), find(t, q, "boss@cantine.test")
	for _, want := range []string{
		"Your members added to another space's roster (1):",
		"Sat 28 Nov 05:00  amy@x.test added to La Cantine by boss@cantine.test",
	} {
		if !strings.Contains(indy.text, want) {
			t.Errorf("Indy Hall's digest lacks %q:\n%s", want, indy.text)
		}
	}
	if !strings.Contains(indy.html, "amy@x.test") || !strings.Contains(indy.html, "added to La Cantine by boss@cantine.test") {
		t.Errorf("Indy Hall's HTML digest lacks the cross-space add:\n%s", indy.html)
	}
	if strings.Contains(indy.text, "new@x.test") {
		t.Errorf("Indy Hall's digest shows another space's own new member:\n%s", indy.text)
	}
	if strings.Contains(cantine.text, "Your members added to another space's roster") {
		t.Errorf("La Cantine's digest:\n%s", cantine.text)
	}
}
