// Package trust makes the mailbot's trust decisions about an incoming
// message: whether its sender is authenticated (so that a command may change
// the shared database on the word of an email) and whether it is automatic
// mail that must never be answered nor acted on.
//
// Authentication relies on the Authentication-Results header field (RFC 8601)
// written by the operator's own receiving server, identified by its
// authserv-id. Only the topmost field with that id counts: a receiving server
// prepends its fields, so anything lower down was already in the message when
// it arrived and may have been written by the sender. RFC 8601 §5 asks the
// receiving server to remove such forged fields as well; the topmost rule
// keeps the bot safe as long as the server always adds its own.
package trust

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-message/mail"
)

// ErrNotAuthenticated is wrapped by every error of Authenticate, so that the
// caller can tell "move aside without a reply" from other failures.
var ErrNotAuthenticated = errors.New("trust: not authenticated")

// The values of Policy.Require, as written in the configuration.
const (
	RequireDMARC = "dmarc" // DMARC pass, or an aligned DKIM pass
	RequireDKIM  = "dkim"  // an aligned DKIM pass
	RequireNone  = "none"  // no check beyond a single well-formed From: testing only
)

// Policy is what the operator configured: how much evidence a command needs.
type Policy struct {
	Require    string // RequireDMARC, RequireDKIM or RequireNone
	AuthservID string // trust only Authentication-Results with this authserv-id
	BotAddress string // the bot's own address: mail From it never authenticates
}

// Validate reports a policy that cannot work, so that a configuration
// mistake shows up at start-up rather than as every message being refused.
func (p Policy) Validate() error {
	switch p.Require {
	case RequireNone:
		return nil
	case RequireDMARC, RequireDKIM:
	default:
		return fmt.Errorf("trust: unknown require %q (want dmarc, dkim or none)", p.Require)
	}
	if p.AuthservID == "" {
		return fmt.Errorf("trust: require %s needs an authserv-id", p.Require)
	}
	if strings.ContainsAny(p.AuthservID, " \t\r\n;=()\"\\") {
		return fmt.Errorf("trust: authserv-id %q is not a single token (RFC 8601 §2.2)", p.AuthservID)
	}
	return nil
}

// Sender is an authenticated sender: the address commands are attributed to.
type Sender struct {
	Address string // bare addr-spec, ASCII-lowercased
	Method  string // "dmarc", "dkim" or "none": what vouched for it, for the audit log
}

// Authenticate returns the sender of a message if the policy's evidence for
// its From address is there. Its errors say why not, for the log, and all
// wrap ErrNotAuthenticated.
func Authenticate(h mail.Header, p Policy) (Sender, error) {
	if err := p.Validate(); err != nil {
		return Sender{}, fmt.Errorf("%w: %w", ErrNotAuthenticated, err)
	}
	addr, err := FromAddress(h)
	if err != nil {
		return Sender{}, fmt.Errorf("%w: %w", ErrNotAuthenticated, err)
	}
	if p.BotAddress != "" && addr == asciiLower(p.BotAddress) {
		return Sender{}, fmt.Errorf("%w: From is the bot's own address", ErrNotAuthenticated)
	}
	if p.Require == RequireNone {
		return Sender{Address: addr, Method: RequireNone}, nil
	}

	results, err := trustedResults(h, p.AuthservID)
	if err != nil {
		return Sender{}, fmt.Errorf("%w: %w", ErrNotAuthenticated, err)
	}
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	method, why := evaluate(results, domain, p.Require)
	if method == "" {
		return Sender{}, fmt.Errorf("%w: From domain %q: %s", ErrNotAuthenticated, domain, why)
	}
	return Sender{Address: addr, Method: method}, nil
}

// trustedResults returns the results of the topmost Authentication-Results
// field with the given authserv-id. Fields of other ids are skipped (RFC 8601
// §5: they are not ours to trust); ours further down are never looked at,
// even when the topmost one is malformed.
//
// go-message keeps header fields in message order for FieldsByKey and Values,
// topmost first, when the header was read from bytes (TestHeaderOrder).
func trustedResults(h mail.Header, authservID string) ([]result, error) {
	for f := h.FieldsByKey("Authentication-Results"); f.Next(); {
		id, results, err := parseAuthResults(f.Value())
		if !equalFoldASCII(id, authservID) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("topmost Authentication-Results of %q: %w", authservID, err)
		}
		return results, nil
	}
	return nil, fmt.Errorf("no Authentication-Results of %q", authservID)
}

// evaluate applies the policy to the trusted results for the From domain.
// It returns the method that vouches for the domain, or "" and why not.
//
// A dmarc=fail anywhere in the trusted field vetoes everything: the receiving
// server knows the domain's published alignment mode (adkim=s, RFC 7489 §6.3)
// and the full Public Suffix List, so its verdict beats our own alignment.
func evaluate(results []result, fromDomain, require string) (method, why string) {
	var dmarcPass, dkimPass, dmarcFail bool
	var seen []string
	for _, r := range results {
		switch r.method {
		case "dmarc":
			from := domainPart(r.props["header.from"])
			switch {
			case r.value == "fail":
				dmarcFail = true
			case r.value == "pass" && (from == "" || from == fromDomain):
				dmarcPass = true
				continue
			}
			seen = append(seen, r.String())
		case "dkim":
			// header.d is the signing domain; header.i, when alone (as Gmail
			// writes it), is an identity within it (RFC 6376 §3.5).
			d := r.props["header.d"]
			if d == "" {
				d = domainPart(r.props["header.i"])
			}
			if r.value == "pass" && d != "" && aligned(d, fromDomain) {
				dkimPass = true
				continue
			}
			seen = append(seen, r.String())
		}
	}
	switch {
	case dmarcFail:
		return "", "DMARC failed: " + strings.Join(seen, "; ")
	case dmarcPass && require == RequireDMARC:
		return RequireDMARC, ""
	case dkimPass:
		return RequireDKIM, ""
	case len(seen) == 0:
		return "", "no " + require + " result"
	}
	return "", "no passing aligned result: " + strings.Join(seen, "; ")
}
