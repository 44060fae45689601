package mailbot

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/reply"
	"github.com/coworkingvisa/mailbot/storage"
)

// A store write can fail for a reason that has nothing to do with the
// message in hand: the disk is full, the file system went read-only, the
// device fails. Such a failure must never count against the message (it
// would go to quarantine, unanswered, with every other message after it).
// Instead the bot pauses intake: messages stay in the inbox, untouched,
// while a small write is tried again every storeProbeEvery; once it works,
// intake resumes by itself.

// storeProbeEvery is how often a paused bot tries the store again.
const storeProbeEvery = 15 * time.Second

// storeUnwritable reports whether err is the store failing to write for a
// reason outside the message. bbolt does not always keep the system error
// (a failed file resize is reported as text), so the text is read too.
func storeUnwritable(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS, syscall.EIO, syscall.EDQUOT, syscall.EFBIG} {
		if errors.Is(err, errno) {
			return true
		}
	}
	msg := err.Error()
	for _, s := range []string{"no space left on device", "read-only file system", "input/output error", "disk quota exceeded", "file too large"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// storeState says whether intake is paused because the store cannot be
// written.
type storeState struct {
	mu        sync.Mutex
	down      bool
	since     time.Time
	lastProbe time.Time
	why       string
}

// pause records that the store failed to write; it reports whether intake
// was running until now (to log and tell the admins once).
func (s *storeState) pause(now time.Time, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.down
	if first {
		s.down, s.since = true, now
	}
	s.lastProbe, s.why = now, err.Error()
	return first
}

// probeDue reports whether intake is paused and a probe of the store is
// due now (at most once per storeProbeEvery).
func (s *storeState) probeDue(now time.Time) (paused, due bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return false, false
	}
	if now.Sub(s.lastProbe) < storeProbeEvery {
		return true, false
	}
	s.lastProbe = now
	return true, true
}

// resume records that the store writes again and reports how long intake
// was paused.
func (s *storeState) resume(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
	return now.Sub(s.since)
}

// Writable is the health check of the store's writes: not OK while intake
// is paused.
func (s *storeState) Writable() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return true, ""
	}
	return false, "cannot write since " + s.since.Format(time.RFC3339) + ": " + s.why + "; mail waits in the inbox"
}

// pauseIntake stops taking messages after a store write failed for a reason
// outside the message: logged and told to the admins once, by a notice
// sent directly (the outbox lives in the store that fails).
func (b *Bot) pauseIntake(err error) {
	if !b.store.pause(b.now(), err) {
		return
	}
	b.log.Error("the store cannot be written: intake paused, mail waits in the inbox", "error", err)
	b.notifyAdminsDirect("store-down", struct{ Error string }{err.Error()})
	go b.probeUntilWritable()
}

// probeUntilWritable tries the store every storeProbeEvery while intake is
// paused, so that intake resumes as soon as the store can be written, not
// at the inbox's next poll: the inbox is poked then. It ends when the store
// is writable or closed.
func (b *Bot) probeUntilWritable() {
	for {
		time.Sleep(storeProbeEvery)
		if !b.intakePaused() {
			b.resumed()
			return
		}
		if errors.Is(b.db.Probe(b.now()), storage.ErrClosed) {
			return
		}
	}
}

// SetResumed sets what the bot calls when intake resumes after the store
// could not be written: the daemon pokes the inbox watcher.
func (b *Bot) SetResumed(f func()) { b.resumed = f }

// intakePaused reports whether intake is paused; while it is, the store is
// tried with a small write every storeProbeEvery, and intake resumes as
// soon as that works.
func (b *Bot) intakePaused() bool {
	paused, due := b.store.probeDue(b.now())
	if !paused {
		return false
	}
	if !due {
		return true
	}
	if err := b.db.Probe(b.now()); err != nil {
		b.log.Debug("the store still cannot be written", "error", err)
		return true
	}
	d := b.store.resume(b.now())
	b.log.Info("the store can be written again: intake resumes", "paused_for", d.Round(time.Second).String())
	return false
}

// StoreWritable is the health check of the store's writes.
func (b *Bot) StoreWritable() (bool, string) { return b.store.Writable() }

// SetDirect gives the bot a way to send a notice without the store.
func (b *Bot) SetDirect(send func(to string, raw []byte) error) { b.direct = send }

// notifyAdminsDirect renders a notice (the phrases name.subject and
// name.text with data) and sends it to every admin at once, bypassing the
// outbox. Best effort: a failure is logged.
func (b *Bot) notifyAdminsDirect(name string, data any) {
	if b.direct == nil {
		return
	}
	for _, admin := range b.set.Admins {
		m, err := b.adminNotice(name, data, admin)
		if err == nil {
			var raw []byte
			if raw, _, err = reply.Render(m); err == nil {
				err = b.direct(admin, raw)
			}
		}
		if err != nil {
			b.log.Error("could not tell an admin directly", "notice", name, "to", admin, "error", err)
		}
	}
}
