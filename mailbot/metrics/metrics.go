// Package metrics counts what the daemon decides and does, for /metrics in
// the Prometheus text format (exposition format 0.0.4).
//
// A Metrics is owned by the daemon and handed to the parts that decide (the
// pipeline, the outbox queue, the digest scheduler) when they are built;
// a nil *Metrics counts nothing, so a part built without one (a test, a
// one-shot command) needs no stand-in. Nothing here is global: each
// Metrics has its own set (VictoriaMetrics/metrics NewSet), so tests make
// their own. The other parts call the small methods below and never the
// metrics library itself.
//
// Every label value comes from a small fixed set (the constants here, the
// command names of the parser, the outbox's kinds), never from free text:
// a series per sender or per error message would grow without bound.
package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Metrics holds the daemon's metrics. Its methods are safe for concurrent
// use, and do nothing on a nil *Metrics.
type Metrics struct {
	set      *vm.Set
	handling *vm.PrometheusHistogram
	breaker  *vm.Counter
}

// New makes an empty set of the daemon's metrics, every fixed series at 0
// so that a rate over the first increase is seen.
func New() *Metrics {
	m := &Metrics{set: vm.NewSet()}
	// Most messages take milliseconds; a DKIM key look-up may take up to
	// auth.dns_timeout (5 s), a large CSV import some seconds more.
	m.handling = m.set.NewPrometheusHistogramExt("mailbot_message_handling_seconds",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30})
	m.breaker = m.set.NewCounter("mailbot_breaker_trips_total")
	for _, p := range outcomes() {
		m.counter("mailbot_messages_total", "outcome", string(p.o), "reason", string(p.r))
	}
	for _, a := range []Audience{SpaceDigest, NetworkDigest} {
		m.counter("mailbot_digests_queued_total", "audience", string(a))
	}
	return m
}

// counter returns the counter of a family with the given label pairs.
func (m *Metrics) counter(family string, labels ...string) *vm.Counter {
	return m.set.GetOrCreateCounter(series(family, labels...))
}

// series renders a series name: family{k1="v1",k2="v2"}. Values are
// label-safe already (see label).
func series(family string, labels ...string) string {
	if len(labels) == 0 {
		return family
	}
	var b strings.Builder
	b.WriteString(family)
	b.WriteByte('{')
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", labels[i], label(labels[i+1]))
	}
	b.WriteByte('}')
	return b.String()
}

// label turns a name into a label value: lowercase, with anything but
// letters and digits as "_" ("add member" is add_member, "NOT VERIFIED"
// not_verified), and at most 40 bytes.
func label(s string) string {
	s = strings.ToLower(s)
	out := []byte(s[:min(len(s), 40)])
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			out[i] = '_'
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return string(out)
}

// Outcome is what became of a message taken from the inbox: the outcome
// label of mailbot_messages_total.
type Outcome string

const (
	// Handled: acted on or answered (or recognised as done), and marked.
	Handled Outcome = "handled"
	// SetAside: moved to the rejected mailbox unanswered.
	SetAside Outcome = "set_aside"
	// Quarantined: failed too often, moved to the quarantine mailbox.
	Quarantined Outcome = "quarantined"
	// Deferred: left in the inbox to be tried again.
	Deferred Outcome = "deferred"
)

// Reason says why: the reason label of mailbot_messages_total.
type Reason string

// Reasons of Handled.
const (
	Replied     Reason = "replied"      // carried out and answered
	Refused     Reason = "refused"      // answered with an ERROR: not written to the bot, too old, too large
	RateLimited Reason = "rate_limited" // over the sender's hourly limit: a notice or nothing
	NoCommands  Reason = "no_commands"  // a reply to the bot without a command: not answered
	Duplicate   Reason = "duplicate"    // handled before (delivered twice)
)

// Reasons of SetAside.
const (
	Unreadable      Reason = "unreadable"
	Automatic       Reason = "automatic" // auto-replies, bounces, lists (RFC 3834)
	RepeatedFields  Reason = "repeated_fields"
	Impersonation   Reason = "impersonation"
	Unauthenticated Reason = "unauthenticated"
	OwnAddress      Reason = "own_address"
	StrangerBudget  Reason = "stranger_budget" // a stranger past the daily or hourly budget
)

// Reasons of Deferred and Quarantined (and Breaker of Deferred only).
const (
	InternalError  Reason = "internal_error"  // the store or the code failed
	DNSUnavailable Reason = "dns_unavailable" // the DKIM key look-up did not answer
	Breaker        Reason = "breaker"         // the circuit breaker is open
)

type outcomePair struct {
	o Outcome
	r Reason
}

// outcomes are the outcome and reason pairs that occur.
func outcomes() []outcomePair {
	var out []outcomePair
	add := func(o Outcome, rs ...Reason) {
		for _, r := range rs {
			out = append(out, outcomePair{o, r})
		}
	}
	add(Handled, Replied, Refused, RateLimited, NoCommands, Duplicate)
	add(SetAside, Unreadable, Automatic, RepeatedFields, Impersonation, Unauthenticated, OwnAddress, StrangerBudget)
	add(Quarantined, InternalError, DNSUnavailable)
	add(Deferred, InternalError, DNSUnavailable, Breaker)
	return out
}

