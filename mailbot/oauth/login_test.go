package oauth

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/idp"
)

// watchOutput runs login with a pipe as its output and returns the first
// match of re in what it writes, then lets it finish.
func watchOutput(t *testing.T, re *regexp.Regexp, login func(out io.Writer) (*oauth2.Token, error)) (match []string, wait func() (*oauth2.Token, error)) {
	t.Helper()
	pr, pw := io.Pipe()
	type result struct {
		tok *oauth2.Token
		err error
	}
	results := make(chan result, 1)
	go func() {
		tok, err := login(pw)
		pw.CloseWithError(io.EOF)
		results <- result{tok, err}
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			match = m
			break
		}
	}
	go io.Copy(io.Discard, pr)
	return match, func() (*oauth2.Token, error) {
		r := <-results
		return r.tok, r.err
	}
}

func TestDeviceLogin(t *testing.T) {
	p := idp.Start(t, idp.Options{ClientID: "mailbot-test"})
	p.SignIn(account)
	conf := Config(testConfig(p).OAuth2)
	m, wait := watchOutput(t, regexp.MustCompile(`Enter the code (\S+)`), func(out io.Writer) (*oauth2.Token, error) {
		return DeviceLogin(t.Context(), conf, out, account)
	})
	if m == nil {
		_, err := wait()
		t.Fatalf("no code printed; DeviceLogin: %v", err)
	}
	if !p.Approve(m[1]) {
		t.Fatalf("the provider knows no code %q", m[1])
	}
	tok, err := wait()
	if err != nil {
		t.Fatalf("DeviceLogin: %v", err)
	}
	if !p.RefreshValid(tok.RefreshToken) || !p.Valid(tok.AccessToken) {
		t.Error("the login's tokens are not the provider's")
	}
}

func TestDeviceLoginWithoutDeviceEndpoint(t *testing.T) {
	o := config.Default().OAuth2
	o.Provider, o.ClientID, o.ClientSecret = "google", "x", "y"
	_, err := DeviceLogin(t.Context(), Config(o), io.Discard, account)
	if err == nil || !strings.Contains(err.Error(), "--flow browser") {
		t.Errorf("DeviceLogin with Google = %v, want a pointer to the browser login", err)
	}
}

// TestBrowserLogin: the URL printed leads, through the provider, back to
// the loopback listener, and the code is exchanged with the PKCE verifier
// (the test provider checks it).
func TestBrowserLogin(t *testing.T) {
	p := idp.Start(t, idp.Options{})
	p.SignIn(account)
	conf := Config(testConfig(p).OAuth2)
	m, wait := watchOutput(t, regexp.MustCompile(`^(http://127\.0\.0\.1:\d+/authorize\?\S+)$`), func(out io.Writer) (*oauth2.Token, error) {
		return BrowserLogin(t.Context(), conf, out, account, BrowserOptions{Done: "all done", Failed: "it failed"})
	})
	if m == nil {
		_, err := wait()
		t.Fatalf("no URL printed; BrowserLogin: %v", err)
	}
	if !strings.Contains(m[1], "code_challenge_method=S256") || !strings.Contains(m[1], "login_hint=visa%40example.org") {
		t.Errorf("the URL %s lacks PKCE or the login hint", m[1])
	}
	page := browse(t, m[1])
	tok, err := wait()
	if err != nil {
		t.Fatalf("BrowserLogin: %v", err)
	}
	if page != "all done\n" {
		t.Errorf("the browser shows %q", page)
	}
	if !p.RefreshValid(tok.RefreshToken) {
		t.Error("the refresh token is not the provider's")
	}
}

// TestBrowserLoginDeclined: a user who declines gets a clear error.
func TestBrowserLoginDeclined(t *testing.T) {
	p := idp.Start(t, idp.Options{}) // nobody signs in: the provider answers access_denied
	conf := Config(testConfig(p).OAuth2)
	m, wait := watchOutput(t, regexp.MustCompile(`^(http://\S+/authorize\?\S+)$`), func(out io.Writer) (*oauth2.Token, error) {
		return BrowserLogin(t.Context(), conf, out, account, BrowserOptions{Listen: "127.0.0.1:0", Done: "all done", Failed: "it failed"})
	})
	if m == nil {
		t.Fatal("no URL printed")
	}
	if page := browse(t, m[1]); page != "it failed\n" {
		t.Errorf("the browser shows %q", page)
	}
	_, err := wait()
	var e *Error
	if !errors.As(err, &e) || e.Kind != NoConsent {
		t.Errorf("BrowserLogin = %v, want a NoConsent error", err)
	}
}

func TestBrowserLoginListensOnLoopbackOnly(t *testing.T) {
	p := idp.Start(t, idp.Options{})
	_, err := BrowserLogin(t.Context(), Config(testConfig(p).OAuth2), io.Discard, account, BrowserOptions{Listen: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("BrowserLogin on 0.0.0.0 = %v", err)
	}
}

// browse follows the URL as a browser would and returns the last page.
func browse(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestDefaultFlow(t *testing.T) {
	for _, tt := range []struct {
		o    config.OAuth2
		want Flow
	}{
		{config.OAuth2{Provider: "microsoft"}, Device},
		{config.OAuth2{Provider: "google"}, Browser},
		{config.OAuth2{Provider: "custom", DeviceAuthURL: "https://x/device", AuthURL: "https://x/a"}, Device},
		{config.OAuth2{Provider: "custom", AuthURL: "https://x/a"}, Browser},
	} {
		if got := DefaultFlow(tt.o); got != tt.want {
			t.Errorf("DefaultFlow(%s) = %s, want %s", tt.o.Provider, got, tt.want)
		}
	}
}
