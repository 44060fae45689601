package itest

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/browser"
)

func init() { worlds = append(worlds, "directory") }

// TestDirectoryFollowsTheStore runs the real binary with http.listen on a
// free loopback port and reads its public directory in a real headless
// Chromium: the spaces an admin added by email are listed, and a space the
// admin removes by email is gone from the next load of the page.
func TestDirectoryFollowsTheStore(t *testing.T) {
	w := newWorld("directory")
	store := filepath.Join(t.TempDir(), "visa.db")
	listen := deadAddr(t) // free now; the bot listens there
	startBotWith(t, w, store, stack.SMTPAddr, func(c *config.Config) {
		// The listener is what this test is about (off by default).
		c.HTTP.Listen = listen
	})
	base := "http://" + listen
	tab := browser.Start(t).NewTab(t, browser.DesktopWidth, browser.DesktopHeight)

	tab.Navigate(base+"/", http.StatusOK)
	if got := tab.Texts(".spaces h4"); len(got) != 0 {
		t.Fatalf("a new network lists %q", got)
	}
	setup(t, w) // indyhall (Philadelphia, US) and betahaus (Berlin, DE), a manager each, no members
	tab.Navigate(base+"/", http.StatusOK)
	if got, want := tab.Texts(".spaces h4"), []string{"betahaus", "Indy Hall"}; !slices.Equal(got, want) {
		t.Fatalf("after the admin's setup the page lists %q, want %q", got, want)
	}
	tab.Navigate(base+"/spaces/betahaus", http.StatusOK)
	if got, want := browser.Eval[string](tab, `document.querySelector('a.button').href`),
		"mailto:"+w.bot+"?subject=visit&body=visit%20betahaus%20YYYY-MM-DD"; got != want {
		t.Errorf("the visit link is %s, want %s", got, want)
	}
	if got := tab.Texts(".terms-text"); !slices.Equal(got, []string{"weekdays, bring ID"}) {
		t.Errorf("betahaus's terms: %q", got)
	}

	send(t, w.admin, w.bot, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "betahaus leaves"}, "remove space betahaus\n"))
	replies := waitMail(t, w.admin, "INBOX", 2)
	mustContain(t, replies[len(replies)-1], "OK: removed space betahaus and its 1 manager.")

	// The reply went out after the removal was committed: the next load
	// shows it, with no wait.
	tab.Navigate(base+"/", http.StatusOK)
	if got, want := tab.Texts(".spaces h4"), []string{"Indy Hall"}; !slices.Equal(got, want) {
		t.Errorf("after remove space the page lists %q, want %q", got, want)
	}
	tab.Navigate(base+"/spaces/betahaus", http.StatusNotFound)
	resp, err := http.Get(base + "/spaces.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Errorf("/spaces.json: %d %v", resp.StatusCode, resp.Header)
	}

	if off := tab.Offsite(); len(off) > 0 {
		t.Errorf("requests left this machine: %q", off)
	}
	for _, p := range tab.Problems() {
		if !strings.Contains(p, "404") || !strings.Contains(p, "/spaces/betahaus") {
			t.Errorf("the browser reported: %s", p)
		}
	}
}
