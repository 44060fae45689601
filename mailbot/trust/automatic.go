package trust

import (
	"cmp"
	"mime"
	"strings"

	"github.com/emersion/go-message/mail"
)

// Automatic reports whether a message is automatic mail: a bounce, an
// auto-reply, list traffic or the bot's own mail. Such mail must never be
// answered (RFC 3834 §2: that is how mail loops and backscatter start) nor
// acted on. The reason is short and meant for the log.
//
// It errs on the side of silence: every marker counts wherever it appears in
// the header, since a sender who forges one only silences the bot.
func Automatic(h mail.Header, botAddress string) (reason string, ok bool) {
	bot := canonical(strings.TrimSpace(botAddress))

	// RFC 3834 §5: any value other than "no" means automatic; parameters
	// such as "auto-replied; owner-email=..." follow the keyword.
	for _, v := range values(h, "Auto-Submitted") {
		if kw := keyword(v); kw != "no" {
			return "Auto-Submitted: " + cmp.Or(loggable(kw, 40), "(empty)"), true
		}
	}
	// Precedence is not standard, but it is what RFC 3834 §2 asks responders
	// to honour in practice.
	for _, v := range values(h, "Precedence") {
		switch kw := keyword(v); kw {
		case "bulk", "list", "junk", "auto_reply":
			return "Precedence: " + kw, true
		}
	}
	// Mailing list traffic (RFC 2369, RFC 2919).
	for _, k := range []string{"List-Id", "List-Unsubscribe", "List-Post"} {
		if h.Has(k) {
			return k + " present", true
		}
	}
	// Vendor markers of auto-replies.
	for _, k := range []string{"X-Autoreply", "X-Autorespond"} {
		if h.Has(k) {
			return k + " present", true
		}
	}
	// Microsoft's X-Auto-Response-Suppress asks that no auto-reply be sent
	// to the message; Exchange puts it on its own automatic mail.
	for _, v := range values(h, "X-Auto-Response-Suppress") {
		for _, w := range strings.Split(v, ",") {
			switch w = strings.TrimSpace(w); asciiLower(w) {
			case "all", "oof", "autoreply":
				return "X-Auto-Response-Suppress: " + w, true
			}
		}
	}
	// Bounces: a null reverse-path (RFC 5321 §4.5.5) as the delivering server
	// records it in Return-Path, or a MAILER-DAEMON or postmaster author.
	for _, v := range values(h, "Return-Path") {
		path := strings.Trim(strings.TrimSpace(stripComments(v)), "<>")
		if strings.TrimSpace(path) == "" {
			return "null envelope sender", true
		}
		if isDaemon(path) {
			return "Return-Path: " + loggable(path, 80), true
		}
	}
	for _, v := range values(h, "From") {
		if reason, ok := automaticFrom(v, bot); ok {
			return reason, true
		}
	}
	// Delivery and disposition notifications (RFC 6522).
	for _, v := range values(h, "Content-Type") {
		t, _, err := mime.ParseMediaType(v)
		if err != nil {
			t = keyword(v)
		}
		if asciiLower(t) == "multipart/report" {
			return "Content-Type: multipart/report", true
		}
	}
	if bot != "" {
		for _, v := range values(h, "X-Loop") {
			// Unicode lowercase, as the canonical bot address: a
			// looser match only silences the bot.
			if strings.Contains(strings.ToLower(v), bot) {
				return "X-Loop: the bot's own address", true
			}
		}
	}
	return "", false
}

// values returns all values of a header field, topmost first.
func values(h mail.Header, key string) []string {
	var vs []string
	for f := h.FieldsByKey(key); f.Next(); {
		vs = append(vs, f.Value())
	}
	return vs
}

// keyword returns the lowercased first word of a structured value, before
// any ";" parameters and without comments.
func keyword(v string) string {
	first := splitOutsideQuotes(stripComments(v), func(c byte) bool { return c == ';' })[0]
	return asciiLower(strings.TrimSpace(first))
}

// automaticFrom looks for a MAILER-DAEMON, postmaster or the bot itself as
// author. A value that does not parse is searched as text, so that a sloppy
// bounce ("From: MAILER-DAEMON") is still recognized.
func automaticFrom(v, bot string) (reason string, ok bool) {
	list, err := addressParser().ParseList(v)
	if err != nil {
		lv := asciiLower(v)
		switch {
		case strings.Contains(lv, "mailer-daemon"):
			return "From: MAILER-DAEMON", true
		case bot != "" && strings.Contains(strings.ToLower(v), bot):
			return "From is the bot's own address", true
		}
		return "", false
	}
	for _, a := range list {
		addr := canonical(a.Address)
		switch {
		case isDaemon(addr):
			return "From: " + loggable(addr, 80), true
		case bot != "" && addr == bot:
			return "From is the bot's own address", true
		}
	}
	return "", false
}

// isDaemon reports an address whose local part is MAILER-DAEMON or
// postmaster (RFC 5321 §4.5.1): the usual authors of bounces.
func isDaemon(addr string) bool {
	local := asciiLower(addr)
	if at := strings.LastIndexByte(local, '@'); at >= 0 {
		local = local[:at]
	}
	local = strings.Trim(strings.TrimSpace(local), `"`)
	return local == "mailer-daemon" || local == "postmaster"
}
