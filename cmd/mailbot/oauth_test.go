package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/idp"
	"github.com/coworkingvisa/mailbot/storage"
)

// oauthConfigFile writes a config whose IMAP logs in with OAuth2 through
// the test provider p (custom, browser login only); change adjusts it.
func oauthConfigFile(t *testing.T, p *idp.Provider, change func(*config.Config)) (path, store string) {
	t.Helper()
	dir := t.TempDir()
	store = filepath.Join(dir, "visa.db")
	c, err := botconfig.New(botconfig.Stack{Bot: "visa@example.org", Admin: "admin@example.org",
		IMAPAddr: "127.0.0.1:143", SMTPAddr: "127.0.0.1:25", Store: store, AuthservID: "mx.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	c.IMAP.Auth, c.IMAP.PasswordEnv = "oauth2", ""
	c.OAuth2.Provider, c.OAuth2.ClientID, c.OAuth2.TokenURL, c.OAuth2.AuthURL = "custom", "mailbot-test", p.TokenURL(), p.AuthURL()
	if change != nil {
		change(c)
	}
	text, err := botconfig.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, store
}

// TestOAuthLoginBrowserStoresToken: the browser login, with no daemon
// running, leaves the provider's refresh token in the store and says so.
func TestOAuthLoginBrowserStoresToken(t *testing.T) {
	p := idp.Start(t, idp.Options{ClientID: "mailbot-test"})
	p.SignIn("visa@example.org")
	cfg, store := oauthConfigFile(t, p, nil)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var out strings.Builder
	go func() {
		err := cmdOAuth(context.Background(), []string{"login", "--config", cfg}, io.MultiWriter(pw, &out), io.Discard)
		pw.Close()
		done <- err
	}()
	url := regexp.MustCompile(`^http://127\.0\.0\.1:\d+/authorize\?\S+$`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u := sc.Text(); url.MatchString(u) {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(page), "The bot has its login") {
				t.Errorf("the browser shows %q", page)
			}
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("oauth login: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "The login is stored in "+store) {
		t.Errorf("the output does not say where the login went:\n%s", out.String())
	}
	db, err := storage.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *storage.Tx) error {
		tok, ok, err := tx.OAuthToken(storage.OAuthKey("mailbot-test", "visa@example.org"))
		if err != nil || !ok || tok.Source != "login" || !p.RefreshValid(tok.RefreshToken) {
			t.Errorf("stored %+v, %v, %v; want the provider's refresh token", tok, ok, err)
		}
		if strings.Contains(out.String(), tok.RefreshToken) {
			t.Error("the output shows the refresh token")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOAuthLoginMistakes(t *testing.T) {
	p := idp.Start(t, idp.Options{})
	noOAuth, _ := oauthConfigFile(t, p, func(c *config.Config) {
		c.IMAP.Auth, c.IMAP.PasswordEnv = "password", botconfig.PasswordEnv
	})
	command, _ := oauthConfigFile(t, p, func(c *config.Config) {
		c.OAuth2 = config.Default().OAuth2
		c.OAuth2.TokenCommand = "echo token"
	})
	deviceOnly, _ := oauthConfigFile(t, p, nil)
	for _, tt := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"oauth"}, 2, "usage: mailbot oauth login"},
		{[]string{"oauth", "login"}, 2, "--config FILE is required"},
		{[]string{"oauth", "login", "--config", noOAuth}, 1, "neither imap.auth nor smtp.auth is oauth2"},
		{[]string{"oauth", "login", "--config", command}, 1, "oauth2.token_command"},
		{[]string{"oauth", "login", "--config", deviceOnly, "--flow", "device"}, 1, "no device login"},
		{[]string{"oauth", "login", "--config", deviceOnly, "--flow", "carrier-pigeon"}, 2, "--flow must be device or browser"},
		{[]string{"oauth", "login", "--config", deviceOnly, "--listen", "0.0.0.0:8400"}, 1, "must be a loopback address"},
	} {
		t.Setenv(botconfig.PasswordEnv, "pw")
		code, _, errOut := runCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.says) {
			t.Errorf("%q: exit %d, %q; want %d and %q", tt.args, code, errOut, tt.code, tt.says)
		}
	}
}
