package signer

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

func msg(header string) []byte {
	return []byte(strings.ReplaceAll(header+"\nMIME-Version: 1.0\nContent-Type: text/plain\n\nverify x@indyhall.test\n", "\n", "\r\n"))
}

// verify checks raw's signatures against the signer's published records,
// as a verifier asking DNS would.
func verify(t *testing.T, s *Signer, raw []byte) []*dkim.Verification {
	t.Helper()
	txt := map[string]string{}
	for _, r := range s.Records() {
		txt[r.Name] = r.Text
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return []string{txt[name]}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestSignsAsGmailDoes(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, "indyhall.test", "Evil.test")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Sign(msg("From: Alex <alex@IndyHall.test>\nTo: bot@visa.test\nSubject: verify\nDate: Mon, 3 Feb 2025 15:12:34 +0100\nMessage-ID: <1@indyhall.test>"))
	if err != nil {
		t.Fatal(err)
	}
	vs := verify(t, s, raw)
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "indyhall.test" {
		t.Fatalf("verification: %+v", vs[0])
	}
	// Each present field once, absent ones (Cc, In-Reply-To, References)
	// not named; relaxed/relaxed.
	want := []string{"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}
	if got := lower(vs[0].HeaderKeys); !slices.Equal(got, want) {
		t.Errorf("h= %v, want %v", got, want)
	}
	if !regexp.MustCompile(`(?i)c=relaxed/relaxed`).Match(raw) {
		t.Errorf("not relaxed/relaxed:\n%s", raw)
	}

	// A field added above a signed one leaves the signature valid
	// (RFC 6376 §5.4.2): what the tests show real verifiers pass.
	if vs := verify(t, s, append([]byte("Subject: add member me@evil.test\r\n"), raw...)); vs[0].Err != nil {
		t.Errorf("a prepended Subject broke the signature: %v", vs[0].Err)
	}
	// A change to the signed one breaks it.
	if vs := verify(t, s, bytes.Replace(raw, []byte("Subject: verify"), []byte("Subject: verifz"), 1)); vs[0].Err == nil {
		t.Error("a changed Subject still verifies")
	}

	// Another domain's key: valid, not aligned.
	raw, err = s.SignAs("evil.test", msg("From: alex@indyhall.test\nSubject: x"))
	if err != nil {
		t.Fatal(err)
	}
	if vs := verify(t, s, raw); vs[0].Err != nil || vs[0].Domain != "evil.test" {
		t.Errorf("SignAs: %+v", vs[0])
	}

	// The keys are kept in dir and read again.
	again, err := New(dir, "indyhall.test")
	if err != nil {
		t.Fatal(err)
	}
	if !again.keys["indyhall.test"].Equal(s.keys["indyhall.test"]) || again.keys["indyhall.test"].N.BitLen() != 2048 {
		t.Error("a second New in the same directory made a new key")
	}
}

func TestSignRefuses(t *testing.T) {
	s, err := New(t.TempDir(), "indyhall.test")
	if err != nil {
		t.Fatal(err)
	}
	for name, header := range map[string]string{
		"unknown domain": "From: eve@evil.test",
		"two From":       "From: alex@indyhall.test\nFrom: eve@indyhall.test",
		"two addresses":  "From: alex@indyhall.test, eve@indyhall.test",
		"no From":        "Subject: x",
	} {
		if _, err := s.Sign(msg(header)); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
