// Package health answers /healthz: the bot is healthy when every check
// passes. Each part of the daemon whose failure an operator must hear of
// registers a check (the store, the inbox, the outbox; a token source), a
// function that says whether the part is fine and, when it is not, why.
package health

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Check reports whether one part is fine and, when it is not, why: one
// line in plain words for an operator ("not reached for 6m12s (limit 5m0s):
// dial tcp …: connection refused"). It must answer at once from what its
// part already knows: /healthz is polled often, and a check that waits on
// the network would make a slow server look like a dead bot.
type Check func() (ok bool, why string)

// Checks is a set of named checks, run in the order they were added. It is
// safe for concurrent use; the zero value is an empty set.
type Checks struct {
	mu   sync.Mutex
	list []named
}

type named struct {
	name  string
	check Check
}

// Add registers a check under a short name ("inbox", "oauth2").
func (c *Checks) Add(name string, check Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, named{name, check})
}

// Result is the outcome of one check.
type Result struct {
	Name string
	OK   bool
	Why  string // when not OK
}

// Run runs every check and reports whether all passed.
func (c *Checks) Run() (results []Result, healthy bool) {
	c.mu.Lock()
	list := append([]named(nil), c.list...)
	c.mu.Unlock()
	healthy = true
	for _, n := range list {
		ok, why := n.check()
		if !ok && why == "" {
			why = "failing"
		}
		results = append(results, Result{Name: n.name, OK: ok, Why: why})
		healthy = healthy && ok
	}
	return results, healthy
}

// ServeHTTP answers 200 when every check passes and 503 otherwise, with
// one line per check: "store: ok", or "inbox: failing: why".
func (c *Checks) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	results, healthy := c.Run()
	var b strings.Builder
	if healthy {
		b.WriteString("ok\n")
	} else {
		b.WriteString("unhealthy\n")
	}
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(&b, "%s: ok\n", r.Name)
		} else {
			fmt.Fprintf(&b, "%s: failing: %s\n", r.Name, oneLine(r.Why))
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprint(w, b.String())
}

// oneLine keeps a reason on its line, whatever an error message holds.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
