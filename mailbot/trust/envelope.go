package trust

import (
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
)

// AddressedTo reports whether the message's To or Cc names one of addrs
// (compared without case in ASCII, as the bot's own addresses are written).
// Mail that reached the bot as a Bcc, or by a forward or a list, was not
// written to it: its author did not mean the bot to act on it.
//
// A field that does not parse as an address list (RFC 5322 §3.4) is read
// leniently, taking every address-shaped word, so that a clumsy client is
// not refused for a comma.
func AddressedTo(h mail.Header, addrs ...string) bool {
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[asciiLower(strings.TrimSpace(a))] = true
	}
	for _, key := range []string{"To", "Cc"} {
		for f := h.FieldsByKey(key); f.Next(); {
			for _, a := range recipients(f.Value()) {
				if want[asciiLower(a)] {
					return true
				}
			}
		}
	}
	return false
}

// recipients returns the addresses of an address-list field value.
func recipients(v string) []string {
	if list, err := addressParser().ParseList(v); err == nil {
		out := make([]string, len(list))
		for i, a := range list {
			out[i] = a.Address
		}
		return out
	}
	return addrLike.FindAllString(v, -1)
}

// DateVerdict says whether a message is recent enough to act on.
type DateVerdict int

const (
	// DateFresh: written within the allowed age.
	DateFresh DateVerdict = iota
	// DateMissing: no Date field, or one that cannot be read (RFC 5322
	// §3.6.1 makes it mandatory).
	DateMissing
	// DateTooOld: written longer ago than the allowed age, by its Date or
	// by the time its author's DKIM signature was made.
	DateTooOld
	// DateAhead: dated more than a day into the future.
	DateAhead
)

// maxClockSkew is how far ahead a Date may be: a sender's clock that is
// wrong by a time zone or a few hours is common and harmless.
const maxClockSkew = 24 * time.Hour

// CheckDate tells whether a message was written within maxAge of now, and
// returns the time it goes by. A signed mail stays valid for its author
// forever, so anyone who received one could send it to the bot again: its
// age is what stops such a replay once the record that it was handled has
// been pruned.
//
// The age is the Date field's, unless a DKIM signature of the From domain
// (relaxed alignment) carries an older signing time (t=, RFC 6376 §3.5):
// that one cannot be changed without breaking the signature, while an
// unsigned Date can be rewritten by whoever replays the message.
func CheckDate(h mail.Header, raw []byte, now time.Time, maxAge time.Duration) (DateVerdict, time.Time) {
	date, err := h.Date()
	if err != nil || date.IsZero() {
		return DateMissing, time.Time{}
	}
	written := date
	if signed, ok := signedAt(h, raw); ok && signed.Before(written) {
		written = signed
	}
	switch {
	case date.After(now.Add(maxClockSkew)):
		return DateAhead, date
	case now.Sub(written) > maxAge:
		return DateTooOld, written
	}
	return DateFresh, written
}

// signedAt returns the oldest signing time (t=) of the DKIM signatures
// whose d= is aligned with the From domain.
func signedAt(h mail.Header, raw []byte) (time.Time, bool) {
	from, err := FromAddress(h)
	if err != nil {
		return time.Time{}, false
	}
	fields, err := rawHeaderFields(raw, "DKIM-Signature")
	if err != nil {
		return time.Time{}, false
	}
	var oldest time.Time
	for _, f := range fields {
		if asciiLower(f.name) != "dkim-signature" {
			continue
		}
		tags := parseDKIMTags(f.value)
		if tags.err != nil || !aligned(domainPart(tags.get("d")), domainPart(from)) {
			continue
		}
		sec, err := strconv.ParseInt(tags.get("t"), 10, 64)
		if err != nil || sec <= 0 {
			continue
		}
		if t := time.Unix(sec, 0); oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest, !oldest.IsZero()
}

// SignatureIDs identifies the DKIM signatures of a message by their b=
// values, for the exactly-once record. A signature is made once, when its
// author sends the mail: the same signature on a second message, whatever
// its Message-ID or Date say, is the first message sent again by someone
// else. Messages without signatures have no ids.
func SignatureIDs(raw []byte) []string {
	fields, err := rawHeaderFields(raw, "DKIM-Signature")
	if err != nil {
		return nil
	}
	var ids []string
	for _, f := range fields {
		if asciiLower(f.name) != "dkim-signature" {
			continue
		}
		if b := parseDKIMTags(f.value).get("b"); len(b) >= 16 {
			ids = append(ids, b)
		}
	}
	return ids
}
