package storage

import (
	"fmt"
	"strings"
	"time"
)

// OAuthToken is what the bot keeps of its own OAuth2 login (config key
// auth: oauth2): the refresh token that gets it new access tokens. Access
// tokens are not kept: they last about an hour and one refresh after a
// restart gets a new one. Anyone who can read the store, or a backup of it,
// can read the mailbox with this token: keep both as private as the
// configuration's secrets.
type OAuthToken struct {
	RefreshToken string `json:"refresh_token"`
	// Updated is when it was stored, by a login or because the provider
	// rotated it (Microsoft sends a new refresh token with each access
	// token; the old one stops working).
	Updated time.Time `json:"updated"`
	// Source says which: "login" or "rotated".
	Source string `json:"source"`
}

// OAuthKey names the refresh token of one OAuth2 client (its client id) for
// one account (the login name, in any case): a token belongs to both, so a
// config naming another client or account finds none and asks for a login.
func OAuthKey(clientID, account string) string {
	return string(pairKey(clientID, strings.ToLower(account)))
}

// OAuthToken returns the refresh token stored under key, and whether there
// is one.
func (t *Tx) OAuthToken(key string) (OAuthToken, bool, error) {
	var tok OAuthToken
	ok, err := t.get(bucketOAuth, []byte(key), &tok)
	return tok, ok, err
}

// PutOAuthToken stores a refresh token under key, replacing the one there.
func (t *Tx) PutOAuthToken(key string, tok OAuthToken) error {
	if tok.RefreshToken == "" {
		return fmt.Errorf("oauth2 token for %q: no refresh token", key)
	}
	return t.put(bucketOAuth, []byte(key), tok)
}
