package trust

// This file is the bot's own DKIM check (RFC 6376), for mailbox providers
// whose Authentication-Results the bot cannot use: Microsoft 365 writes them
// without an authserv-id, so they can never be told from forged ones.
//
// go-msgauth verifies the signatures; what it leaves to its caller is done
// here: the signing domain must align with the From domain (relaxed
// alignment, align.go), and the signature must cover what the bot acts on.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	msgtextproto "github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"
)

// ErrDKIMTemporary is wrapped by VerifyDKIM errors when a signature could not
// be checked for a reason that may go away, such as a DNS timeout. The
// message is not authenticated all the same: the check fails closed.
var ErrDKIMTemporary = errors.New("temporary DKIM failure")

// MethodOwnDKIM is Sender.Method for a sender vouched for by the bot's own
// DKIM check rather than by an Authentication-Results field.
const MethodOwnDKIM = "dkim-own"

// DefaultDNSTimeout bounds the DNS look-ups of one message when
// DKIMVerifier.Timeout is zero.
const DefaultDNSTimeout = 5 * time.Second

// maxSignatures bounds the signatures checked in one message, so that a
// message cannot make the bot do many DNS look-ups and RSA verifications.
const maxSignatures = 5

// LookupTXTFunc returns the TXT records of a DNS name, one string per
// record (the character-strings of a record joined), as net.Resolver does.
type LookupTXTFunc func(ctx context.Context, name string) ([]string, error)

// DKIMVerifier is the bot's own DKIM check, configured by auth.verify_dkim.
// Set Policy.DKIM to one to make it a second way to authenticate a sender.
type DKIMVerifier struct {
	// LookupTXT finds the signers' public keys. Nil means the system
	// resolver.
	LookupTXT LookupTXTFunc
	// Timeout bounds all the DNS look-ups of one message together; zero
	// means DefaultDNSTimeout.
	Timeout time.Duration
	// Now is the clock that signature expiry (x=) is checked against; nil
	// means time.Now.
	Now func() time.Time
}

// NewDKIMVerifier makes a verifier that asks the DNS server at dnsServer
// ("host:port"), or the system resolver if it is "", with the given timeout
// per message (DefaultDNSTimeout if zero).
func NewDKIMVerifier(dnsServer string, timeout time.Duration) *DKIMVerifier {
	return &DKIMVerifier{LookupTXT: ResolverLookupTXT(dnsServer), Timeout: timeout}
}

// ResolverLookupTXT returns a TXT look-up through the DNS server at server
// ("host:port"), or through the system resolver if server is "". Names are
// looked up as fully qualified: no search domain of resolv.conf is tried.
func ResolverLookupTXT(server string) LookupTXTFunc {
	r := net.DefaultResolver
	if server != "" {
		r = &net.Resolver{
			PreferGo: true,
			// The Go resolver dials each server of resolv.conf; every
			// one of those dials goes to the configured server instead.
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, server)
			},
		}
	}
	return func(ctx context.Context, name string) ([]string, error) {
		if !strings.HasSuffix(name, ".") {
			name += "."
		}
		txts, err := r.LookupTXT(ctx, name)
		var dnsErr *net.DNSError
		if server != "" && errors.As(err, &dnsErr) {
			// It names a server of resolv.conf, which was not asked.
			e := *dnsErr
			e.Server = server
			err = &e
		}
		return txts, err
	}
}

