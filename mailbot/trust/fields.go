package trust

import (
	"bytes"
	"fmt"
	"net/textproto"
	"sort"

	"github.com/emersion/go-message/mail"
)

// singleFields may occur at most once in a message (RFC 5322 §3.6, the
// "Max number" column of its table), with the MIME fields that decide how
// the top-level body is read (RFC 2045 §3: one MIME-Version, one
// Content-Type and one Content-Transfer-Encoding per entity).
//
// A second instance is how a signed message is turned against its author:
// DKIM verifiers use the bottom-most instance of each signed field (RFC 6376
// §5.4.2), so a Subject or Message-ID added on top of a signed mail leaves
// dkim=pass and dmarc=pass intact while every mail reader, this bot's
// included, shows the added one.
var singleFields = []string{
	"date", "from", "sender", "reply-to", "to", "cc", "bcc",
	"message-id", "in-reply-to", "references", "subject",
	"mime-version", "content-type", "content-transfer-encoding",
}

// RepeatedFields names the fields of the top-level header that occur more
// often than RFC 5322 and RFC 2045 allow, in a stable order, or nil. Such a
// message must be set aside unanswered whatever its authentication says.
//
// raw is the whole message (or its header). The fields are counted by two
// readers, lines as net/textproto splits them (as DKIM verifiers split a
// header) and go-message (h) as the rest of the bot reads it, and the
// larger count wins, so that a header the two split differently cannot
// hide a second instance from either.
func RepeatedFields(h mail.Header, raw []byte) []string {
	counts := rawFieldCounts(raw)
	var out []string
	for _, name := range singleFields {
		seen := 0
		for f := h.FieldsByKey(name); f.Next(); {
			seen++
		}
		if n := max(counts[name], seen); n > 1 {
			out = append(out, fmt.Sprintf("%s (%d times)", textproto.CanonicalMIMEHeaderKey(name), n))
		}
	}
	sort.Strings(out)
	return out
}

// rawFieldCounts counts the header fields of a raw message by lowercased
// name. A line that begins with white space continues the previous field
// (RFC 5322 §2.2.3); a line without a colon is not a field. A name is
// compared without the white space some writers put before the colon
// ("Subject :", obsolete syntax of RFC 5322 §4.5).
func rawFieldCounts(raw []byte) map[string]int {
	counts := map[string]int{}
	for rest := raw; ; {
		l, more, ok := headerLine(rest)
		if !ok || len(l) == 0 {
			return counts
		}
		rest = more
		if l[0] == ' ' || l[0] == '\t' {
			continue
		}
		name, _, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		counts[asciiLower(string(bytes.TrimRight(name, " \t")))]++
	}
}
