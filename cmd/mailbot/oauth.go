package main

// mailbot oauth login: the bot's own OAuth2 login, stored for the daemon.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"golang.org/x/oauth2"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/control"
	"github.com/coworkingvisa/mailbot/mailbot/oauth"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// loginTimeout bounds the wait for the account owner to sign in.
const loginTimeout = 15 * time.Minute

func cmdOAuth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "login" {
		fmt.Fprint(stderr, "usage: mailbot oauth login --config FILE [--flow device|browser] [--listen 127.0.0.1:PORT]\n")
		return flag.ErrHelp
	}
	fs := newOperatorFlags("oauth login", "--config FILE [--flow device|browser] [--listen 127.0.0.1:PORT]", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML): the oauth2 section, the account (imap or smtp username) and store.path")
	flow := fs.String("flow", "", "device (a code to enter on any device; Microsoft's default) or browser (a redirect to this machine; Google's)")
	listen := fs.String("listen", "127.0.0.1:0", "with --flow browser: the loopback address the browser comes back to (a fixed port for an SSH tunnel)")
	pos, err := parseOperatorFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError(fs, "unexpected argument %q", pos[0])
	}
	if *cfgPath == "" {
		return usageError(fs, "--config FILE is required")
	}
	// The servers' passwords are not needed here, and often readable by
	// the service alone.
	cfg, err := config.LoadSkippingPasswords(*cfgPath)
	if err != nil {
		return err
	}
	switch {
	case !cfg.UsesOAuth2():
		return fmt.Errorf("%s: neither imap.auth nor smtp.auth is oauth2: set it, and the oauth2 section, first", *cfgPath)
	case cfg.OAuth2.TokenCommand != "":
		return fmt.Errorf("%s: the access tokens come from oauth2.token_command: there is no login to store", *cfgPath)
	}
	f := oauth.Flow(*flow)
	if f == "" {
		f = oauth.DefaultFlow(cfg.OAuth2)
	}
	account := cfg.OAuth2Account()
	conf := oauth.Config(cfg.OAuth2)
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()

	var tok *oauth2.Token
	switch f {
	case oauth.Device:
		tok, err = oauth.DeviceLogin(ctx, conf, stdout, account)
	case oauth.Browser:
		if conf.Endpoint.AuthURL == "" {
			return fmt.Errorf("%s: the provider has no browser login (oauth2.auth_url): use --flow device", *cfgPath)
		}
		var done, failed string
		done, failed, err = loginPages(cfg.Templates.Dir)
		if err != nil {
			return err
		}
		tok, err = oauth.BrowserLogin(ctx, conf, stdout, account, oauth.BrowserOptions{
			Listen: *listen, Offline: cfg.OAuth2.Provider == "google", Done: done, Failed: failed,
		})
	default:
		return usageError(fs, "--flow must be device or browser, got %q", *flow)
	}
	if err != nil {
		return err
	}
	how, err := storeLogin(ctx, cfg, account, tok.RefreshToken)
	if err != nil {
		return fmt.Errorf("the login succeeded but could not be stored: %w", err)
	}
	fmt.Fprintf(stdout, "\nLogged in as %s (client %s). %s\n", account, cfg.OAuth2.ClientID, how)
	return nil
}

// storeLogin hands the refresh token to the running daemon, or writes it to
// the store when none runs; it says which.
func storeLogin(ctx context.Context, cfg *config.Config, account, refreshToken string) (string, error) {
	path := cfg.Store.Path
	c, err := control.Dial(path)
	if err == nil {
		defer c.Close()
		if err := c.OAuthLogin(ctx, refreshToken); err != nil {
			return "", err
		}
		return "The running daemon stored the login and logs in with it now.", nil
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return "", err
	}
	db, err := storage.Open(path)
	if errors.Is(err, storage.ErrLocked) {
		return "", fmt.Errorf("the store %s is in use by another process, but no daemon answers on %s: try again in a moment", path, control.SocketPath(path))
	}
	if err != nil {
		return "", err
	}
	defer db.Close()
	if err := oauth.Store(db, cfg.OAuth2, account, refreshToken, time.Now()); err != nil {
		return "", err
	}
	return fmt.Sprintf("The login is stored in %s; the daemon logs in with it when it starts.", path), nil
}

// loginPages are the texts the browser shows at the end of a browser login.
func loginPages(dir string) (done, failed string, err error) {
	tmpl, err := templates.New(dir)
	if err != nil {
		return "", "", err
	}
	if done, err = tmpl.Phrase("oauth-login.done", nil); err != nil {
		return "", "", err
	}
	failed, err = tmpl.Phrase("oauth-login.failed", nil)
	return done, failed, err
}
