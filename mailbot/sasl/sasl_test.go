package sasl

import (
	"errors"
	"strings"
	"testing"

	gosasl "github.com/emersion/go-sasl"
)

func TestXOAuth2InitialResponse(t *testing.T) {
	c, err := New(XOAuth2, "visa@example.org", "ya29.token")
	if err != nil {
		t.Fatal(err)
	}
	mech, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	// The example of Google's XOAUTH2 description, before base64.
	want := "user=visa@example.org\x01auth=Bearer ya29.token\x01\x01"
	if mech != "XOAUTH2" || string(ir) != want {
		t.Errorf("Start() = %q, %q; want XOAUTH2, %q", mech, ir, want)
	}
}

// TestOAuthBearerAgainstGoSASLServer runs the client against go-sasl's
// server side of RFC 7628, which parses the GS2 header and the key-value
// pairs: a good token logs in, a refused one comes back as a RefusedError
// carrying the server's status and scope.
func TestOAuthBearerAgainstGoSASLServer(t *testing.T) {
	for _, tt := range []struct {
		name, user, token string
		refuse            *gosasl.OAuthBearerError
	}{
		{name: "accepted", user: "visa@example.org", token: "good"},
		{name: "user with comma and equals sign", user: "a=b,c@example.org", token: "good"},
		{name: "refused", user: "visa@example.org", token: "bad",
			refuse: &gosasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: "https://mail.google.com/"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got gosasl.OAuthBearerOptions
			srv := gosasl.NewOAuthBearerServer(func(o gosasl.OAuthBearerOptions) *gosasl.OAuthBearerError {
				got = o
				return tt.refuse
			})
			c, err := New(OAuthBearer, tt.user, tt.token)
			if err != nil {
				t.Fatal(err)
			}
			mech, ir, err := c.Start()
			if err != nil || mech != "OAUTHBEARER" {
				t.Fatalf("Start() = %q, _, %v", mech, err)
			}
			challenge, done, err := srv.Next(ir)
			if err != nil {
				t.Fatalf("server: %v", err)
			}
			if got.Token != tt.token {
				t.Errorf("server read token %q, want %q", got.Token, tt.token)
			}
			// The authzid is escaped (RFC 5801): go-sasl hands it on as written.
			wantUser := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(tt.user)
			if got.Username != wantUser {
				t.Errorf("server read user %q, want %q", got.Username, wantUser)
			}
			if tt.refuse == nil {
				if !done {
					t.Fatalf("server not done after a good token; challenge %q", challenge)
				}
				return
			}
			if done {
				t.Fatal("server done after refusing")
			}
			_, err = c.Next(challenge)
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Next = %v, want a RefusedError", err)
			}
			if re.Mechanism != "OAUTHBEARER" || re.Status != "invalid_token" || re.Scope != "https://mail.google.com/" {
				t.Errorf("RefusedError = %+v", re)
			}
			if msg := err.Error(); !strings.Contains(msg, "invalid_token") || !strings.Contains(msg, "https://mail.google.com/") {
				t.Errorf("message %q does not say the status and the scope", msg)
			}
		})
	}
}

// TestRefusals reads the error challenges servers send: Google's XOAUTH2
// (status as a string), Dovecot's, one with a number, and one that is not
// JSON at all.
func TestRefusals(t *testing.T) {
	for _, tt := range []struct {
		challenge     string
		status, scope string
	}{
		{`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`, "400", "https://mail.google.com/"},
		{`{"status":"invalid_token","schemes":"bearer","scope":"mail"}`, "invalid_token", "mail"},
		{`{"status":401,"schemes":"bearer"}`, "401", ""},
		{"not json", "", ""},
		{"{\"status\":\"bad\\r\\nInjected: yes\"}", "badInjected: yes", ""},
	} {
		c, err := New(XOAuth2, "visa@example.org", "t")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Next([]byte(tt.challenge))
		var re *RefusedError
		if !errors.As(err, &re) {
			t.Fatalf("%s: Next = %v, want a RefusedError", tt.challenge, err)
		}
		if re.Status != tt.status || re.Scope != tt.scope || re.Mechanism != "XOAUTH2" {
			t.Errorf("%s: got %+v, want status %q scope %q", tt.challenge, re, tt.status, tt.scope)
		}
	}
}

func TestChoose(t *testing.T) {
	for _, tt := range []struct {
		offered []string
		want    string
	}{
		{[]string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}, "OAUTHBEARER"},
		{[]string{"PLAIN", "LOGIN", "XOAUTH2"}, "XOAUTH2"}, // Microsoft 365
		{[]string{"plain", "xoauth2"}, "XOAUTH2"},
		{[]string{"PLAIN", "LOGIN"}, ""},
		{nil, ""},
	} {
		c, err := Choose(tt.offered, "visa@example.org", "token")
		if tt.want == "" {
			if !errors.Is(err, ErrNoMechanism) {
				t.Errorf("Choose(%q) = %v, want ErrNoMechanism", tt.offered, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Choose(%q): %v", tt.offered, err)
		}
		if mech, _, _ := c.Start(); mech != tt.want {
			t.Errorf("Choose(%q) chose %s, want %s", tt.offered, mech, tt.want)
		}
	}
}

// TestBadInput: a user name or token that would break the fields or the
// command line is refused before anything is sent, and the token is never
// quoted in the error.
func TestBadInput(t *testing.T) {
	for _, tt := range []struct{ user, token string }{
		{"", "token"},
		{"visa@example.org\x01auth=Bearer x", "token"},
		{"visa@example.org", ""},
		{"visa@example.org", "secret\r\nA1 LOGOUT"},
		{"visa@example.org", "secret token"},
	} {
		for _, mech := range []string{XOAuth2, OAuthBearer} {
			_, err := New(mech, tt.user, tt.token)
			if err == nil {
				t.Errorf("New(%s, %q, %q) accepted it", mech, tt.user, tt.token)
				continue
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("the error quotes the token: %v", err)
			}
		}
	}
	if _, err := New("PLAIN", "visa@example.org", "token"); err == nil {
		t.Error("New accepted an unknown mechanism")
	}
}
