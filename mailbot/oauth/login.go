package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/storage"
)

// Flow is how `mailbot oauth login` gets the account owner's consent.
type Flow string

const (
	// Device is the device authorization grant (RFC 8628): a URL to open
	// on any device and a code to enter there; nothing listens here.
	Device Flow = "device"
	// Browser is the authorization code grant with PKCE (RFC 7636) and a
	// redirect to a loopback address (RFC 8252 section 7.3): the browser
	// must run on this machine, or reach it through a tunnel.
	Browser Flow = "browser"
)

// DefaultFlow is Microsoft's device login, Google's browser login (Google
// refuses the mail scope to its device login), and for a custom provider
// the device login where it has one.
func DefaultFlow(o config.OAuth2) Flow {
	switch {
	case o.Provider == "microsoft":
		return Device
	case o.Provider == "custom" && o.DeviceAuthURL != "":
		return Device
	}
	return Browser
}

// DeviceLogin runs the device login: it writes to out where to go and which
// code to enter, then waits (polling the token endpoint) until the account
// owner signed in there, refused, or the code expired.
func DeviceLogin(ctx context.Context, conf *oauth2.Config, out io.Writer, account string) (*oauth2.Token, error) {
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("oauth2: this provider has no device login: use --flow browser")
	}
	ctx = withHTTPClient(ctx)
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("oauth2: starting the device login: %w", explainFetch(err))
	}
	fmt.Fprintf(out, "To let the bot read and send the mail of %s:\n\n", account)
	fmt.Fprintf(out, "  1. Open %s in a browser, on any device.\n", da.VerificationURI)
	fmt.Fprintf(out, "  2. Enter the code %s\n", da.UserCode)
	fmt.Fprintf(out, "  3. Sign in as %s and accept.\n\n", account)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(out, "(Or open %s, which holds the code.)\n", da.VerificationURIComplete)
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(out, "Waiting for the sign-in (the code works until %s)…\n", da.Expiry.Local().Format("15:04:05"))
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "expired_token" {
			return nil, errors.New("oauth2: the code expired before anyone signed in: run the login again")
		}
		return nil, fmt.Errorf("oauth2: device login: %w", explainFetch(err))
	}
	return tok, withRefreshToken(tok)
}

// BrowserOptions configure BrowserLogin.
type BrowserOptions struct {
	// Listen is the loopback address the browser is sent back to;
	// "127.0.0.1:0" (any free port) by default. A fixed port helps when
	// the browser runs on another machine: ssh -L PORT:127.0.0.1:PORT.
	Listen string
	// Offline asks Google for a refresh token (access_type=offline) and for
	// a new one even after an earlier consent (prompt=consent).
	Offline bool
	// Done and Failed are the texts the browser shows at the end.
	Done, Failed string
}

// BrowserLogin runs the browser login: it writes to out the URL to open,
// waits for the provider to send the browser back to a loopback address
// with a code, and exchanges the code (with its PKCE verifier) for tokens.
func BrowserLogin(ctx context.Context, conf *oauth2.Config, out io.Writer, account string, opts BrowserOptions) (*oauth2.Token, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("oauth2: --listen %q: must be a loopback address such as 127.0.0.1:8400", opts.Listen)
	}
	l, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("oauth2: listening for the browser: %w", err)
	}
	defer l.Close()
	c := *conf
	c.RedirectURL = "http://" + l.Addr().String() + "/"
	verifier := oauth2.GenerateVerifier()
	state := randomState()
	authOpts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("login_hint", account)}
	if opts.Offline {
		authOpts = append(authOpts, oauth2.AccessTypeOffline, oauth2.ApprovalForce)
	}
	authURL := c.AuthCodeURL(state, authOpts...)

	type result struct {
		code string
		err  error
	}
	results := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/" || q.Get("state") != state {
			http.NotFound(w, r) // a favicon, or a stray request
			return
		}
		var res result
		switch {
		case q.Get("error") != "":
			res.err = explainRetrieve(&oauth2.RetrieveError{ErrorCode: q.Get("error"), ErrorDescription: q.Get("error_description")})
		case q.Get("code") == "":
			res.err = errors.New("the provider sent the browser back without a code")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if res.err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, opts.Failed+"\n")
		} else {
			io.WriteString(w, opts.Done+"\n")
		}
		select {
		case results <- res:
		default:
		}
	})}
	go srv.Serve(l)
	// Shut down gracefully: the browser's page must reach it before the
	// listener goes (Close would cut the answer in hand).
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()

	fmt.Fprintf(out, "To let the bot read and send the mail of %s, open this URL in a browser and sign in as %s:\n\n%s\n\n",
		account, account, authURL)
	fmt.Fprintf(out, "The browser is sent back to %s: run the browser on this machine, or tunnel the port first\n"+
		"(ssh -L %d:%s ...; use --listen to choose the port). Waiting…\n", c.RedirectURL, portOf(l.Addr()), l.Addr())
	var res result
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth2: browser login: %w", ctx.Err())
	case res = <-results:
	}
	if res.err != nil {
		return nil, fmt.Errorf("oauth2: browser login: %w", res.err)
	}
	tok, err := c.Exchange(withHTTPClient(ctx), res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("oauth2: exchanging the code: %w", explainFetch(err))
	}
	return tok, withRefreshToken(tok)
}

// withRefreshToken checks that a login brought what the bot keeps.
func withRefreshToken(tok *oauth2.Token) error {
	if tok.RefreshToken == "" {
		return errors.New("oauth2: the provider issued no refresh token: Microsoft issues one only with the scope offline_access " +
			"(in oauth2.scopes); Google only to an app that asks for offline access (mailbot does)")
	}
	return nil
}

// Store writes a login's refresh token to the store for the client of o and
// the account, replacing the one there: for `mailbot oauth login` while no
// daemon runs (a running daemon stores it itself, see TokenSource.Login).
func Store(db *storage.DB, o config.OAuth2, account, refreshToken string, now time.Time) error {
	err := db.Update(func(tx *storage.Tx) error {
		return tx.PutOAuthToken(storage.OAuthKey(o.ClientID, account),
			storage.OAuthToken{RefreshToken: refreshToken, Updated: now.UTC(), Source: "login"})
	})
	if err != nil {
		return fmt.Errorf("oauth2: storing the refresh token: %w", err)
	}
	return nil
}

// randomState is the state parameter that ties the redirect to this login
// (RFC 6749 section 10.12).
func randomState() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func portOf(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}