// Verify is VerifyDKIM with the verifier's look-up, timeout and clock.
func (v *DKIMVerifier) Verify(ctx context.Context, raw []byte, from string) (domain string, err error) {
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = DefaultDNSTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lookup := v.LookupTXT
	if lookup == nil {
		lookup = ResolverLookupTXT("")
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	return VerifyDKIM(ctx, raw, from, lookup, now())
}

// VerifyDKIM checks the DKIM signatures of a raw message and returns the
// signing domain (d=) of the first one that vouches for the From domain.
// from is the From address (or its domain), as FromAddress returns it. A
// signature vouches for it only if:
//   - it verifies (go-msgauth: body hash, signature, key record, no rsa-sha1,
//     RSA keys of at least 1024 bits);
//   - its d= is aligned with the From domain: both have the same
//     organizational domain (relaxed alignment, RFC 7489 §3.1.1);
//   - it has no body length limit (l=), which would leave text appended
//     after the signed part unsigned (as mox's default policy does);
//   - it is not expired (x=) at now;
//   - it covers every From, Subject and Message-ID field of the message (h=
//     names each as often as it occurs: a field added above the signed one
//     would be the one the bot reads), since commands come from the body and
//     the subject and the Message-ID keys exactly-once handling; and it
//     leaves no instance of a MIME field it signed (Content-Type,
//     Content-Transfer-Encoding, MIME-Version) unsigned.
//
// ctx bounds the DNS look-ups. A look-up that times out or fails
// temporarily fails the check closed: the error then wraps ErrDKIMTemporary.
func VerifyDKIM(ctx context.Context, raw []byte, from string, lookup LookupTXTFunc, now time.Time) (domain string, err error) {
	fromDomain := domainPart(from)
	if fromDomain == "" {
		return "", errors.New("no From domain")
	}
	fields, err := rawHeaderFields(raw, "")
	if err != nil {
		return "", err
	}
	var sigs []dkimTags
	counts := map[string]int{}
	for _, f := range fields {
		name := asciiLower(f.name)
		counts[name]++
		if name == "dkim-signature" {
			sigs = append(sigs, parseDKIMTags(f.value))
		}
	}
	if len(sigs) == 0 {
		return "", errors.New("no DKIM signature")
	}
	// The bot reads the header with go-message; count the fields it sees
	// too, in case the two parsers ever split a header differently.
	if h, err := mailHeader(raw); err == nil {
		for _, name := range append(coveredFields, mimeFields...) {
			n := 0
			for f := h.FieldsByKey(name); f.Next(); {
				n++
			}
			counts[name] = max(counts[name], n)
		}
	}

	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT:        msgauthLookup(ctx, lookup),
		MaxVerifications: maxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return "", fmt.Errorf("DKIM: %w", err)
	}
	if len(verifs) != min(len(sigs), maxSignatures) {
		// go-msgauth returns one verification per signature, in header
		// order; anything else means the two parsers disagree.
		return "", fmt.Errorf("DKIM: %d verifications for %d signatures", len(verifs), len(sigs))
	}

	var why []string
	temporary := false
	for i, v := range verifs {
		tags := sigs[i]
		d := domainPart(tags.get("d"))
		problem := ""
		switch {
		case tags.err != nil:
			problem = tags.err.Error()
		case d != domainPart(v.Domain):
			problem = "d= read differently by the verifier"
		case !aligned(d, fromDomain):
			// Checked first: whatever else fails, it could not count.
			problem = "d= not aligned with the From domain " + fromDomain
		case v.Err != nil:
			problem = v.Err.Error()
			if dkim.IsTempFail(v.Err) {
				problem = "temporary: " + problem
				temporary = true
			}
		default:
			problem = tags.policyProblem(fromDomain, counts, now)
		}
		if problem == "" {
			return d, nil
		}
		why = append(why, fmt.Sprintf("d=%s s=%s: %s", loggable(d, 80), loggable(tags.get("s"), 40), loggable(problem, 160)))
	}
	if len(sigs) > maxSignatures {
		why = append(why, fmt.Sprintf("%d more signatures not checked", len(sigs)-maxSignatures))
	}
	reason := strings.Join(why, "; ")
	if temporary {
		return "", fmt.Errorf("%w: %s", ErrDKIMTemporary, reason)
	}
	return "", errors.New(reason)
}

// coveredFields must be signed in every instance: the bot reads the topmost
// one, and DKIM covers them from the bottom up (RFC 6376 §5.4.2).
var coveredFields = []string{"from", "subject", "message-id"}

// mimeFields decide how the body is read: when signed, no instance may be
// left unsigned. Many signers (Gmail) do not sign Content-Type at all.
var mimeFields = []string{"content-type", "content-transfer-encoding", "mime-version"}

// policyProblem applies the bot's policy to a signature that verified, and
// says what is wrong with it, or "".
func (t dkimTags) policyProblem(fromDomain string, counts map[string]int, now time.Time) string {
	if !aligned(domainPart(t.get("d")), fromDomain) {
		return "d= not aligned with the From domain " + fromDomain
	}
	if _, ok := t.tags["l"]; ok {
		return "body length limit (l=): the body may hold unsigned text"
	}
	if x, ok := t.tags["x"]; ok {
		sec, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return "malformed x="
		}
		if !now.Before(time.Unix(sec, 0)) {
			return "signature expired (x=)"
		}
	}
	signed := map[string]int{}
	for _, k := range strings.Split(t.get("h"), ":") {
		signed[asciiLower(k)]++
	}
	if signed["from"] == 0 {
		return "From is not signed"
	}
	for _, k := range coveredFields {
		if counts[k] > signed[k] {
			return fmt.Sprintf("%d %s field(s) but %d signed", counts[k], k, signed[k])
		}
	}
	for _, k := range mimeFields {
		if signed[k] > 0 && counts[k] > signed[k] {
			return fmt.Sprintf("%d %s field(s) but %d signed", counts[k], k, signed[k])
		}
	}
	return ""
}

