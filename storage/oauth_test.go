package storage

import (
	"testing"
	"time"
)

func TestOAuthToken(t *testing.T) {
	db, path := openTemp(t)
	key := OAuthKey("client-1", "Visa@Example.ORG")
	if key != OAuthKey("client-1", "visa@example.org") {
		t.Error("the account's case changes the key")
	}
	if key == OAuthKey("client-2", "visa@example.org") {
		t.Error("two clients share a key")
	}
	err := db.View(func(tx *Tx) error {
		_, ok, err := tx.OAuthToken(key)
		if ok || err != nil {
			t.Errorf("OAuthToken of an empty store = %v, %v; want none", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, tok := range []OAuthToken{
		{RefreshToken: "first", Updated: at, Source: "login"},
		{RefreshToken: "second", Updated: at.Add(time.Hour), Source: "rotated"},
	} {
		if err := db.Update(func(tx *Tx) error { return tx.PutOAuthToken(key, tok) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutOAuthToken(key, OAuthToken{}) }); err == nil {
		t.Error("an empty refresh token was stored")
	}
	// Across a reopen, the last one stored.
	db.Close()
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		got, ok, err := tx.OAuthToken(key)
		if err != nil || !ok || got.RefreshToken != "second" || got.Source != "rotated" || !got.Updated.Equal(at.Add(time.Hour)) {
			t.Errorf("OAuthToken = %+v, %v, %v; want the rotated one", got, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
