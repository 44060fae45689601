// Package browser drives a real headless Chromium (Debian's chromium
// package, installed by .ci/install-deps) through chromedp, for tests of
// the pages the bot serves: what a visitor's browser really renders, at a
// phone's and a desktop's width. A tab records every request the page
// makes and every error it reports (console errors, uncaught exceptions,
// the browser's own error log: a refused load, a Content-Security-Policy
// violation), so that a test can assert that a page loads nothing from
// elsewhere and reports nothing.
//
// A browser that cannot start fails the test: never a skip.
package browser

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The widths the pages are checked at: a phone (an iPhone 12 to 15 is
// 390 CSS pixels wide) and a desktop.
const (
	PhoneWidth, PhoneHeight     = 390, 844
	DesktopWidth, DesktopHeight = 1280, 800
)

// actionTimeout bounds one step (a load, a click, a script): a page that
// hangs fails the test instead of holding it until go test's own timeout.
const actionTimeout = 30 * time.Second

// Browser is a running Chromium.
type Browser struct {
	ctx context.Context
}

// Path is where Chromium is: the chromium on PATH, or Debian's.
func Path() (string, error) {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	return "", fmt.Errorf("no chromium on PATH or at /usr/bin/chromium (Debian's chromium package: run .ci/install-deps as root)")
}

// Start starts a headless Chromium with an empty profile for the test,
// and stops it when the test ends. It fails the test if Chromium cannot
// start.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := Path()
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		// This machine reaches no network: whatever Chromium tries on
		// its own (QUIC probes, component and sync updates) would only
		// retry, and slow it down.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel() // waits until the process is gone, before t.TempDir is removed
	})
	// The first action starts the browser and binds its life to the
	// context it gets, so it gets ctx itself; a start that hangs fails
	// the test after a while instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browser: start %s: %v", path, err)
		}
	case <-time.After(2 * actionTimeout):
		cancel()
		t.Fatalf("browser: %s did not start within %v", path, 2*actionTimeout)
	}
	return &Browser{ctx: ctx}
}

// Tab is one page of the browser, with what it loaded and reported.
type Tab struct {
	t   testing.TB
	ctx context.Context

	mu       sync.Mutex
	requests []string // every URL the page asked for, in order
	problems []string // errors the page or the browser reported
}

// NewTab opens a tab with a viewport of width × height CSS pixels. A
// phone-sized tab (width < 600) is a mobile one: the page's viewport meta
// tag counts, as on a phone.
func (b *Browser) NewTab(t testing.TB, width, height int) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	tab := &Tab{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, tab.record); err != nil {
		t.Fatalf("browser: open a tab: %v", err)
	}
	var opts []chromedp.EmulateViewportOption
	if width < 600 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	tab.do("set the viewport", chromedp.EmulateViewport(int64(width), int64(height), opts...))
	return tab
}

// record keeps what a test asserts on. It runs on the tab's reader: it
// only appends.
func (tab *Tab) record(ev any) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		tab.requests = append(tab.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			msg := string(ev.Type)
			for _, a := range ev.Args {
				msg += " " + string(a.Value) + a.Description
			}
			tab.problems = append(tab.problems, "console: "+msg)
		}
	case *runtime.EventExceptionThrown:
		msg := ev.ExceptionDetails.Text
		if e := ev.ExceptionDetails.Exception; e != nil {
			msg += " " + e.Description
		}
		tab.problems = append(tab.problems, "exception: "+msg)
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			tab.problems = append(tab.problems, fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

func (tab *Tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tab.t.Fatalf("browser: %s: %v", what, err)
	}
}

// DisableScripts turns JavaScript off in the tab, as a visitor may have
// it: the pages must work without it.
func (tab *Tab) DisableScripts() {
	tab.t.Helper()
	tab.do("disable scripts", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
}

// Navigate loads url and waits for its load event. It fails the test
// unless the page answers with status.
func (tab *Tab) Navigate(url string, status int) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		tab.t.Fatalf("browser: load %s: %v", url, err)
	}
	if resp == nil || int(resp.Status) != status {
		tab.t.Fatalf("browser: load %s: status %v, want %d", url, statusOf(resp), status)
	}
}

func statusOf(r *network.Response) any {
	if r == nil {
		return "no response"
	}
	return r.Status
}

// Submit types text into the field sel and clicks the button sel's form
// submits with (button), then waits for the page that answers.
func (tab *Tab) Submit(field, text, button string) {
	tab.t.Helper()
	tab.do("type into "+field, chromedp.SendKeys(chromedp.CSS(field), text))
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(button)))); err != nil {
		tab.t.Fatalf("browser: submit with %s: %v", button, err)
	}
}

// Click clicks the element sel (a link) and waits for the page it leads to.
func (tab *Tab) Click(sel string) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		tab.t.Fatalf("browser: click %s: %v", sel, err)
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its
// value into T.
func Eval[T any](tab *Tab, expr string) T {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tab.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// Texts are the text contents of the elements sel matches, in document
// order, as the page renders them (innerText: CSS applied).
func (tab *Tab) Texts(sel string) []string {
	tab.t.Helper()
	return Eval[[]string](tab, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.innerText.trim())`, sel))
}

// URL is the address of the page the tab shows.
func (tab *Tab) URL() string {
	tab.t.Helper()
	return Eval[string](tab, `location.href`)
}

// Screenshot saves the tab's viewport as a PNG file and returns its path.
// With full, the whole page, however long.
func (tab *Tab) Screenshot(dir, name string, full bool) string {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, actionTimeout)
	defer cancel()
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		tab.t.Fatalf("browser: screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tab.t.Fatalf("browser: %v", err)
	}
	return path
}

// Requests are the URLs the tab's pages asked for so far.
func (tab *Tab) Requests() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.requests...)
}

// Problems are the errors the tab's pages and the browser reported so
// far: console errors, uncaught exceptions, and the browser's error log
// (a failed or refused load, a Content-Security-Policy violation).
func (tab *Tab) Problems() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.problems...)
}

// Offsite are the requests that left this machine: any URL but a data:
// URL or one whose host is a loopback address.
func (tab *Tab) Offsite() []string {
	var out []string
	for _, r := range tab.Requests() {
		if !Loopback(r) {
			out = append(out, r)
		}
	}
	return out
}

// Loopback reports whether a URL stays on this machine: a data: URL, or
// http(s) to a loopback address.
func Loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Scheme == "data" {
		return true
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
