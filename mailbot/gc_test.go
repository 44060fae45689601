package mailbot

import (
	"runtime/debug"
	"testing"
)

// TestSetGCPercent: the daemon's goal unless the operator set GOGC.
func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	SetGCPercent(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Errorf("without GOGC: %d, want %d", got, GCPercent)
	}
	SetGCPercent(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: %d, want it left alone (100)", got)
	}
}