// dkimTags is the tag-list of a DKIM-Signature field (RFC 6376 §3.2), with
// white space removed from the values (all tags the policy reads are free of
// meaningful white space).
type dkimTags struct {
	tags map[string]string
	err  error // malformed: duplicate tag, or a part without "="
}

func parseDKIMTags(v string) dkimTags {
	t := dkimTags{tags: map[string]string{}}
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok {
			if strings.TrimSpace(part) != "" {
				t.err = errors.New("malformed tag-list")
			}
			continue
		}
		if _, dup := t.tags[k]; dup {
			t.err = fmt.Errorf("duplicate tag %q", loggable(k, 20))
		}
		t.tags[k] = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, val)
	}
	return t
}

func (t dkimTags) get(k string) string { return t.tags[k] }

// headerField is one field of a raw header, unfolded.
type headerField struct{ name, value string }

// rawHeaderFields splits the header of a raw message into fields the way
// go-msgauth does (so that its verifications line up with the fields): a
// line starting with white space continues the previous field, joined to
// it by CRLF. With only set, it returns the fields of that name alone (in
// any case), and copies no other.
func rawHeaderFields(raw []byte, only string) ([]headerField, error) {
	var fields []headerField
	var field []byte // the field being read, its lines joined by CRLF
	skipping := false
	want := []byte(only)
	add := func() {
		if field != nil {
			k, v, _ := strings.Cut(string(field), ":")
			if k = strings.TrimSpace(k); only == "" || strings.EqualFold(k, only) {
				fields = append(fields, headerField{k, strings.TrimSpace(v)})
			}
		}
	}
	for rest := raw; ; {
		l, more, ok := headerLine(rest)
		switch {
		case !ok:
			return nil, fmt.Errorf("DKIM: reading the header: %w", io.EOF)
		case len(l) == 0:
			add()
			return fields, nil
		case (field != nil || skipping) && (l[0] == ' ' || l[0] == '\t'):
			if !skipping {
				field = append(append(field, "\r\n"...), l...)
			}
		default:
			add()
			name, _, _ := bytes.Cut(l, []byte(":"))
			field, skipping = nil, only != "" && !bytes.EqualFold(bytes.TrimSpace(name), want)
			if !skipping {
				field = append(make([]byte, 0, len(l)), l...)
			}
		}
		rest = more
	}
}

// headerLine splits the first line off raw as net/textproto's ReadLine
// reads it from a bufio.Reader (the reader DKIM verifiers use): up to the
// LF, without it and a CR just before it; the last line may lack the LF.
// It reads the message in place, without the 4 KiB buffer a bufio.Reader
// costs for each look at a header. ok is false at the end of raw.
func headerLine(raw []byte) (line, rest []byte, ok bool) {
	if len(raw) == 0 {
		return nil, nil, false
	}
	i := bytes.IndexByte(raw, '\n')
	if i < 0 {
		return raw, nil, true
	}
	line = raw[:i]
	if i > 0 && raw[i-1] == '\r' {
		line = raw[:i-1]
	}
	return line, raw[i+1:], true
}

// mailHeader reads the header of a raw message as the rest of the bot does.
func mailHeader(raw []byte) (mail.Header, error) {
	th, err := msgtextproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return mail.Header{}, err
	}
	return mail.Header{Header: message.Header{Header: th}}, nil
}

// msgauthLookup adapts a LookupTXTFunc to go-msgauth, which tells a
// temporary failure by a net.Error whose Temporary() is true, without
// unwrapping: a timeout or temporary error is handed over as a bare
// *net.DNSError so that it is reported as one.
func msgauthLookup(ctx context.Context, lookup LookupTXTFunc) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		txts, err := lookup(ctx, name)
		if err == nil {
			return txts, nil
		}
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr):
			return nil, dnsErr
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			return nil, &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true}
		}
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return nil, &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true}
		}
		return nil, err
	}
}
