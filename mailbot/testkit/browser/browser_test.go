package browser

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// A tab sees what the tests rely on it to see: the requests a page makes
// and the errors it reports. Without this, "no problem" and "nothing
// offsite" would pass with a recorder that records nothing.
func TestTabRecordsRequestsAndProblems(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `<!DOCTYPE html><html lang="en"><head><meta name="viewport" content="width=device-width">`+
			`<title>probe</title></head><body><p id="p">hello</p><img src="/missing.png" alt="">`+
			`<script>console.error("probe-error")</script></body></html>`)
	}))
	defer srv.Close()

	tab := Start(t).NewTab(t, PhoneWidth, PhoneHeight)
	tab.Navigate(srv.URL+"/", http.StatusOK)
	if got := tab.Texts("#p"); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("texts: %q", got)
	}
	if w := Eval[int](tab, `window.innerWidth`); w != PhoneWidth {
		t.Errorf("a phone tab is %d px wide", w)
	}
	// The events come from the browser's reader: wait for them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		reqs, probs := tab.Requests(), strings.Join(tab.Problems(), "\n")
		if slices.Contains(reqs, srv.URL+"/") && slices.Contains(reqs, srv.URL+"/missing.png") &&
			strings.Contains(probs, "probe-error") && strings.Contains(probs, "404") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tab recorded requests %q and problems %q", reqs, probs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if off := tab.Offsite(); len(off) != 0 {
		t.Errorf("loopback requests counted as offsite: %q", off)
	}
}

func TestLoopback(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080/", true}, {"http://127.9.9.9/x", true}, {"http://[::1]:80/", true},
		{"data:image/png;base64,AAAA", true}, {"data:,", true},
		{"http://192.0.2.1/", false}, {"https://fonts.example/a.woff2", false}, {"http://localhost/", false},
		{"ws://127.0.0.1/", false}, {"://", false},
	} {
		if got := Loopback(tc.url); got != tc.want {
			t.Errorf("Loopback(%q) = %v", tc.url, got)
		}
	}
}
