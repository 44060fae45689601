package oauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/endpoints"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
)

// httpTimeout bounds each request to the provider: x/oauth2 uses
// http.DefaultClient, which waits for ever, unless told otherwise.
const httpTimeout = 30 * time.Second

// commandTimeout bounds a run of token_command.
const commandTimeout = 30 * time.Second

// Config is the x/oauth2 client of an oauth2 section with a provider: its
// endpoints and scopes. DeviceAuthURL is set where the provider has a
// device login (Microsoft; custom with device_auth_url).
func Config(o config.OAuth2) *oauth2.Config {
	c := &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes}
	switch o.Provider {
	case "google":
		c.Endpoint = endpoints.Google
		// Google refuses the mail scope to its device login.
		c.Endpoint.DeviceAuthURL = ""
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	case "microsoft":
		c.Endpoint = endpoints.AzureAD(o.Tenant)
		// A public client has no secret to put in a header.
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		c.Endpoint = oauth2.Endpoint{AuthURL: o.AuthURL, DeviceAuthURL: o.DeviceAuthURL, TokenURL: o.TokenURL}
		// RFC 6749 section 2.3.1: a client with a secret authenticates with
		// HTTP Basic, which every server must take; a public client names
		// itself in the form. (x/oauth2's guessing would send every failing
		// request twice.)
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		if o.ClientSecret != "" {
			c.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		}
	}
	return c
}

// withHTTPClient makes x/oauth2 use a client with a timeout.
func withHTTPClient(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: httpTimeout})
}

// errNoLogin: the store holds no refresh token for this client and account.
var errNoLogin = errors.New("no OAuth2 login is stored")

// refresher gets access tokens from the provider with the stored refresh
// token, and stores a rotated one at once. Its refresh field is guarded by
// the TokenSource's fetchMu.
type refresher struct {
	conf    *oauth2.Config
	db      *storage.DB
	key     string // storage.OAuthKey
	account string
	log     *slog.Logger
	now     func() time.Time

	refresh string // the refresh token in use; "" until read from the store
}

func (r *refresher) fetch(ctx context.Context) (*oauth2.Token, error) {
	if r.refresh == "" {
		var stored storage.OAuthToken
		var ok bool
		err := r.db.View(func(tx *storage.Tx) (err error) {
			stored, ok, err = tx.OAuthToken(r.key)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("reading the stored login: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("%w for %s with client %s", errNoLogin, r.account, r.conf.ClientID)
		}
		r.refresh = stored.RefreshToken
	}
	// x/oauth2 refreshes a token that has no access token: one request
	// with grant_type=refresh_token (RFC 6749 section 6).
	tok, err := r.conf.TokenSource(withHTTPClient(ctx), &oauth2.Token{RefreshToken: r.refresh}).Token()
	if err != nil {
		return nil, err
	}
	// x/oauth2 keeps a rotated refresh token in memory only; the old one
	// may stop working at once (Microsoft), so it is stored before the
	// access token is used.
	if tok.RefreshToken != "" && tok.RefreshToken != r.refresh {
		r.refresh = tok.RefreshToken
		if err := r.store(tok.RefreshToken, "rotated"); err != nil {
			r.log.Error("oauth2: the provider rotated the refresh token and the new one could not be stored: "+
				"after a restart, run mailbot oauth login again", "error", err)
		} else {
			r.log.Debug("oauth2: the provider rotated the refresh token; the new one is stored")
		}
	}
	return tok, nil
}

// store writes a refresh token to the store.
func (r *refresher) store(refreshToken, source string) error {
	err := r.db.Update(func(tx *storage.Tx) error {
		return tx.PutOAuthToken(r.key, storage.OAuthToken{RefreshToken: refreshToken, Updated: r.now().UTC(), Source: source})
	})
	if err != nil {
		return fmt.Errorf("oauth2: storing the refresh token: %w", err)
	}
	return nil
}

// command runs oauth2.token_command with the shell, as mbsync's PassCmd and
// himalaya do, and takes the first line it prints as the access token.
type command struct{ line string }

// maxOutput bounds what is read of the command's output.
const maxOutput = 64 << 10

func (c command) fetch(ctx context.Context) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.line)
	var out, errOut limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// A child left running with the pipes open must not hold us up.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, &commandError{fmt.Sprintf("did not finish within %v", commandTimeout)}
	}
	if err != nil {
		// Its standard error says why (the helper's own message); its
		// output is never shown: it may hold a token.
		msg := err.Error()
		if line := firstLine(errOut.String()); line != "" {
			msg += ": " + line
		}
		return nil, &commandError{msg}
	}
	tok := firstLine(out.String())
	if tok == "" {
		return nil, &commandError{"printed no access token"}
	}
	return &oauth2.Token{AccessToken: tok}, nil
}

// commandError is a failure of token_command.
type commandError struct{ msg string }

func (e *commandError) Error() string { return "oauth2.token_command " + e.msg }

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }

// firstLine is the first line of s, trimmed, at most 300 characters.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimLeft(s, "\r\n \t"), "\n")
	return oneLine(line, 300)
}

// oneLine keeps words from elsewhere (a provider, a helper) to one line of
// at most n characters, for the log.
func oneLine(s string, n int) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s))
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}
