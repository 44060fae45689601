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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	args := []string{"-n", "50", "-latency", "3", "-runs", "1", "-managers", "5", "-members", "2000", "-spaces", "20"}
	if prof != "" {
		args = append(args, "-profile", prof)
	}
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
	for _, name := range []string{"limit_msgs_per_s", "burst_msgs_per_s", "burst_ratio", "imap_fetch_msgs_per_s",
		"smtp_submit_msgs_per_s", "latency_p50_ms", "latency_p99_ms", "delivery_p50_ms", "rss_peak_mb"} {
		if got[name] <= 0 {
			t.Errorf("%s = %v, want a positive figure", name, got[name])
		}
	}
	if got["burst_replies_ok"] != 50 || got["burst_replies_bad"] != 0 {
		t.Errorf("burst replies: %v ok, %v bad; want 50 and 0", got["burst_replies_ok"], got["burst_replies_bad"])
	}
	if prof == "" {
		return
	}
	for _, f := range []string{"cpu.pprof", "heap.pprof", "wall.txt"} {
		if fi, err := os.Stat(prof + "/run1/" + f); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
}
