package templates_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/browser"
)

// overflowScript lists the elements whose right edge passes the viewport's:
// what a reader would have to scroll sideways for.
const overflowScript = `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 5).map(e => e.tagName + ' "' + (e.innerText || '').trim().slice(0, 40) + '" right=' + Math.round(e.getBoundingClientRect().right))`

// TestMailInABrowser loads the HTML part of every golden mail in a real
// headless Chromium at a phone's and a desktop's width, served from
// loopback: nothing may overflow sideways, every text must reach a
// contrast of 4.5:1, the page must name its language and have a title,
// load nothing and report no error. The screenshots go to the test's
// artifact directory (go test -artifacts keeps them); with -update, the
// reply's and the digest's at a phone's width go to docs/ as well.
func TestMailInABrowser(t *testing.T) {
	mails := renderAll(t)
	pages := map[string]string{}
	for _, m := range mails {
		pages["/"+m.name+".html"] = m.html
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent) // the browser asks; mail has none
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	defer srv.Close()
	b := browser.Start(t)
	shots := t.ArtifactDir()

	for _, size := range []struct {
		name          string
		width, height int
	}{
		{"phone", browser.PhoneWidth, browser.PhoneHeight},
		{"desktop", browser.DesktopWidth, browser.DesktopHeight},
	} {
		tab := b.NewTab(t, size.width, size.height)
		// Mail clients run no scripts: the mail must not need them.
		for _, m := range mails {
			what := m.name + " at " + size.name + " width"
			tab.Navigate(srv.URL+"/"+m.name+".html", http.StatusOK)
			if w := browser.Eval[int](tab, `window.innerWidth`); w != size.width {
				t.Errorf("%s: the viewport is %d px wide, want %d", what, w, size.width)
			}
			if sw := browser.Eval[int](tab, `document.documentElement.scrollWidth`); sw > size.width {
				t.Errorf("%s: the page is %d px wide on a %d px screen; past the edge: %q", what, sw, size.width,
					browser.Eval[[]string](tab, overflowScript))
			}
			c := tab.Contrast(false)
			if c.Checked < 3 || len(c.Failures) > 0 {
				t.Errorf("%s: contrast below 4.5:1 (%d texts checked): %q", what, c.Checked, c.Failures)
			}
			lang := m.name[strings.LastIndexByte(m.name, '.')+1:]
			if m.name == "notice.fr" {
				lang = "" // written in the host's language, whatever the sender's
			}
			if got := browser.Eval[string](tab, `document.documentElement.lang`); got == "" || lang != "" && got != lang {
				t.Errorf("%s: <html lang=%q>, want %q", what, got, lang)
			}
			if title := browser.Eval[string](tab, `document.title`); strings.TrimSpace(title) == "" {
				t.Errorf("%s: no <title>", what)
			}
			tab.Screenshot(shots, m.name+"-"+size.name+".png", true)
		}
		if p := tab.Problems(); len(p) > 0 {
			t.Errorf("%s: the pages reported %q", size.name, p)
		}
		if off := tab.Offsite(); len(off) > 0 {
			t.Errorf("%s: the pages loaded from elsewhere: %q", size.name, off)
		}
		if *update && size.name == "phone" {
			for _, name := range []string{"reply-transcript.en", "digest.en"} {
				tab.Navigate(srv.URL+"/"+name+".html", http.StatusOK)
				tab.Screenshot(filepath.Join("..", "docs"), "mail-"+strings.TrimSuffix(name, ".en")+"-phone.png", true)
			}
		}
	}
	if _, err := os.Stat(filepath.Join("..", "docs")); err != nil {
		t.Errorf("docs/: %v", err)
	}
}
