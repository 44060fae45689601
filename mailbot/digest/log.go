package digest

import (
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// logSlack is how far out of time order records of the audit trail and the
// verification log may be. Records are appended with the clock of the
// message that made them, and messages commit in nearly the order they are
// read, so the logs are in time order but for seconds; a day is ample.
const logSlack = 24 * time.Hour

// probe returns the first record of a log with a sequence number of at
// least from: its number and time, or ok=false past the end.
type probe func(from uint64) (seq uint64, at time.Time, ok bool, err error)

// seekAfter returns a sequence number from which a scan of the log finds
// every record with a time after t (all but records more than logSlack out
// of order). It searches the log by sequence number, as the logs are in
// time order, so it reads O(log n) records where a scan from the start
// would read them all: the digest's transaction stays short however long
// the audit trail grows. (An index by space and time in storage would make
// it O(1) and skip other spaces' records too.)
func seekAfter(p probe, t time.Time) (uint64, error) {
	target := t.Add(-logSlack)
	first, at, ok, err := p(0)
	if err != nil || !ok {
		return 0, err
	}
	if at.After(target) {
		return 0, nil
	}
	// Invariant: the record at lo is at or before target, and the first
	// record at or after hi is after target (or there is none).
	lo, step := first, uint64(1)
	var hi uint64
	for {
		seq, at, ok, err := p(lo + step)
		if err != nil {
			return 0, err
		}
		if !ok || at.After(target) {
			hi = lo + step
			break
		}
		lo, step = seq, step*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		seq, at, ok, err := p(mid)
		if err != nil {
			return 0, err
		}
		if !ok || at.After(target) {
			hi = mid
		} else {
			lo = seq
		}
	}
	return hi, nil
}

// changesIn calls fn with every audit record with start < At <= end, in
// sequence order.
func changesIn(tx *storage.Tx, start, end time.Time, fn func(storage.Change)) error {
	return recordsIn(tx.Changes, func(c storage.Change) (uint64, time.Time) { return c.Seq, c.At }, start, end, fn)
}

// verificationsIn calls fn with every verification with start < At <= end,
// in sequence order.
func verificationsIn(tx *storage.Tx, start, end time.Time, fn func(storage.Verification)) error {
	return recordsIn(tx.Verifications, func(v storage.Verification) (uint64, time.Time) { return v.Seq, v.At }, start, end, fn)
}

// recordsIn calls fn with every record of a log with start < At <= end, in
// sequence order. scan reads the log from a sequence number on, until its
// callback returns false; stamp gives a record's number and time.
func recordsIn[R any](scan func(from uint64, fn func(R) bool) error, stamp func(R) (uint64, time.Time),
	start, end time.Time, fn func(R)) error {
	from, err := seekAfter(func(from uint64) (seq uint64, at time.Time, ok bool, err error) {
		err = scan(from, func(r R) bool {
			seq, at = stamp(r)
			ok = true
			return false
		})
		return seq, at, ok, err
	}, start)
	if err != nil {
		return err
	}
	stop := end.Add(logSlack)
	return scan(from, func(r R) bool {
		_, at := stamp(r)
		if at.After(start) && !at.After(end) {
			fn(r)
		}
		return !at.After(stop)
	})
}
