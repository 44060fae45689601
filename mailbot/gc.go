package mailbot

import "runtime/debug"

// GCPercent is the garbage collector's goal the daemon runs with (what the
// GOGC variable sets), unless GOGC is set in its environment. Each message
// allocates about 100 KB while the live heap stays small, so at Go's
// default of 100 the collector runs every few dozen messages of a burst
// and costs about a fifth of the daemon's CPU, which on a small machine is
// taken from the mail servers beside it. At 400 it runs a quarter as
// often; the heap may grow to five times the live one (tens of MB).
const GCPercent = 400

// SetGCPercent gives the process GCPercent unless getenv("GOGC") is set:
// an operator's GOGC (or GOMEMLIMIT beside it) wins.
func SetGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
