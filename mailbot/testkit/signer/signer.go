// Package signer DKIM-signs test mail as a sending provider does, with a
// 2048-bit RSA key per test domain, and gives the DNS records that publish
// the keys and each domain's DMARC policy, for a test DNS server
// (mailbot/testkit/dnsstack) that a real verifier asks
// (mailbot/testkit/verifier).
//
// It signs as Gmail does: rsa-sha256, relaxed/relaxed (RFC 6376 §3.4), the
// whole body, the From domain as d=, and each of a fixed list of header
// fields once if the message has it. A field signed once covers its
// bottom-most instance only (RFC 6376 §5.4.2): a field of the same name
// added above it later leaves the signature valid, which is the attack the
// tests show real verifiers pass.
package signer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/dnsstack"
)

// Selector is the DKIM selector of every key (s=): the keys are published
// at Selector._domainkey.DOMAIN.
const Selector = "sel"

// DMARCPolicy is the DMARC record every domain publishes at _dmarc.DOMAIN
// (RFC 7489 §6.3): mail that fails is to be rejected. The test verifier
// stamps the result and delivers (OpenDMARC's RejectFailures is off), so the
// bot sees forged mail as a provider that quarantines would show it.
const DMARCPolicy = "v=DMARC1; p=reject"

// signedFields are the header fields signed, in Gmail's order; each is
// signed once if present. A field absent from the message is not named in
// h=, as OpenDKIM and Gmail leave it out.
var signedFields = []string{"From", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type"}

// Signer holds one key per domain. Its methods are safe for concurrent use.
type Signer struct {
	keys map[string]*rsa.PrivateKey // by lower-case domain
}

// New returns a signer for domains with the keys in dir (DOMAIN.pem),
// generating and saving those that are missing: a test binary makes them
// once, in its own directory, and every later New there reuses them.
func New(dir string, domains ...string) (*Signer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	s := &Signer{keys: make(map[string]*rsa.PrivateKey)}
	for _, d := range domains {
		d = strings.ToLower(d)
		if d == "" || strings.ContainsAny(d, "/@ \t\r\n") {
			return nil, fmt.Errorf("signer: %q is not a domain", d)
		}
		key, err := loadOrGenerate(filepath.Join(dir, d+".pem"))
		if err != nil {
			return nil, err
		}
		s.keys[d] = key
	}
	return s, nil
}

func loadOrGenerate(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("signer: %s holds no PEM block", path)
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signer: %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("signer: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("signer: generating a key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return key, nil
}

// Records are the TXT records to publish: each domain's public key
// (RFC 6376 §3.6.1) and its DMARC policy.
func (s *Signer) Records() []dnsstack.TXT {
	var out []dnsstack.TXT
	for d, key := range s.keys {
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			panic(err) // an RSA public key always marshals
		}
		out = append(out,
			dnsstack.TXT{Name: Selector + "._domainkey." + d, Text: "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)},
			dnsstack.TXT{Name: "_dmarc." + d, Text: DMARCPolicy})
	}
	return out
}

// Sign signs raw with the key of its From domain, as that domain's outgoing
// server does, and returns the message with its DKIM-Signature on top. The
// message must have exactly one From address, of a domain of the signer.
func (s *Signer) Sign(raw []byte) ([]byte, error) {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("signer: reading the header: %w", err)
	}
	from, err := (&mail.Header{Header: message.Header{Header: h}}).AddressList("From")
	if err != nil || len(from) != 1 || len(h.Values("From")) != 1 {
		return nil, fmt.Errorf("signer: want one From field with one address, got %q (%v)", h.Values("From"), err)
	}
	return s.SignAs(from[0].Address[strings.LastIndexByte(from[0].Address, '@')+1:], raw)
}

// SignAs signs raw with domain's key (d=domain) whatever its From says, as
// a sender's own domain signs mail with a forged From: a signature that
// verifies but does not align.
func (s *Signer) SignAs(domain string, raw []byte) ([]byte, error) {
	key := s.keys[strings.ToLower(domain)]
	if key == nil {
		return nil, fmt.Errorf("signer: no key for domain %s", domain)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("signer: reading the header: %w", err)
	}
	var fields []string
	for _, k := range signedFields {
		if h.Has(k) {
			fields = append(fields, k)
		}
	}
	var out bytes.Buffer
	err = dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{
		Domain:                 strings.ToLower(domain),
		Selector:               Selector,
		Signer:                 key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             fields,
	})
	if err != nil {
		return nil, fmt.Errorf("signer: signing for %s: %w", domain, err)
	}
	return out.Bytes(), nil
}
