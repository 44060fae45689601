package trust

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// Unit tests of the bot's own DKIM check, signed with go-msgauth and with
// keys served by an in-process look-up. The same check against a real
// signer and a real DNS server is in mailbot/itest/dkim_test.go.

var (
	keysOnce          sync.Once
	rsaKey, otherKey  *rsa.PrivateKey
	edKey             ed25519.PrivateKey
	rsaTXT, otherTXT  string
	edTXT             string
	keyGenerationFail error
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			keyGenerationFail = err
			return
		}
		if otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			keyGenerationFail = err
			return
		}
		var edPub ed25519.PublicKey
		if edPub, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			keyGenerationFail = err
			return
		}
		rsaTXT = rsaRecord(rsaKey)
		otherTXT = rsaRecord(otherKey)
		edTXT = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub)
	})
	if keyGenerationFail != nil {
		t.Fatal(keyGenerationFail)
	}
}

func rsaRecord(k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

// zone is an in-process DNS: name → TXT records.
type zone map[string][]string

func (z zone) lookup(_ context.Context, name string) ([]string, error) {
	name = strings.TrimSuffix(name, ".")
	txts, ok := z[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return txts, nil
}

func testZone(t testing.TB) zone {
	testKeys(t)
	return zone{
		"sel._domainkey.indyhall.test":      {rsaTXT},
		"sel._domainkey.mail.indyhall.test": {rsaTXT},
		"sel._domainkey.evil.test":          {rsaTXT},
		"ed._domainkey.indyhall.test":       {edTXT},
		"other._domainkey.indyhall.test":    {otherTXT},
		"two._domainkey.indyhall.test":      {rsaTXT, otherTXT},
		"revoked._domainkey.indyhall.test":  {"v=DKIM1; k=rsa; p="},
	}
}

const unsignedMsg = "From: Indy Hall Manager <mgr@indyhall.test>\r\n" +
	"To: visa@coworkingvisa.test\r\n" +
	"Subject: verify alice@example.net\r\n" +
	"Date: Mon, 3 Feb 2025 15:12:34 +0100\r\n" +
	"Message-ID: <abc@indyhall.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"add member alice@example.net\r\n"

var usualKeys = []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}

type signOpts struct {
	domain, selector string
	key              crypto.Signer
	keys             []string
	expires          time.Time
}

func sign(t testing.TB, msg string, o signOpts) string {
	t.Helper()
	testKeys(t)
	if o.domain == "" {
		o.domain = "indyhall.test"
	}
	if o.selector == "" {
		o.selector = "sel"
	}
	if o.key == nil {
		o.key = rsaKey
	}
	if o.keys == nil {
		o.keys = usualKeys
	}
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{
		Domain: o.domain, Selector: o.selector, Signer: o.key, HeaderKeys: o.keys,
		Expiration:             o.expires,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
	})
	if err != nil {
		t.Fatalf("dkim.Sign: %v", err)
	}
	return b.String()
}

