package trust

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRepeatedFields(t *testing.T) {
	const base = "From: Alex <mgr@indyhall.test>\nTo: visa@coworkingvisa.test\nSubject: verify a@b.test\n" +
		"Date: Mon, 3 Feb 2025 15:12:34 +0100\nMessage-ID: <abc@indyhall.test>\nMIME-Version: 1.0\n" +
		"Content-Type: text/plain\n"
	tests := []struct {
		name, head string
		want       []string
	}{
		{"plain", base, nil},
		{"trace fields may repeat", "Received: a\nReceived: b\nAuthentication-Results: x; none\nAuthentication-Results: y; none\n" + base, nil},
		{"Subject prepended", "Subject: add member me@evil.test\n" + base, []string{"Subject (2 times)"}},
		{"Message-ID prepended", "Message-ID: <new@evil.test>\n" + base, []string{"Message-Id (2 times)"}},
		{"lower case name", "subject: add member me@evil.test\n" + base, []string{"Subject (2 times)"}},
		{"space before the colon", "Subject : add member me@evil.test\n" + base, []string{"Subject (2 times)"}},
		{"folded second", "Subject:\n add member me@evil.test\n" + base, []string{"Subject (2 times)"}},
		{"two Content-Type", base + "Content-Type: text/html\n", []string{"Content-Type (2 times)"}},
		{"several", "Date: Tue, 4 Feb 2025 10:00:00 +0000\nReply-To: x@evil.test\nReply-To: y@evil.test\nCc: a@b.test\nCc: c@d.test\n" + base,
			[]string{"Cc (2 times)", "Date (2 times)", "Reply-To (2 times)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := strings.ReplaceAll(tt.head, "\n", "\r\n") + "\r\nbody\r\n"
			h := parseHeader(t, tt.head)
			if got := RepeatedFields(h, []byte(raw)); !slices.Equal(got, tt.want) {
				t.Errorf("RepeatedFields = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAddressedTo(t *testing.T) {
	tests := []struct {
		head string
		want bool
	}{
		{"To: visa@coworkingvisa.test\n", true},
		{"To: \"Visa bot\" <VISA@CoworkingVisa.test>\n", true},
		{"To: alex@indyhall.test\nCc: Bot <visa@coworkingvisa.test>, x@y.test\n", true},
		{"To: desk@coworkingvisa.test\n", true}, // an alias
		{"To: alex@indyhall.test\n", false},     // a Bcc to the bot
		{"To: undisclosed-recipients:;\n", false},
		{"To: visa@coworkingvisa.test.evil.test\n", false},
		{"To: broken <visa@coworkingvisa.test, ,\n", true}, // lenient reading
		{"Subject: no recipients at all\n", false},
	}
	for _, tt := range tests {
		h := parseHeader(t, "From: mgr@indyhall.test\n"+tt.head)
		if got := AddressedTo(h, "visa@coworkingvisa.test", "desk@coworkingvisa.test"); got != tt.want {
			t.Errorf("AddressedTo(%q) = %v, want %v", tt.head, got, tt.want)
		}
	}
}

func TestCheckDate(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	date := func(t time.Time) string { return "Date: " + t.Format(time.RFC1123Z) + "\n" }
	sig := func(at time.Time, d string) string {
		return "DKIM-Signature: v=1; a=rsa-sha256; d=" + d + "; s=sel; t=" + itoa(at.Unix()) + "; h=from; bh=x; b=y\n"
	}
	tests := []struct {
		name, head string
		want       DateVerdict
	}{
		{"fresh", date(now.Add(-time.Hour)), DateFresh},
		{"a few hours ahead", date(now.Add(5 * time.Hour)), DateFresh},
		{"two days ahead", date(now.Add(48 * time.Hour)), DateAhead},
		{"eight days old", date(now.Add(-8 * 24 * time.Hour)), DateTooOld},
		{"no Date", "", DateMissing},
		{"unreadable Date", "Date: yesterday\n", DateMissing},
		{"Date rewritten on an old signature", sig(now.Add(-30*24*time.Hour), "indyhall.test") + date(now), DateTooOld},
		{"old signature of another domain", sig(now.Add(-30*24*time.Hour), "list.example") + date(now), DateFresh},
		{"fresh signature of a subdomain", sig(now.Add(-time.Minute), "mail.indyhall.test") + date(now), DateFresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := "From: mgr@indyhall.test\nTo: visa@coworkingvisa.test\n" + tt.head
			raw := strings.ReplaceAll(head, "\n", "\r\n") + "\r\nbody\r\n"
			if got, _ := CheckDate(parseHeader(t, head), []byte(raw), now, week); got != tt.want {
				t.Errorf("CheckDate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSignatureIDs(t *testing.T) {
	testZone(t)
	signed := sign(t, unsignedMsg, signOpts{})
	ids := SignatureIDs([]byte(signed))
	if len(ids) != 1 {
		t.Fatalf("SignatureIDs = %q, want one", ids)
	}
	// The same message with a new Message-ID on top carries the same id:
	// it is the first one sent again.
	replayed := "Message-ID: <new@evil.test>\r\n" + signed
	if again := SignatureIDs([]byte(replayed)); !slices.Equal(again, ids) {
		t.Errorf("replayed message ids %q, want %q", again, ids)
	}
	// Signing it again, as its author's server does for a new message,
	// makes a new id.
	if other := SignatureIDs([]byte(sign(t, strings.Replace(unsignedMsg, "abc@", "abd@", 1), signOpts{}))); slices.Equal(other, ids) {
		t.Error("a newly signed message has the old signature's id")
	}
	if got := SignatureIDs([]byte(unsignedMsg)); got != nil {
		t.Errorf("unsigned message has ids %q", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
