package localmail

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
)

// trace is what a delivering server knows about a message beyond its bytes.
type trace struct {
	authservID string // our authserv-id
	login      string // the authenticated SMTP identity, normalized
	mailFrom   string // the envelope sender; empty for the null sender
	received   string // the value of our Received header field
	id         string // the server's id of this delivery
}

// stamp returns msg with its header rewritten as a provider's server does on
// delivery, and the DMARC result it recorded. The body is copied byte for
// byte; unchanged header fields keep their original bytes.
//
// Every Authentication-Results field that carries our authserv-id is removed
// first, as RFC 8601 section 5 requires: only we may write them, so a sender
// cannot forge our verdict. Then, at the very top, come our Received (RFC 5321
// section 4.4), Return-Path (replacing any, RFC 5321 section 4.4) and
// Authentication-Results fields, in that order from the bottom up.
func stamp(msg []byte, t trace) ([]byte, authres.ResultValue, error) {
	rd := bytes.NewReader(msg)
	br := bufio.NewReader(rd)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, "", fmt.Errorf("read header: %w", err)
	}
	body := msg[len(msg)-rd.Len()-br.Buffered():]

	for f := h.FieldsByKey("Authentication-Results"); f.Next(); {
		if strings.EqualFold(authservID(f.Value()), t.authservID) {
			f.Del()
		}
	}
	h.Del("Return-Path")

	// A submission server completes what a client left out (RFC 6409
	// section 8.2 and 8.3): a message without a Date or a Message-ID
	// gets one, as Postfix and hosted providers do.
	if !h.Has("Date") {
		h.Add("Date", time.Now().Format(time.RFC1123Z))
	}
	if !h.Has("Message-Id") {
		h.Add("Message-Id", fmt.Sprintf("<%d.%s@%s>", time.Now().UnixNano(), t.id, t.authservID))
	}

	dmarc := dmarcResult(h, t.login)
	// RFC 8601 section 2.7.4: "auth" records the SMTP AUTH identity.
	results := []authres.Result{dmarc, &authres.AuthResult{Value: authres.ResultPass, Auth: t.login}}

	h.Add("Received", t.received)
	h.Add("Return-Path", "<"+t.mailFrom+">")
	h.Add("Authentication-Results", authres.Format(t.authservID, results))

	var out bytes.Buffer
	out.Grow(len(msg) + 512)
	if err := textproto.WriteHeader(&out, h); err != nil {
		return nil, "", fmt.Errorf("write header: %w", err)
	}
	out.Write(body)
	return out.Bytes(), dmarc.Value, nil
}

// dmarcResult decides the dmarc result of a message submitted by login.
//
// Real DMARC (RFC 7489) checks SPF and DKIM alignment with the From domain.
// A submission server vouches for its own users instead: the message passes
// when the authenticated login is the message's one From address. A message
// without exactly one From field holding one address has no usable author
// and gets "none".
func dmarcResult(h textproto.Header, login string) *authres.DMARCResult {
	froms := h.Values("From")
	if len(froms) != 1 {
		return &authres.DMARCResult{Value: authres.ResultNone, Reason: "not exactly one From field"}
	}
	// Only the address matters: read display names in unknown charsets as
	// they are rather than fail.
	parser := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
	}}
	addrs, err := parser.ParseList(froms[0])
	if err != nil || len(addrs) != 1 {
		return &authres.DMARCResult{Value: authres.ResultNone, Reason: "From is not a single address"}
	}
	from := addrs[0].Address
	at := strings.LastIndexByte(from, '@')
	if at < 0 || at == len(from)-1 {
		return &authres.DMARCResult{Value: authres.ResultNone, Reason: "From has no domain"}
	}
	domain := strings.ToLower(from[at+1:])
	if normalize(from) != login {
		return &authres.DMARCResult{Value: authres.ResultFail, From: domain}
	}
	return &authres.DMARCResult{Value: authres.ResultPass, From: domain}
}

// authservID returns the authserv-id of an Authentication-Results field
// value (RFC 8601 section 2.2: a token or quoted-string, after optional
// comments and white space), or "" if there is none.
func authservID(v string) string {
	v = skipCFWS(v)
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			switch c := v[i]; c {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				return b.String()
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	if i := strings.IndexAny(v, " \t\r\n;(\""); i >= 0 {
		return v[:i]
	}
	return v
}

// skipCFWS drops leading white space and comments (RFC 5322 section 3.2.2),
// which may nest and contain quoted pairs.
func skipCFWS(v string) string {
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return v[i:]
		}
	}
	return ""
}
