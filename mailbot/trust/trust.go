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
//
// Where that server writes no usable field (Microsoft 365 writes them without
// an authserv-id), the bot can check DKIM signatures itself (dkim.go,
// Policy.DKIM, AuthenticateMessage).
package trust

import (
	"context"
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
	Require string // RequireDMARC, RequireDKIM or RequireNone
	// AuthservID: trust only Authentication-Results with this authserv-id.
	// Empty with DKIM set: believe no Authentication-Results at all, only
	// the bot's own DKIM check.
	AuthservID string
	BotAddress string // the bot's own address: mail From it never authenticates
	// DKIM, if set, is the bot's own DKIM check (auth.verify_dkim): a
	// second way to authenticate, for AuthenticateMessage only. A message
	// that the Authentication-Results of AuthservID do not authenticate
	// passes if it carries a DKIM signature aligned with its From domain
	// that the bot verifies itself (see VerifyDKIM), under either Require
	// value, unless that field says dmarc=fail: the receiving server
	// knows the domain's DMARC policy, and its veto stands.
	DKIM *DKIMVerifier
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
		if p.DKIM != nil {
			return nil // the own DKIM check alone: no Authentication-Results believed
		}
		return fmt.Errorf("trust: require %s needs an authserv-id", p.Require)
	}
	if strings.ContainsAny(p.AuthservID, " \t\r\n;=()\"\\") {
		return fmt.Errorf("trust: authserv-id %q is not a single token (RFC 8601 §2.2)", p.AuthservID)
	}
	return nil
}

// Sender is an authenticated sender: the address commands are attributed to.
type Sender struct {
	Address string // bare addr-spec, in canonical form (address.Canonical)
	Method  string // "dmarc", "dkim" or "none": what vouched for it, for the audit log
}

// Authenticate returns the sender of a message if the policy's evidence for
// its From address is there. Its errors say why not, for the log, and all
// wrap ErrNotAuthenticated. It sees the header only, so Policy.DKIM is not
// used: see AuthenticateMessage.
func Authenticate(h mail.Header, p Policy) (Sender, error) {
	return AuthenticateMessage(context.Background(), h, nil, p)
}

// AuthenticateMessage is Authenticate with the raw message at hand, which the
// bot's own DKIM check needs: when p.DKIM is set and the Authentication-Results
// do not authenticate the sender, it verifies the message's DKIM signatures
// itself (VerifyDKIM). Its DNS look-ups stop when ctx is done. A temporary
// DKIM failure (a DNS timeout) leaves the message unauthenticated, and its
// error wraps ErrDKIMTemporary as well as ErrNotAuthenticated.
func AuthenticateMessage(ctx context.Context, h mail.Header, raw []byte, p Policy) (Sender, error) {
	if err := p.Validate(); err != nil {
		return Sender{}, fmt.Errorf("%w: %w", ErrNotAuthenticated, err)
	}
	addr, err := FromAddress(h)
	if err != nil {
		return Sender{}, fmt.Errorf("%w: %w", ErrNotAuthenticated, err)
	}
	if p.BotAddress != "" && addr == canonical(strings.TrimSpace(p.BotAddress)) {
		return Sender{}, fmt.Errorf("%w: From is the bot's own address", ErrNotAuthenticated)
	}
	if p.Require == RequireNone {
		return Sender{Address: addr, Method: RequireNone}, nil
	}

	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	if p.AuthservID == "" {
		// Only the bot's own DKIM check: where the provider's fields carry
		// no id and forged ones are not removed (Microsoft 365), no field
		// can be told from a forgery, so none is read.
		if p.DKIM == nil || raw == nil {
			return Sender{}, fmt.Errorf("%w: no authserv-id configured and no own DKIM check", ErrNotAuthenticated)
		}
		if _, err := p.DKIM.Verify(ctx, raw, addr); err != nil {
			return Sender{}, fmt.Errorf("%w: From domain %q: own DKIM check: %w", ErrNotAuthenticated, domain, err)
		}
		return Sender{Address: addr, Method: MethodOwnDKIM}, nil
	}
	results, err := trustedResults(h, p.AuthservID)
	// Our own DKIM check may stand in where our receiving server gave no
	// verdict or an unfavourable one, but neither where its field is
	// unreadable (it may hold a veto) nor against its dmarc=fail.
	fallback := errors.Is(err, errNoTrustedResults)
	if err != nil && !fallback {
		return Sender{}, fmt.Errorf("%w: %w", ErrNotAuthenticated, err)
	}
	why := ""
	if err != nil {
		why = err.Error()
	} else {
		var method string
		var veto bool
		method, why, veto = evaluate(results, domain, p.Require)
		if method != "" {
			return Sender{Address: addr, Method: method}, nil
		}
		fallback = !veto
	}
	if p.DKIM == nil || raw == nil {
		return Sender{}, fmt.Errorf("%w: From domain %q: %s", ErrNotAuthenticated, domain, why)
	}
	if !fallback {
		return Sender{}, fmt.Errorf("%w: From domain %q: %s (own DKIM check not consulted)", ErrNotAuthenticated, domain, why)
	}
	if _, err := p.DKIM.Verify(ctx, raw, addr); err != nil {
		return Sender{}, fmt.Errorf("%w: From domain %q: %s; own DKIM check: %w", ErrNotAuthenticated, domain, why, err)
	}
	return Sender{Address: addr, Method: MethodOwnDKIM}, nil
}

// errNoTrustedResults: the message has no Authentication-Results field of
// the configured authserv-id.
var errNoTrustedResults = errors.New("no Authentication-Results of")

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
	return nil, fmt.Errorf("%w %q", errNoTrustedResults, authservID)
}

// evaluate applies the policy to the trusted results for the From domain.
// It returns the method that vouches for the domain, or "" and why not, and
// whether the field vetoes the domain (dmarc=fail).
//
// A dmarc=fail anywhere in the trusted field vetoes everything: the receiving
// server knows the domain's published alignment mode (adkim=s, RFC 7489 §6.3)
// and the full Public Suffix List, so its verdict beats our own alignment.
func evaluate(results []result, fromDomain, require string) (method, why string, veto bool) {
	var dmarcPass, dkimPass, dmarcFail bool
	var seen []string
	for _, r := range results {
		switch r.method {
		case "dmarc":
			// A header.from that is there must be the From domain; one
			// without a canonical form is not ("" from domainPart).
			hfrom, named := r.props["header.from"]
			switch {
			case r.value == "fail":
				dmarcFail = true
			case r.value == "pass" && (!named || domainPart(hfrom) == fromDomain):
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
		return "", "DMARC failed: " + strings.Join(seen, "; "), true
	case dmarcPass && require == RequireDMARC:
		return RequireDMARC, "", false
	case dkimPass:
		return RequireDKIM, "", false
	case len(seen) == 0:
		return "", "no " + require + " result", false
	}
	return "", "no passing aligned result: " + strings.Join(seen, "; "), false
}
