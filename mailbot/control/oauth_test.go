package control

import (
	"context"
	"errors"
	"testing"
)

// TestOAuthLogin: the refresh token of a login reaches the daemon's hook;
// a daemon without OAuth2 says so.
func TestOAuthLogin(t *testing.T) {
	db, store := openStore(t, tempDir(t))
	l, err := Listen(store)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, NewHandler(db, Hooks{OAuthLogin: func(rt string) error {
			got <- rt
			if rt == "rt-bad" {
				return errors.New("storing failed")
			}
			return nil
		}}))
	}()
	defer func() { cancel(); <-done }()
	c, err := Dial(store)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.OAuthLogin(context.Background(), "rt-new"); err != nil {
		t.Fatalf("OAuthLogin: %v", err)
	}
	if rt := <-got; rt != "rt-new" {
		t.Errorf("the hook got %q", rt)
	}
	if err := c.OAuthLogin(context.Background(), "rt-bad"); err == nil {
		t.Error("a failing hook was reported as success")
	}
	<-got

	// A daemon without OAuth2.
	_, store2 := openStore(t, tempDir(t))
	c2 := serve(t, db, store2)
	if err := c2.OAuthLogin(context.Background(), "rt-new"); !errors.Is(err, ErrInvalid) {
		t.Errorf("OAuthLogin to a daemon without OAuth2 = %v, want ErrInvalid", err)
	}
}
