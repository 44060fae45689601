// Package sasl holds the SASL clients the bot logs in with when its mailbox
// uses OAuth2 (config key auth: oauth2): OAUTHBEARER (RFC 7628) and XOAUTH2,
// Google's older mechanism, which is the one Microsoft documents. Both carry
// an OAuth2 access token in place of a password; the server checks it with
// its identity provider.
//
// go-sasl has OAUTHBEARER and, on purpose, no XOAUTH2, so XOAUTH2 is written
// here: its initial response is "user=" user ^A "auth=Bearer " token ^A ^A,
// which the IMAP and SMTP clients send base64-encoded.
//
// A server refuses a token with a challenge holding a JSON object (RFC 7628
// section 3.2.2; Google's XOAUTH2 sends the same fields). The clients here
// answer it with a RefusedError and no response: the protocol clients then
// abandon the exchange, and the caller closes the connection and dials again
// (go-imap v2 beta.8 would answer an empty response as "=", which Dovecot
// rejects).
package sasl

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	gosasl "github.com/emersion/go-sasl"
)

// The mechanisms' names, as servers advertise them (IMAP "AUTH=XOAUTH2",
// SMTP "AUTH ... XOAUTH2").
const (
	OAuthBearer = gosasl.OAuthBearer
	XOAuth2     = "XOAUTH2"
)

// preferred is the order in which the mechanisms are chosen: the standard
// one first, XOAUTH2 where it is the only one (Microsoft 365).
var preferred = []string{OAuthBearer, XOAuth2}

// ErrNoMechanism means the server offers neither OAUTHBEARER nor XOAUTH2:
// it does not take OAuth2 logins (or only after STARTTLS).
var ErrNoMechanism = errors.New("the server offers neither OAUTHBEARER nor XOAUTH2 (does it take OAuth2 logins?)")

// Choose returns a client for the preferred mechanism among those the server
// offers (names in any case), logging in as user with the access token.
func Choose(offered []string, user, token string) (gosasl.Client, error) {
	for _, mech := range preferred {
		if slices.ContainsFunc(offered, func(o string) bool { return strings.EqualFold(o, mech) }) {
			return New(mech, user, token)
		}
	}
	return nil, ErrNoMechanism
}

// New returns a client for one mechanism, OAuthBearer or XOAuth2.
func New(mech, user, token string) (gosasl.Client, error) {
	if user == "" {
		return nil, errors.New("sasl: no user name to log in as")
	}
	// ^A separates the fields of both mechanisms, and a line break would
	// end the command line the response is sent on.
	if strings.ContainsFunc(user, isControl) {
		return nil, errors.New("sasl: the user name contains a control character")
	}
	if token == "" || strings.ContainsFunc(token, func(r rune) bool { return isControl(r) || r == ' ' }) {
		// The token itself is never quoted in an error.
		return nil, errors.New("sasl: the access token is empty or contains spaces or control characters")
	}
	switch mech {
	case XOAuth2:
		return &xoauth2{user: user, token: token}, nil
	case OAuthBearer:
		// RFC 7628 section 3.1 takes the user as a GS2 authzid, in which
		// "," and "=" are written =2C and =3D (RFC 5801 section 4).
		authzid := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user)
		return &oauthBearer{gosasl.NewOAuthBearerClient(&gosasl.OAuthBearerOptions{Username: authzid, Token: token})}, nil
	}
	return nil, fmt.Errorf("sasl: unknown mechanism %q", mech)
}

// xoauth2 is the client side of XOAUTH2
// (https://developers.google.com/gmail/imap/xoauth2-protocol).
type xoauth2 struct{ user, token string }

func (c *xoauth2) Start() (string, []byte, error) {
	return XOAuth2, []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next is called only when the server refuses the token: its challenge is
// the JSON error.
func (c *xoauth2) Next(challenge []byte) ([]byte, error) {
	return nil, refused(XOAuth2, challenge)
}

// oauthBearer is go-sasl's OAUTHBEARER client, whose Next is replaced to
// report the refusal as a RefusedError.
type oauthBearer struct{ gosasl.Client }

func (c *oauthBearer) Next(challenge []byte) ([]byte, error) {
	return nil, refused(OAuthBearer, challenge)
}

// RefusedError is a server's refusal of an access token, from the JSON of
// its last challenge (RFC 7628 section 3.2.2).
type RefusedError struct {
	Mechanism string
	// Status is what the server said: an error code of RFC 6750 section
	// 3.1 ("invalid_token", "insufficient_scope") or an HTTP status
	// ("401", "400"), as Google and Dovecot write it.
	Status string
	// Scope is the scope the server wants, when it says.
	Scope string
}

func (e *RefusedError) Error() string {
	s := "the server refused the access token (" + e.Mechanism
	if e.Status != "" {
		s += ", status " + e.Status
	}
	s += ")"
	if e.Scope != "" {
		s += ": it asks for the scope " + e.Scope
	}
	return s
}

// refused reads the server's JSON error. A challenge that is not one is
// reported as a refusal all the same: neither mechanism has another.
func refused(mech string, challenge []byte) error {
	var body struct {
		Status any    `json:"status"` // Google writes "400", some servers 400
		Scope  string `json:"scope"`
	}
	e := &RefusedError{Mechanism: mech}
	if json.Unmarshal(challenge, &body) == nil {
		switch v := body.Status.(type) {
		case string:
			e.Status = v
		case float64:
			e.Status = strconv.FormatFloat(v, 'f', -1, 64)
		}
		e.Scope = body.Scope
	}
	e.Status = printable(e.Status)
	e.Scope = printable(e.Scope)
	return e
}

// printable keeps a server's words to one short line for the log.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200])
	}
	return s
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }
