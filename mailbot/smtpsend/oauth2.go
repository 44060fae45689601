package smtpsend

import (
	"context"
	"errors"
	"net/textproto"

	gosasl "github.com/emersion/go-sasl"
	"github.com/wneessen/go-mail/smtp"

	"github.com/coworkingvisa/mailbot/mailbot/sasl"
)

// TokenSource gives the access tokens of OAuth2 logins; package oauth has
// the bot's (oauth.Login).
type TokenSource interface {
	// AccessToken returns a token to log in with now.
	AccessToken(ctx context.Context) (string, error)
	// LoginDone reports how a login with token went: nil when the server
	// took it, else the server's refusal.
	LoginDone(token string, err error)
}

// oauth2Auth is go-mail's smtp.Auth for an OAuth2 login: AUTH (RFC 4954)
// with the mechanism of package sasl that the server's EHLO offers, the
// token in the initial response.
type oauth2Auth struct {
	user, token, host string

	client  gosasl.Client
	started bool // AUTH was begun: a failure from here on is about the login
}

func (a *oauth2Auth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	a.started = true
	// A bearer token is as good as a password to whoever reads it.
	if !server.TLS && !isLoopback(a.host) {
		return "", nil, errors.New("an access token is sent only over TLS or to a loopback host")
	}
	c, err := sasl.Choose(server.Auth, a.user, a.token)
	if err != nil {
		return "", nil, err
	}
	a.client = c
	return c.Start()
}

// Next answers a challenge: for both mechanisms only the server's refusal,
// which the client turns into a sasl.RefusedError (go-mail then ends the
// session).
func (a *oauth2Auth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	return a.client.Next(fromServer)
}

// report tells the token source how the login went: a refusal is a
// RefusedError, a server without OAuth2 mechanisms, or a 5xx reply to AUTH
// (535, RFC 4954 section 6); anything else (no connection, a 4xx, a
// failure before AUTH) says nothing about the token.
func (a *oauth2Auth) report(ts TokenSource, err error) {
	var refused *sasl.RefusedError
	var te *textproto.Error
	switch {
	case err == nil:
		ts.LoginDone(a.token, nil)
	case !a.started:
	case errors.As(err, &refused), errors.Is(err, sasl.ErrNoMechanism), errors.As(err, &te) && te.Code >= 500:
		ts.LoginDone(a.token, err)
	}
}
