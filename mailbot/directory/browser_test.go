package directory

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/browser"
	"github.com/coworkingvisa/mailbot/storage"
)

// browserNetwork is network() and a space whose words are long enough to
// push a careless layout past a phone's width.
func browserNetwork() []storage.Space {
	return append(network(), storage.Space{ID: "kraftwerk-oerlikon-makerspace", Name: "Kraftwerk Coworking & Makerspace Zürich-Oerlikon",
		City: "Zürich", Country: "CH", FreeDays: days(5), NoticeDays: 3, Hours: "Mo–Fr 8–20, Sa 10–16",
		Terms: "See https://kraftwerk.example/coworking-visa/terms-and-conditions-for-visiting-members-2026 before you come"})
}

// checkLayout asserts what every page owes a visitor at any width: the
// viewport it asked for, nothing wider than the screen, readable text,
// and no script.
func checkLayout(t *testing.T, tab *browser.Tab, width int, what string) {
	t.Helper()
	if w := browser.Eval[int](tab, `window.innerWidth`); w != width {
		t.Errorf("%s: the viewport is %d px wide, want %d", what, w, width)
	}
	if sw := browser.Eval[int](tab, `document.documentElement.scrollWidth`); sw > width {
		t.Errorf("%s: the page is %d px wide on a %d px screen: it overflows horizontally", what, sw, width)
	}
	c := tab.Contrast(true)
	if c.Checked < 3 || len(c.Failures) > 0 {
		t.Errorf("%s: contrast below WCAG AA (%d texts checked): %q", what, c.Checked, c.Failures)
	}
	if n := browser.Eval[int](tab, `document.scripts.length`); n != 0 {
		t.Errorf("%s: %d scripts", what, n)
	}
}

// TestInABrowser loads the directory in a real headless Chromium at a
// phone's and a desktop's width: what it renders, that the search form
// and the links work, that nothing overflows or is hard to read, that
// nothing is loaded from elsewhere and nothing is reported as an error.
// Its screenshots go to the test's artifact directory (go test
// -artifacts keeps them; docs/ has two of them).
func TestInABrowser(t *testing.T) {
	f := newFixture(t, Options{}, browserNetwork()...)
	srv := httptest.NewServer(f.srv) // on 127.0.0.1
	defer srv.Close()
	b := browser.Start(t)

	for _, size := range []struct {
		name          string
		width, height int
	}{
		{"phone", browser.PhoneWidth, browser.PhoneHeight},
		{"desktop", browser.DesktopWidth, browser.DesktopHeight},
	} {
		t.Run(size.name, func(t *testing.T) {
			tab := b.NewTab(t, size.width, size.height)
			shots := t.ArtifactDir()

			tab.Navigate(srv.URL+"/", http.StatusOK)
			checkLayout(t, tab, size.width, "the list")
			if got, want := tab.Texts("h3.country-name"), []string{"CH", "DE", "FR", "US", "Country not given"}; !slices.Equal(got, want) {
				t.Errorf("countries %q, want %q", got, want)
			}
			if got := tab.Texts(".spaces h4"); len(got) != len(browserNetwork()) || !slices.Contains(got, "La Cantine") {
				t.Errorf("spaces %q", got)
			}
			if lang := browser.Eval[string](tab, `document.documentElement.lang`); lang != "en" {
				t.Errorf("lang %q", lang)
			}
			// One column of spaces on a phone, several on a desktop.
			columns := browser.Eval[int](tab, `new Set([...document.querySelectorAll('.spaces > li')].map(e => e.getBoundingClientRect().left)).size`)
			if size.width == browser.PhoneWidth && columns != 1 || size.width == browser.DesktopWidth && columns < 3 {
				t.Errorf("the spaces stand in %d columns at %d px", columns, size.width)
			}
			tab.Screenshot(shots, "directory-"+size.name+".png", false)
			tab.Screenshot(shots, "directory-"+size.name+"-full.png", true)

			// The search, as a visitor uses it: type, press the button.
			tab.Submit("#q", "berlin", "form.search button")
			if u := tab.URL(); !strings.HasSuffix(u, "/?q=berlin") {
				t.Errorf("the search went to %s", u)
			}
			if got := tab.Texts(".spaces h4"); !slices.Equal(got, []string{"betahaus"}) {
				t.Errorf("searching berlin shows %q", got)
			}
			checkLayout(t, tab, size.width, "the search")

			// The space's page, through its link.
			tab.Click(".spaces h4 a")
			if u := tab.URL(); u != srv.URL+"/spaces/betahaus" {
				t.Errorf("the link went to %s", u)
			}
			checkLayout(t, tab, size.width, "the space page")
			if got := tab.Texts("h1"); !slices.Equal(got, []string{"betahaus"}) {
				t.Errorf("h1 %q", got)
			}
			if got := tab.Texts("pre.command"); !slices.Equal(got, []string{"visit betahaus YYYY-MM-DD"}) {
				t.Errorf("the command %q", got)
			}
			want := "mailto:visa+dir@example.org?subject=visit&body=visit%20betahaus%20YYYY-MM-DD"
			if got := browser.Eval[string](tab, `document.querySelector('a.button').href`); got != want {
				t.Errorf("the visit link is %s, want %s", got, want)
			}
			tab.Screenshot(shots, "space-"+size.name+".png", false)
			tab.Screenshot(shots, "space-"+size.name+"-full.png", true)

			// The longest words stay within the screen.
			tab.Navigate(srv.URL+"/spaces/kraftwerk-oerlikon-makerspace", http.StatusOK)
			checkLayout(t, tab, size.width, "a space with long words")
			tab.Navigate(srv.URL+"/spaces/atlantis", http.StatusNotFound)
			checkLayout(t, tab, size.width, "a missing space")

			if off := tab.Offsite(); len(off) > 0 {
				t.Errorf("requests left this machine: %q", off)
			}
			if !slices.Contains(tab.Requests(), srv.URL+"/spaces/betahaus") {
				t.Errorf("the tab recorded no request for the space page: %q", tab.Requests())
			}
			// The missing space's 404 is the browser's one error, and
			// an expected one.
			for _, p := range tab.Problems() {
				if !strings.Contains(p, "404") || !strings.Contains(p, "/spaces/atlantis") {
					t.Errorf("the browser reported: %s", p)
				}
			}
		})
	}

	// Without JavaScript, as some visitors browse: the search works all
	// the same (the pages have no script to miss).
	t.Run("no-javascript", func(t *testing.T) {
		tab := b.NewTab(t, browser.PhoneWidth, browser.PhoneHeight)
		tab.DisableScripts()
		tab.Navigate(srv.URL+"/", http.StatusOK)
		tab.Submit("#q", "zurich", "form.search button")
		if got := tab.Texts(".spaces h4"); len(got) != 2 {
			t.Errorf("searching zurich without JavaScript shows %q", got)
		}
		if p := tab.Problems(); len(p) > 0 {
			t.Errorf("the browser reported: %q", p)
		}
	})
}
