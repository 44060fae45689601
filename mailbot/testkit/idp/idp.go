// Package idp is test equipment: an OAuth2 provider on loopback, for the
// tests of the bot's own OAuth2 login. It has what the bot and a mail
// server meet at Google or Microsoft:
//
//   - a token endpoint (RFC 6749 section 3.2) for the refresh token grant,
//     the authorization code grant with PKCE (RFC 7636) and the device grant
//     (RFC 8628), which issues access tokens that expire, rotates refresh
//     tokens if asked (as Microsoft does: the old one stops working), and
//     answers revoked ones with invalid_grant;
//   - an authorization endpoint that signs in the account set with SignIn
//     and sends the browser back to the client's loopback address at once;
//   - a device authorization endpoint, whose codes Approve signs in;
//   - an introspection endpoint (RFC 7662) for Dovecot's oauth2 passdb
//     (introspection_mode = post): {"active":true,"email":ACCOUNT} for a
//     valid access token, {"active":false} otherwise.
//
// Everything is in memory and every request is recorded for the tests'
// assertions.
package idp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Options configure a Provider.
type Options struct {
	// Lifetime of access tokens: 1h (as Google and Microsoft) if zero.
	Lifetime time.Duration
	// Rotate issues a new refresh token with every refresh and revokes the
	// one used, as Microsoft does.
	Rotate bool
	// ClientID is required of every token request when set.
	ClientID string
}

// Grant is one request to the token endpoint.
type Grant struct {
	Type    string // "refresh_token", "authorization_code", "device_code"
	Refresh string // the refresh token presented (refresh_token grants)
	Error   string // the error answered, "" when tokens were issued
	// Issued is the access token issued, when one was.
	Issued string
}

// Provider is a running test provider. Its methods are safe for concurrent
// use.
type Provider struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string

	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	account  string                // who signs in at /authorize and by Approve
	access   map[string]*accessTok // access token -> its record
	refresh  map[string]*refreshTok
	codes    map[string]*authCode // authorization codes
	devices  map[string]*device   // device codes
	grants   []Grant
	failNext *failure
	intro    []string // the access tokens introspected, in order
}

type accessTok struct {
	account string
	expires time.Time
	revoked bool
}

type refreshTok struct {
	account string
	revoked bool
}

type authCode struct {
	account, challenge, redirect string
}

type device struct {
	userCode string
	account  string // set when approved
}

type failure struct {
	code, description string
	status            int
}

// Start starts a provider for one test; it stops when the test ends.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	p := New(opts)
	t.Cleanup(p.Close)
	return p
}

// New starts a provider; Close stops it.
func New(opts Options) *Provider {
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	p := &Provider{opts: opts, access: map[string]*accessTok{}, refresh: map[string]*refreshTok{},
		codes: map[string]*authCode{}, devices: map[string]*device{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /device", p.deviceAuth)
	mux.HandleFunc("POST /introspect", p.introspect)
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	return p
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// Endpoints.
func (p *Provider) TokenURL() string         { return p.URL + "/token" }
func (p *Provider) AuthURL() string          { return p.URL + "/authorize" }
func (p *Provider) DeviceAuthURL() string    { return p.URL + "/device" }
func (p *Provider) IntrospectionURL() string { return p.URL + "/introspect" }

// SignIn sets the account that signs in at the authorization endpoint and
// by Approve.
func (p *Provider) SignIn(account string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.account = account
}

// Issue returns a refresh token for account, as a login would leave.
func (p *Provider) Issue(account string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	rt := "rt-" + random()
	p.refresh[rt] = &refreshTok{account: account}
	return rt
}

// IssueAccess returns an access token for account valid for d, as the
// provider would issue it.
func (p *Provider) IssueAccess(account string, d time.Duration) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := "at-" + random()
	p.access[at] = &accessTok{account: account, expires: time.Now().Add(d)}
	return at
}

// Revoke revokes every refresh and access token of account, as an admin
// who signs the app out does.
func (p *Provider) Revoke(account string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.refresh {
		if r.account == account {
			r.revoked = true
		}
	}
	for _, a := range p.access {
		if a.account == account {
			a.revoked = true
		}
	}
}

// FailNext makes the next token request fail with an OAuth2 error (RFC
// 6749 section 5.2), code and description, and the HTTP status (400 if 0).
func (p *Provider) FailNext(code, description string, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if status == 0 {
		status = http.StatusBadRequest
	}
	p.failNext = &failure{code, description, status}
}

// Approve signs in the SignIn account for the device login whose user code
// is userCode; it reports whether there is such a login.
func (p *Provider) Approve(userCode string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.devices {
		if d.userCode == userCode {
			d.account = p.account
			return true
		}
	}
	return false
}

// Grants returns the token requests so far.
func (p *Provider) Grants() []Grant {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Grant(nil), p.grants...)
}

// Valid reports whether an access token would be accepted now.
func (p *Provider) Valid(accessToken string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.validLocked(accessToken) != ""
}

// Expired reports whether an access token it issued has expired.
func (p *Provider) Expired(accessToken string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.access[accessToken]
	return a != nil && !time.Now().Before(a.expires)
}

// Introspected returns the access tokens the introspection endpoint was
// asked about, in order.
func (p *Provider) Introspected() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.intro...)
}