func TestVerifyDKIM(t *testing.T) {
	z := testZone(t)
	good := sign(t, unsignedMsg, signOpts{})
	now := time.Now()

	tests := []struct {
		name    string
		raw     string
		from    string
		want    string // the d= that vouches, or "" for a failure
		wantErr string // part of the error
	}{
		{"aligned", good, "mgr@indyhall.test", "indyhall.test", ""},
		{"ed25519", sign(t, unsignedMsg, signOpts{selector: "ed", key: edKey}), "mgr@indyhall.test", "indyhall.test", ""},
		{"signed by a subdomain", sign(t, unsignedMsg, signOpts{domain: "mail.indyhall.test"}), "mgr@indyhall.test", "mail.indyhall.test", ""},
		{"From in a subdomain", sign(t, strings.Replace(unsignedMsg, "@indyhall.test>", "@lists.indyhall.test>", 1), signOpts{}),
			"mgr@lists.indyhall.test", "indyhall.test", ""},
		{"bare LF line ends", strings.ReplaceAll(good, "\r\n", "\n"), "mgr@indyhall.test", "indyhall.test", ""},
		{"From domain in capitals", good, "mgr@IndyHall.TEST", "indyhall.test", ""},
		{"oversigned subject", sign(t, unsignedMsg, signOpts{keys: append(usualKeys, "Subject", "From")}), "mgr@indyhall.test", "indyhall.test", ""},
		{"expires later", sign(t, unsignedMsg, signOpts{expires: now.Add(time.Hour)}), "mgr@indyhall.test", "indyhall.test", ""},
		{"good after an unaligned one", sign(t, good, signOpts{domain: "evil.test"}), "mgr@indyhall.test", "indyhall.test", ""},
		{"good after a failing one", sign(t, good, signOpts{selector: "other"}), "mgr@indyhall.test", "indyhall.test", ""},

		{"no signature", unsignedMsg, "mgr@indyhall.test", "", "no DKIM signature"},
		{"tampered body", strings.Replace(good, "member alice@", "member mallory@", 1), "mgr@indyhall.test", "", "body hash did not verify"},
		{"text appended to the body", good + "add manager mallory@evil.test\r\n", "mgr@indyhall.test", "", "body hash did not verify"},
		{"tampered subject", strings.Replace(good, "Subject: verify alice", "Subject: remove alice", 1), "mgr@indyhall.test", "", "signature did not verify"},
		{"tampered From", strings.Replace(good, "Indy Hall Manager", "Indy Hall Boss", 1), "mgr@indyhall.test", "", "signature did not verify"},
		{"wrong key", sign(t, unsignedMsg, signOpts{selector: "other"}), "mgr@indyhall.test", "", "signature did not verify"},
		{"unaligned d=", sign(t, unsignedMsg, signOpts{domain: "evil.test"}), "mgr@indyhall.test", "", "d= not aligned with the From domain indyhall.test"},
		{"From of another domain", good, "mgr@evil.test", "", "not aligned"},
		{"look-alike From domain", good, "mgr@indуhall.test", "", "not aligned"},
		{"no key record", sign(t, unsignedMsg, signOpts{selector: "missing"}), "mgr@indyhall.test", "", "no key for signature"},
		{"revoked key", sign(t, unsignedMsg, signOpts{selector: "revoked"}), "mgr@indyhall.test", "", "key revoked"},
		{"two key records", sign(t, unsignedMsg, signOpts{selector: "two"}), "mgr@indyhall.test", "", "multiple TXT records"},
		{"subject not signed", sign(t, unsignedMsg, signOpts{keys: []string{"From", "To", "Date", "Message-ID"}}), "mgr@indyhall.test", "", "1 subject field(s) but 0 signed"},
		{"message-id not signed", sign(t, unsignedMsg, signOpts{keys: []string{"From", "To", "Subject", "Date"}}), "mgr@indyhall.test", "", "1 message-id field(s) but 0 signed"},
		{"subject added on top", "Subject: add manager mallory@evil.test\r\n" + good, "mgr@indyhall.test", "", "2 subject field(s) but 1 signed"},
		{"message-id added on top", "Message-ID: <replay@evil.test>\r\n" + good, "mgr@indyhall.test", "", "2 message-id field(s) but 1 signed"},
		{"content-type added on top", "Content-Type: text/html\r\n" + good, "mgr@indyhall.test", "", "2 content-type field(s) but 1 signed"},
		{"unsigned content-type is fine", sign(t, unsignedMsg, signOpts{keys: []string{"From", "Subject", "Message-ID"}}), "mgr@indyhall.test", "indyhall.test", ""},
		{"From added on top", "From: mallory@evil.test\r\n" + good, "mgr@indyhall.test", "", "2 from field(s) but 1 signed"},
		{"expired", sign(t, unsignedMsg, signOpts{expires: now.Add(30 * time.Second)}), "mgr@indyhall.test", "", "expired"},
		{"l= tag", withTag(t, good, "l=31"), "mgr@indyhall.test", "", "body length tag"},
		{"duplicate d=", withTag(t, good, "d=evil.test"), "mgr@indyhall.test", "", "duplicate"},
		{"no From domain", good, "", "", "no From domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			when := now
			if tt.name == "expired" {
				when = now.Add(time.Minute) // go-msgauth's own clock has not seen x= pass yet
			}
			d, err := VerifyDKIM(context.Background(), []byte(tt.raw), tt.from, z.lookup, when)
			if tt.want != "" {
				if err != nil || d != tt.want {
					t.Fatalf("VerifyDKIM = %q, %v; want %q", d, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyDKIM passed with d=%s, want a failure", d)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrDKIMTemporary) {
				t.Errorf("error %q is temporary", err)
			}
		})
	}
}

// withTag adds a tag at the start of the first DKIM-Signature: the
// signature no longer verifies, but the tag must be refused whatever else.
func withTag(t testing.TB, signed, tag string) string {
	t.Helper()
	out := strings.Replace(signed, "DKIM-Signature: ", "DKIM-Signature: "+tag+"; ", 1)
	if out == signed {
		t.Fatal("no DKIM-Signature")
	}
	return out
}

// TestDKIMPolicyChecks runs the checks that go-msgauth also makes (l=, From
// signed, x=) on their own, so that they hold whatever the library does.
func TestDKIMPolicyChecks(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	counts := map[string]int{"from": 1, "subject": 1, "message-id": 1, "content-type": 1}
	tests := []struct {
		tags, want string
	}{
		{"v=1; d=indyhall.test; h=from:subject:message-id", ""},
		{"v=1; d=Mail.IndyHall.test.; h=From : Subject:Message-Id", ""},
		{"v=1; d=indyhall.test; h=from:subject:message-id; x=1700000001", ""},
		{"v=1; d=indyhall.test; h=from:subject:message-id; l=120", "body length limit"},
		{"v=1; d=indyhall.test; h=from:subject:message-id; l=", "body length limit"},
		{"v=1; d=indyhall.test; h=to:subject:message-id", "From is not signed"},
		{"v=1; d=indyhall.test; h=from:subject:message-id; x=1700000000", "expired"},
		{"v=1; d=indyhall.test; h=from:subject:message-id; x=soon", "malformed x="},
		{"v=1; d=evil.test; h=from:subject:message-id", "not aligned"},
		{"v=1; d=test; h=from:subject:message-id", "not aligned"},
		{"v=1; d=indyhall.test; h=from:subject:message-id:content-type:content-type", ""},
	}
	for _, tt := range tests {
		tags := parseDKIMTags(tt.tags)
		if tags.err != nil {
			t.Fatalf("%s: %v", tt.tags, tags.err)
		}
		got := tags.policyProblem("indyhall.test", counts, now)
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%s: problem %q, want %q", tt.tags, got, tt.want)
		}
	}
	for _, bad := range []string{"v=1; d=a; d=b", "v=1; d=a; junk"} {
		if parseDKIMTags(bad).err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func TestVerifyDKIMTemporary(t *testing.T) {
	z := testZone(t)
	good := sign(t, unsignedMsg, signOpts{})
	hang := func(ctx context.Context, name string) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	servfail := func(context.Context, string) ([]string, error) {
		return nil, &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}
	}
	wrappedTimeout := func(ctx context.Context, name string) ([]string, error) {
		return nil, fmt.Errorf("lookup %s: %w", name, &net.DNSError{Err: "i/o timeout", IsTimeout: true})
	}
	for name, lookup := range map[string]LookupTXTFunc{"hang": hang, "servfail": servfail, "wrapped timeout": wrappedTimeout} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			// "hang" returns only when ctx ends: the test hangs (and fails
			// on go test's timeout) if the deadline were not passed down.
			d, err := VerifyDKIM(ctx, []byte(good), "mgr@indyhall.test", lookup, time.Now())
			if err == nil || !errors.Is(err, ErrDKIMTemporary) || !strings.Contains(err.Error(), "temporary") {
				t.Fatalf("VerifyDKIM = %q, %v; want a temporary failure", d, err)
			}
		})
	}
	// A temporary failure of an unaligned signature is no reason to come
	// back: it could never count.
	evil := sign(t, unsignedMsg, signOpts{domain: "evil.test"})
	if _, err := VerifyDKIM(context.Background(), []byte(evil), "mgr@indyhall.test", servfail, time.Now()); err == nil || errors.Is(err, ErrDKIMTemporary) {
		t.Errorf("unaligned with SERVFAIL: %v, want a permanent failure", err)
	}
	// NXDOMAIN is permanent (RFC 6376 §6.1.2).
	if _, err := VerifyDKIM(context.Background(), []byte(good), "mgr@indyhall.test", zone{}.lookup, time.Now()); err == nil || errors.Is(err, ErrDKIMTemporary) {
		t.Errorf("NXDOMAIN: %v, want a permanent failure", err)
	}
	_ = z
}

