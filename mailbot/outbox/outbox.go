// Package outbox is the bot's queue of outgoing mail, shaped like mox's
// queue: the one call that puts a message in it (Add), used by replies,
// notices and digests alike, and the loop that sends what is due (Queue).
//
// A message is rendered once, when it is added, and its bytes are stored in
// the same store transaction as whatever caused it: a command's changes, a
// digest's period. Sending happens after that commit, so nothing queued is
// lost when the process dies, and a message sent again after a crash is
// byte-identical to the first attempt, Message-ID included.
//
// The bot answers people who are waiting, a host at a front desk above all,
// so the schedule is short where mox's (made for strangers' servers) is
// long: a failed send is retried within seconds, then with growing gaps
// (Backoff), and while the submission server refuses connections the queue
// tries again at least every Config.Probe, so replies go out within that
// time of the server coming back.
package outbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/storage"
)

// Kinds of queued message, for the log.
const (
	KindReply  = "reply"  // an answer to a command mail
	KindNotice = "notice" // a notice to the admins or to a sender
	KindDigest = "digest" // a weekly digest
)

// ErrTooLarge is returned by Add for a message whose rendered size is over
// the limit given; nothing is stored.
var ErrTooLarge = errors.New("outbox: message too large")

// Added is what Add stored.
type Added struct {
	ID        uint64 // the queue item
	MessageID string // without <>
	Size      int    // bytes
}

// Add renders m and puts it in the outbox in tx, due at once, from m.From
// to m.To. kind is one of the Kind constants. A message larger than limit
// bytes (when limit > 0) is not stored: Add returns ErrTooLarge, with the
// size in Added, so that the caller can send a shorter one instead.
//
// The caller commits tx and then calls Queue.Kick.
func Add(tx *storage.Tx, m reply.Message, kind string, limit int) (Added, error) {
	raw, id, err := reply.Render(m)
	if err != nil {
		return Added{}, fmt.Errorf("outbox: %w", err)
	}
	if limit > 0 && len(raw) > limit {
		return Added{Size: len(raw)}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), limit)
	}
	now := m.Date
	if now.IsZero() {
		now = time.Now()
	}
	seq, err := tx.Enqueue(storage.OutboxItem{
		From: m.From, To: []string{m.To}, Raw: raw, MessageID: id, Created: now,
		Kind: kind, Answers: m.InReplyTo,
	})
	if err != nil {
		return Added{}, fmt.Errorf("outbox: %w", err)
	}
	return Added{ID: seq, MessageID: id, Size: len(raw)}, nil
}