// Message counts one message taken from the inbox.
func (m *Metrics) Message(o Outcome, r Reason) {
	if m == nil {
		return
	}
	m.counter("mailbot_messages_total", "outcome", string(o), "reason", string(r)).Inc()
}

// Command counts one command carried out: name is the parser's canonical
// name ("add member"), status the result's status word ("NOT VERIFIED").
func (m *Metrics) Command(name, status string) {
	if m == nil {
		return
	}
	m.counter("mailbot_commands_total", "command", name, "status", status).Inc()
}

// HandlingTime records how long one message took, from the inbox handing
// it over to its disposition.
func (m *Metrics) HandlingTime(d time.Duration) {
	if m == nil {
		return
	}
	m.handling.Update(d.Seconds())
}

// BreakerTripped counts an opening of the global circuit breaker.
func (m *Metrics) BreakerTripped() {
	if m == nil {
		return
	}
	m.breaker.Inc()
}

// Drop is why the outbox gave up on a message.
type Drop string

const (
	// Rejected: the submission server refused it for good (5xx).
	Rejected Drop = "rejected"
	// Expired: still unsent after outbox.give_up_after.
	Expired Drop = "expired"
)

// OutboxKinds creates the outbox's series at 0 for each kind of message
// (outbox.KindReply …), so that their first increase is seen.
func (m *Metrics) OutboxKinds(kinds ...string) {
	if m == nil {
		return
	}
	for _, k := range kinds {
		m.counter("mailbot_outbox_sent_total", "kind", k)
		m.counter("mailbot_outbox_failed_total", "kind", k)
		m.counter("mailbot_outbox_held_total", "kind", k)
		for _, d := range []Drop{Rejected, Expired} {
			m.counter("mailbot_outbox_dropped_total", "kind", k, "reason", string(d))
		}
	}
}

// Sent counts a message the submission server accepted.
func (m *Metrics) Sent(kind string) {
	if m == nil {
		return
	}
	m.counter("mailbot_outbox_sent_total", "kind", kind).Inc()
}

// SendFailed counts a failed attempt that will be tried again.
func (m *Metrics) SendFailed(kind string) {
	if m == nil {
		return
	}
	m.counter("mailbot_outbox_failed_total", "kind", kind).Inc()
}

// Dropped counts a message given up on.
func (m *Metrics) Dropped(kind string, why Drop) {
	if m == nil {
		return
	}
	m.counter("mailbot_outbox_dropped_total", "kind", kind, "reason", string(why)).Inc()
}

// Held counts a message held because sending it kept killing the process.
func (m *Metrics) Held(kind string) {
	if m == nil {
		return
	}
	m.counter("mailbot_outbox_held_total", "kind", kind).Inc()
}

// Audience is whose digest was queued.
type Audience string

const (
	SpaceDigest   Audience = "space"   // a space's managers
	NetworkDigest Audience = "network" // the admins
)

// DigestsQueued counts n digest messages put in the outbox.
func (m *Metrics) DigestsQueued(a Audience, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.counter("mailbot_digests_queued_total", "audience", string(a)).Add(n)
}

// TokenRefreshed counts an attempt to get an OAuth2 access token: err nil
// for a token, else a failure.
func (m *Metrics) TokenRefreshed(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.counter("mailbot_oauth2_token_refreshes_total", "result", result).Inc()
}

// Gauge registers a value read at each scrape: f is called then, from the
// scraping goroutine. family must be one of the documented families;
// labels are name, value pairs.
func (m *Metrics) Gauge(family string, f func() float64, labels ...string) {
	if m == nil {
		return
	}
	if fam, ok := known(family); !ok || fam.typ != "gauge" {
		panic("metrics: " + family + " is not a documented gauge")
	}
	m.set.NewGauge(series(family, labels...), f)
}

// ServeHTTP writes the metrics (GET /metrics).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WritePrometheus(w)
}

// WritePrometheus writes every metric in the Prometheus text format, each
// of ours under its HELP and TYPE lines, then the process's own
// (process_*: CPU, memory, file descriptors).
func (m *Metrics) WritePrometheus(w io.Writer) {
	var buf bytes.Buffer
	if m != nil {
		m.set.WritePrometheus(&buf)
	}
	vm.WriteProcMetrics(&buf)
	vm.WriteFDMetrics(&buf)
	writeWithMetadata(w, &buf)
}

// writeWithMetadata copies the samples from r to w, writing the HELP and
// TYPE lines of each documented family before its first sample. The
// library writes metadata only when told to process-wide (its
// ExposeMetadata), and without help text; the samples of one family come
// out together, sorted by name.
func writeWithMetadata(w io.Writer, r io.Reader) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	byName := map[string]family{}
	for _, f := range families() {
		byName[f.name] = f
	}
	var current string
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line+" ", "{ ")]
		if fam, ok := familyOf(byName, name); ok && fam.name != current {
			current = fam.name
			fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", fam.name, fam.help, fam.name, fam.typ)
		}
		bw.WriteString(line)
		bw.WriteByte('\n')
	}
}

// familyOf finds the documented family of a sample's name, a histogram's
// _bucket, _sum and _count included.
func familyOf(byName map[string]family, name string) (family, bool) {
	if f, ok := byName[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := byName[base]; ok && f.typ == "histogram" {
				return f, true
			}
		}
	}
	return family{}, false
}
