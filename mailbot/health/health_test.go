package health

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func get(c *Checks) (int, string) {
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	return rec.Code, rec.Body.String()
}

func TestHealthy(t *testing.T) {
	var c Checks
	c.Add("store", func() (bool, string) { return true, "" })
	c.Add("inbox", func() (bool, string) { return true, "" })
	code, body := get(&c)
	if code != http.StatusOK || body != "ok\nstore: ok\ninbox: ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
}

func TestUnhealthySaysWhich(t *testing.T) {
	var c Checks
	inboxOK := false
	c.Add("store", func() (bool, string) { return true, "" })
	c.Add("inbox", func() (bool, string) { return inboxOK, "not reached for 6m0s (limit 5m0s):\nconnection refused" })
	c.Add("outbox", func() (bool, string) { return false, "" })
	code, body := get(&c)
	want := "unhealthy\nstore: ok\ninbox: failing: not reached for 6m0s (limit 5m0s): connection refused\noutbox: failing: failing\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("unhealthy: %d %q\nwant %q", code, body, want)
	}

	// A check added later (an OAuth2 token source) counts like the others.
	inboxOK = true
	var d Checks
	d.Add("inbox", func() (bool, string) { return inboxOK, "" })
	d.Add("oauth2", func() (bool, string) { return false, "no token: invalid_grant" })
	if code, body := get(&d); code != http.StatusServiceUnavailable || body != "unhealthy\ninbox: ok\noauth2: failing: no token: invalid_grant\n" {
		t.Errorf("with a failing added check: %d %q", code, body)
	}
}

func TestNoChecksIsHealthy(t *testing.T) {
	if code, body := get(&Checks{}); code != http.StatusOK || body != "ok\n" {
		t.Errorf("no checks: %d %q", code, body)
	}
}