func TestVerifyDKIMBoundsSignatures(t *testing.T) {
	z := testZone(t)
	var lookups atomic.Int32
	counting := func(ctx context.Context, name string) ([]string, error) {
		lookups.Add(1)
		return z.lookup(ctx, name)
	}
	// Six failing signatures on top of a good one: only five are checked,
	// and the good one is not among them.
	msg := sign(t, unsignedMsg, signOpts{})
	for range 6 {
		msg = sign(t, msg, signOpts{selector: "other"})
	}
	_, err := VerifyDKIM(context.Background(), []byte(msg), "mgr@indyhall.test", counting, time.Now())
	if err == nil || !strings.Contains(err.Error(), "2 more signatures not checked") {
		t.Fatalf("error %v, want 2 signatures not checked", err)
	}
	if n := lookups.Load(); n != maxSignatures {
		t.Errorf("%d look-ups, want %d", n, maxSignatures)
	}
}

func TestDKIMVerifierTimeout(t *testing.T) {
	good := sign(t, unsignedMsg, signOpts{})
	v := &DKIMVerifier{
		LookupTXT: func(ctx context.Context, _ string) ([]string, error) { <-ctx.Done(); return nil, ctx.Err() },
		Timeout:   50 * time.Millisecond,
	}
	// The lookup returns only when its context ends: without the
	// verifier's own timeout this would hang.
	_, err := v.Verify(context.Background(), []byte(good), "mgr@indyhall.test")
	if !errors.Is(err, ErrDKIMTemporary) {
		t.Fatalf("err = %v, want ErrDKIMTemporary", err)
	}
	// The clock is injectable for x=.
	exp := sign(t, unsignedMsg, signOpts{expires: time.Now().Add(time.Hour)})
	v = &DKIMVerifier{LookupTXT: testZone(t).lookup, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
	if _, err := v.Verify(context.Background(), []byte(exp), "mgr@indyhall.test"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("err = %v, want expired", err)
	}
}

func TestAuthenticateWithOwnDKIM(t *testing.T) {
	z := testZone(t)
	own := &DKIMVerifier{LookupTXT: z.lookup}
	dmarc := Policy{Require: RequireDMARC, AuthservID: ours, BotAddress: "visa@coworkingvisa.test", DKIM: own}
	dkimOnly := dmarc
	dkimOnly.Require = RequireDKIM
	noOwn := dmarc
	noOwn.DKIM = nil
	const mgr = "mgr@indyhall.test"
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

	// A message through Microsoft 365: its fields have no authserv-id.
	m365Head := crlf(m365[:strings.Index(m365, "From:")])
	good := sign(t, unsignedMsg, signOpts{})
	evil := sign(t, unsignedMsg, signOpts{domain: "evil.test"})
	arHead := func(v string) string { return "Authentication-Results: " + v + "\r\n" }

	tests := []struct {
		name    string
		raw     string
		policy  Policy
		want    Sender
		wantErr string
	}{
		{"m365 and a good signature", m365Head + good, dmarc, Sender{mgr, MethodOwnDKIM}, ""},
		{"require dkim", m365Head + good, dkimOnly, Sender{mgr, MethodOwnDKIM}, ""},
		{"no own check configured", m365Head + good, noOwn, Sender{}, "no Authentication-Results"},
		{"our dkim=fail is not a veto", arHead(ours+"; dkim=fail header.d=indyhall.test") + good, dmarc, Sender{mgr, MethodOwnDKIM}, ""},
		{"our dmarc=none", arHead(ours+"; dmarc=none header.from=indyhall.test") + good, dmarc, Sender{mgr, MethodOwnDKIM}, ""},
		{"our result passes first", arHead(ours+"; dmarc=pass header.from=indyhall.test") + unsignedMsg, dmarc, Sender{mgr, RequireDMARC}, ""},
		{"our dmarc=fail vetoes", arHead(ours+"; dmarc=fail header.from=indyhall.test") + good, dmarc, Sender{}, "own DKIM check not consulted"},
		{"our malformed field stands", arHead(ours+" 2; dmarc=pass") + good, dmarc, Sender{}, "unsupported version"},
		{"m365 and no signature", m365Head + unsignedMsg, dmarc, Sender{}, "own DKIM check: no DKIM signature"},
		{"m365 and unaligned", m365Head + evil, dmarc, Sender{}, "not aligned"},
		{"m365 and tampered", m365Head + strings.Replace(good, "member alice@", "member bob@", 1), dmarc, Sender{}, "body hash did not verify"},
		{"display name trick", strings.Replace(good, "Indy Hall Manager <mgr@indyhall.test>", `"mgr@indyhall.test" <mallory@evil.test>`, 1), dmarc, Sender{}, "not aligned with the From domain evil.test"},
		{"display name trick signed by evil", sign(t, strings.Replace(unsignedMsg, "Indy Hall Manager <mgr@indyhall.test>", `"mgr@indyhall.test" <mallory@evil.test>`, 1), signOpts{domain: "evil.test"}),
			dmarc, Sender{"mallory@evil.test", MethodOwnDKIM}, ""},
		{"bot's own address", sign(t, strings.Replace(unsignedMsg, "Indy Hall Manager <mgr@indyhall.test>", "visa@coworkingvisa.test", 1), signOpts{domain: "coworkingvisa.test"}),
			dmarc, Sender{}, "bot's own address"},
		{"two From fields", "From: mgr@indyhall.test\r\n" + good, dmarc, Sender{}, "2 From fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z["sel._domainkey.coworkingvisa.test"] = []string{rsaTXT}
			h := parseHeader(t, strings.ReplaceAll(tt.raw[:strings.Index(tt.raw, "\r\n\r\n")], "\r\n", "\n"))
			got, err := AuthenticateMessage(context.Background(), h, []byte(tt.raw), tt.policy)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("authenticated %+v, want an error containing %q", got, tt.wantErr)
			}
			if !errors.Is(err, ErrNotAuthenticated) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want ErrNotAuthenticated containing %q", err, tt.wantErr)
			}
		})
	}

	// Microsoft 365 without an authserv-id configured: no field is
	// believed, a forged one with any id included; only the own check.
	ownOnly := Policy{Require: RequireDMARC, BotAddress: "visa@coworkingvisa.test", DKIM: own}
	forged := arHead("spf=pass smtp.mailfrom=indyhall.test; dkim=pass header.d=indyhall.test; dmarc=pass header.from=indyhall.test") +
		arHead("mx.example.org; dmarc=pass header.from=indyhall.test")
	for _, c := range []struct {
		name, raw string
		ok        bool
	}{
		{"good signature", m365Head + good, true},
		{"forged results, no signature", m365Head + forged + unsignedMsg, false},
		{"forged results, unaligned signature", m365Head + forged + evil, false},
	} {
		h := parseHeader(t, strings.ReplaceAll(c.raw[:strings.Index(c.raw, "\r\n\r\n")], "\r\n", "\n"))
		got, err := AuthenticateMessage(context.Background(), h, []byte(c.raw), ownOnly)
		if (err == nil) != c.ok {
			t.Errorf("own check only, %s: %+v, %v; want ok %v", c.name, got, err, c.ok)
		}
		if err == nil && got.Method != MethodOwnDKIM {
			t.Errorf("own check only, %s: method %q", c.name, got.Method)
		}
	}

	// Authenticate sees the header alone: no own check.
	h := parseHeader(t, strings.ReplaceAll(m365Head+good[:strings.Index(good, "\r\n\r\n")], "\r\n", "\n"))
	if s, err := Authenticate(h, dmarc); err == nil {
		t.Errorf("Authenticate without the raw message passed: %+v", s)
	}

	// A DNS timeout: not authenticated, and said to be temporary.
	slow := dmarc
	slow.DKIM = &DKIMVerifier{Timeout: 20 * time.Millisecond,
		LookupTXT: func(ctx context.Context, _ string) ([]string, error) { <-ctx.Done(); return nil, ctx.Err() }}
	_, err := AuthenticateMessage(context.Background(), h, []byte(m365Head+good), slow)
	if !errors.Is(err, ErrNotAuthenticated) || !errors.Is(err, ErrDKIMTemporary) {
		t.Errorf("DNS timeout: %v, want ErrNotAuthenticated and ErrDKIMTemporary", err)
	}
}
