package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in as the profiling daemon, as
// mailbench itself does with -profile.
func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) != "" {
		os.Exit(daemonMain())
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole benchmark with a tiny N against the real Dovecot
// and Postfix, once with the mailbot binary built from this module and once
// with the profiling daemon: it proves the benchmark works, and times
// nothing. It fails, never skips, when the servers cannot start.
func TestSmoke(t *testing.T) {
	t.Run("binary", func(t *testing.T) { smoke(t, "") })
	t.Run("profile", func(t *testing.T) { smoke(t, t.TempDir()) })
}

func smoke(t *testing.T, prof string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	args := []string{"-n", "50", "-latency", "3", "-runs", "1", "-managers", "5", "-members", "2000", "-spaces", "20"}
	shapes, intakes, peer := []string{"many", "one"}, []string{"imap", "lmtp"}, true
	if prof != "" {
		// The profiling daemon runs the same code: one burst proves it.
		shapes, intakes, peer = []string{"many"}, []string{"imap"}, false
		args = append(args, "-profile", prof, "-peer", "0")
	}
	args = append(args, "-shapes", strings.Join(shapes, ","), "-intake", strings.Join(intakes, ","))
	if err := run(ctx, args, &out, &log); err != nil {
		t.Fatalf("mailbench: %v\n%s", err, log.String())
	}
	t.Logf("\n%s", out.String())
	got := map[string]float64{}
	s := bufio.NewScanner(&out)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok && !strings.Contains(k, " ") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Errorf("figure %s=%q is not a number", k, v)
			}
			got[k] = f
		}
	}
	want := []string{"imap_fetch_msgs_per_s", "smtp_submit_msgs_per_s", "outbox_one_msgs_per_s", "outbox_many_msgs_per_s", "delivery_p50_ms", "latency_imap_p50_ms", "latency_imap_p99_ms",
		"latency_lmtp_p50_ms", "latency_lmtp_per_delivery"}
	if peer {
		want = append(want, "latency_peer_p50_ms", "latency_imap_per_peer")
	}
	for _, sh := range shapes {
		for _, in := range intakes {
			n := in + "_" + sh
			want = append(want, "limit_"+n+"_msgs_per_s", "burst_"+n+"_msgs_per_s", "burst_"+n+"_ratio", "rss_"+n+"_peak_mb", "rss_"+n+"_anon_mb", "rss_"+n+"_file_mb")
			if got["burst_"+n+"_replies_ok"] != 50 || got["burst_"+n+"_replies_bad"] != 0 {
				t.Errorf("burst %s replies: %v ok, %v bad; want 50 and 0", n, got["burst_"+n+"_replies_ok"], got["burst_"+n+"_replies_bad"])
			}
		}
	}
	for _, name := range want {
		if got[name] <= 0 {
			t.Errorf("%s = %v, want a positive figure", name, got[name])
		}
	}
	if prof == "" {
		return
	}
	for _, f := range []string{"cpu.pprof", "heap.pprof", "wall.txt"} {
		if fi, err := os.Stat(prof + "/run1-imap_many/" + f); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
}