// RefreshValid reports whether a refresh token would be accepted now.
func (p *Provider) RefreshValid(refreshToken string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.refresh[refreshToken]
	return r != nil && !r.revoked
}

func (p *Provider) validLocked(accessToken string) (account string) {
	a := p.access[accessToken]
	if a == nil || a.revoked || !time.Now().Before(a.expires) {
		return ""
	}
	return a.account
}

// token is the token endpoint.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := Grant{Type: r.PostForm.Get("grant_type")}
	if g.Type == "urn:ietf:params:oauth:grant-type:device_code" {
		g.Type = "device_code"
	}
	g.Refresh = r.PostForm.Get("refresh_token")
	fail := func(status int, code, desc string) {
		g.Error = code
		p.grants = append(p.grants, g)
		oauthError(w, status, code, desc)
	}
	clientID := r.PostForm.Get("client_id")
	if u, _, ok := r.BasicAuth(); ok {
		clientID, _ = url.QueryUnescape(u)
	}
	if p.opts.ClientID != "" && clientID != p.opts.ClientID {
		fail(http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	if f := p.failNext; f != nil {
		p.failNext = nil
		fail(f.status, f.code, f.description)
		return
	}
	var account string
	switch g.Type {
	case "refresh_token":
		rt := p.refresh[g.Refresh]
		if rt == nil || rt.revoked {
			fail(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, expired or revoked")
			return
		}
		account = rt.account
		if p.opts.Rotate {
			rt.revoked = true
		}
	case "authorization_code":
		c := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case c == nil:
			fail(http.StatusBadRequest, "invalid_grant", "unknown code")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			fail(http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		case r.PostForm.Get("redirect_uri") != c.redirect:
			fail(http.StatusBadRequest, "invalid_grant", "redirect_uri differs")
			return
		}
		account = c.account
	case "device_code":
		d := p.devices[r.PostForm.Get("device_code")]
		switch {
		case d == nil:
			fail(http.StatusBadRequest, "expired_token", "unknown device code")
			return
		case d.account == "":
			fail(http.StatusBadRequest, "authorization_pending", "waiting for the user")
			return
		}
		account = d.account
		delete(p.devices, r.PostForm.Get("device_code"))
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", g.Type)
		return
	}
	at := "at-" + random()
	p.access[at] = &accessTok{account: account, expires: time.Now().Add(p.opts.Lifetime)}
	body := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(p.opts.Lifetime.Seconds())}
	if g.Type != "refresh_token" || p.opts.Rotate {
		rt := "rt-" + random()
		p.refresh[rt] = &refreshTok{account: account}
		body["refresh_token"] = rt
	}
	g.Issued = at
	p.grants = append(p.grants, g)
	writeJSON(w, http.StatusOK, body)
}

// authorize signs in the SignIn account at once and sends the browser back.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request (PKCE with S256 is required)", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	account := p.account
	back := url.Values{"state": {q.Get("state")}}
	if account == "" {
		back.Set("error", "access_denied")
		back.Set("error_description", "the user declined")
	} else {
		code := "code-" + random()
		p.codes[code] = &authCode{account: account, challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		back.Set("code", code)
	}
	p.mu.Unlock()
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// deviceAuth starts a device login.
func (p *Provider) deviceAuth(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dc := "dc-" + random()
	uc := "UC-" + random()[:8]
	p.devices[dc] = &device{userCode: uc}
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": dc, "user_code": uc, "verification_uri": p.URL + "/device/verify",
		"expires_in": 600, "interval": 1,
	})
}

// introspect answers Dovecot (RFC 7662, token in a form).
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	p.mu.Lock()
	p.intro = append(p.intro, tok)
	account := p.validLocked(tok)
	p.mu.Unlock()
	if account == "" {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "email": account})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func random() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
