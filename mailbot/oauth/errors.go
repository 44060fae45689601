package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
)

// Kind is what went wrong with an OAuth2 login, coarse enough that a change
// of kind is worth a line in the log and a retry that fails the same way is
// not.
type Kind string

const (
	// NoLogin: the store holds no refresh token for this client and
	// account.
	NoLogin Kind = "no-login"
	// Revoked: the provider refuses the refresh token (invalid_grant): it
	// expired, was revoked, or the account's password changed.
	Revoked Kind = "revoked"
	// NoConsent: the user or an admin has not granted the app its
	// permissions.
	NoConsent Kind = "no-consent"
	// BadScope: the provider refuses the scopes asked for.
	BadScope Kind = "bad-scope"
	// BadClient: the provider refuses the client id or secret.
	BadClient Kind = "bad-client"
	// ProviderRefused: another refusal by the token endpoint.
	ProviderRefused Kind = "provider-refused"
	// Unavailable: the token endpoint could not be reached or failed (a
	// network error, a timeout, a 5xx).
	Unavailable Kind = "unavailable"
	// CommandFailed: token_command failed or printed nothing.
	CommandFailed Kind = "command-failed"
	// ServerRefused: the mail server refused an access token the provider
	// had just issued (wrong account, scope or permission).
	ServerRefused Kind = "server-refused"
)

// Error is a failed OAuth2 login, said so that an operator knows what to do.
// It never holds a token.
type Error struct {
	Kind Kind
	Err  error
	msg  string
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.Err }

// Codes the Microsoft identity platform puts in error_description.
const (
	aadNoConsent = "AADSTS65001" // the user or administrator has not consented
	aadBadScope  = "AADSTS70000" // the scopes are unauthorized or expired
)

const loginAgain = "run `mailbot oauth login --config FILE` as the daemon's user"

// explainFetch says what a failure to get an access token means.
func explainFetch(err error) *Error {
	var re *oauth2.RetrieveError
	var ce *commandError
	switch {
	case errors.Is(err, errNoLogin):
		return &Error{NoLogin, err, fmt.Sprintf("%v: %s", err, loginAgain)}
	case errors.As(err, &ce):
		return &Error{CommandFailed, err, err.Error()}
	case errors.As(err, &re):
		return explainRetrieve(re)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Unavailable, err, fmt.Sprintf("the token endpoint did not answer in time (%v); retrying", err)}
	}
	return &Error{Unavailable, err, fmt.Sprintf("cannot reach the token endpoint: %v; retrying", err)}
}

// explainRetrieve reads an error answer of the token endpoint (RFC 6749
// section 5.2). Only its error code and description are shown, never its
// body.
func explainRetrieve(re *oauth2.RetrieveError) *Error {
	said := re.ErrorCode
	if d := oneLine(re.ErrorDescription, 300); d != "" {
		said += ": " + d
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
		if said == "" {
			said = "HTTP " + re.Response.Status
		}
	}
	what := func(k Kind, advice string) *Error {
		return &Error{k, re, fmt.Sprintf("the provider refused (%s): %s", said, advice)}
	}
	switch {
	case strings.Contains(re.ErrorDescription, aadNoConsent) || re.ErrorCode == "consent_required" ||
		re.ErrorCode == "interaction_required" || re.ErrorCode == "access_denied":
		return what(NoConsent, "the app's permissions were not granted: have them granted (admin consent in Microsoft Entra), then "+loginAgain)
	case strings.Contains(re.ErrorDescription, aadBadScope) || re.ErrorCode == "invalid_scope":
		return what(BadScope, "check oauth2.scopes against the app's API permissions, then "+loginAgain)
	case re.ErrorCode == "invalid_grant":
		return what(Revoked, "the refresh token expired or was revoked (or the account's password changed): "+loginAgain)
	case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client":
		return what(BadClient, "check oauth2.client_id and the client secret, and that the app may use this flow")
	case re.ErrorCode == "" && (status >= 500 || status == 429):
		return &Error{Unavailable, re, fmt.Sprintf("the token endpoint failed (%s); retrying", said)}
	}
	return what(ProviderRefused, "check the oauth2 section, then "+loginAgain)
}

// explainRefusal says what a server's refusal of a token means. The next
// try gets a fresh token (a revoked or stale one is refused too); a fresh
// one refused points at the account, the scopes or the mailbox's settings.
func explainRefusal(server string, err error) *Error {
	return &Error{ServerRefused, err, fmt.Sprintf("%s login: %s: the next try gets a fresh token; if fresh tokens are refused too, "+
		"check that the login was made as %s.username, that oauth2.scopes cover %s, and that the mailbox may use %s with OAuth2",
		server, oneLine(err.Error(), 300), server, strings.ToUpper(server), strings.ToUpper(server))}
}
