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

// contrastScript measures, for every element that holds text, the
// contrast of its colour against the first opaque background behind it
// (WCAG 2.x relative luminance): 4.5:1 for text, 3:1 for large text
// (24 px, or 18.66 px bold). It returns how many it checked and the ones
// below.
const contrastScript = `(() => {
  const rgba = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(',').map(parseFloat); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const seen = new Set(), failures = [];
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode, el = n.parentElement;
    if (!n.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    const cs = getComputedStyle(el);
    const fg = rgba(cs.color), b = bg(el), l1 = lum(fg), l2 = lum(b);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) failures.push(el.tagName + ' "' + n.textContent.trim().slice(0, 40) + '" ' + cs.color + ' on ' +
      'rgb(' + b.r + ',' + b.g + ',' + b.b + '): ' + ratio.toFixed(2));
  }
  return {checked: seen.size, failures};
})()`

type contrast struct {
	Checked  int      `json:"checked"`
	Failures []string `json:"failures"`
}

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
	c := browser.Eval[contrast](tab, contrastScript)
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
