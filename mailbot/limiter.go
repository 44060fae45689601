package mailbot

import (
	"strings"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/storage"
)

// Limits bound how many answers the bot gives, so that a loop or a crowd of
// strangers cannot flood anyone, nor stall the front desk.
type Limits struct {
	// RepliesPerSenderPerHour limits answers to one admin or manager;
	// past it, one notice, then silence until the hour has passed. 0 = no
	// limit.
	RepliesPerSenderPerHour int
	// RepliesPerMinute is the global circuit breaker for answers to admins
	// and managers: past it, their mail waits until the minute is over.
	// 0 = no breaker.
	RepliesPerMinute int
	// StrangerRepliesPerDomainPerDay is shared by the strangers of one
	// domain, StrangerRepliesPerHour by all strangers; each stranger gets
	// at most one answer a day.
	StrangerRepliesPerDomainPerDay int
	StrangerRepliesPerHour         int
}

// Verdict is the Limiter's word on one message.
type Verdict int

const (
	// Answer: act on the message and answer it.
	Answer Verdict = iota
	// Notice: over the sender's hourly limit for the first time this hour:
	// do not act, tell them once.
	Notice
	// Silence: over the limit, already told: do not act, do not answer.
	Silence
	// OverBudget: a stranger past a budget: set the message aside,
	// unanswered, writing nothing.
	OverBudget
)

// Limiter keeps the answer budgets. The per-sender and stranger budgets
// live in the store (they count within a message's transaction and
// survive restarts); the breaker is a minute's count in memory.
type Limiter struct {
	lim Limits

	mu      sync.Mutex
	window  time.Time // the minute being counted
	count   int       // answers to admins and managers in it
	tripped bool      // the breaker opened in this minute
}

// NewLimiter makes a limiter with the given budgets.
func NewLimiter(lim Limits) *Limiter { return &Limiter{lim: lim} }

// Keys of the stranger budgets in the store's rate windows, apart from the
// address keys of the hourly limit.
const (
	strangerKey       = "stranger:"        // + pseudonym: one answer a day
	strangerDomainKey = "stranger-domain:" // + domain: the domain's daily budget
	strangersKey      = "strangers"        // all strangers: the hourly budget
)

// Admit counts one message of sender against its budgets in tx. known
// senders (admins, managers, members) have the hourly limit; strangers the
// daily and hourly budgets, and an OverBudget verdict writes nothing. The
// counters are kept under the sender's pseudonym (storage.Tx.Pseudonym),
// so that they hold no address, and outlast the sender's erasure.
func (l *Limiter) Admit(tx *storage.Tx, sender string, known bool, now time.Time) (Verdict, error) {
	if known {
		return l.admitKnown(tx, tx.Pseudonym(sender), now)
	}
	budgets := l.strangerBudgets(tx, sender)
	windows := make([]storage.RateWindow, len(budgets))
	for i, bg := range budgets {
		w, err := tx.RateWindow(bg.key)
		if err != nil {
			return 0, err
		}
		if now.Sub(w.Start) >= bg.window || now.Before(w.Start) {
			w = storage.RateWindow{Start: now}
		}
		if w.Count >= bg.limit {
			return OverBudget, nil
		}
		w.Count++
		windows[i] = w
	}
	for i, bg := range budgets {
		if err := tx.PutRateWindow(bg.key, windows[i]); err != nil {
			return 0, err
		}
	}
	return Answer, nil
}

// StrangerOverBudget reports, writing nothing, whether a stranger's message
// would be over one of the budgets now: such mail is set aside before its
// body is read at all.
func (l *Limiter) StrangerOverBudget(tx *storage.Tx, sender string, now time.Time) (bool, error) {
	for _, bg := range l.strangerBudgets(tx, sender) {
		w, err := tx.RateWindow(bg.key)
		if err != nil {
			return false, err
		}
		if now.Sub(w.Start) < bg.window && !now.Before(w.Start) && w.Count >= bg.limit {
			return true, nil
		}
		if bg.limit <= 0 {
			return true, nil
		}
	}
	return false, nil
}

// budget is one of the strangers' answer budgets.
type budget struct {
	key    string
	window time.Duration
	limit  int
}

// strangerBudgets are the budgets a stranger's answer counts against:
// theirs (under their pseudonym), their domain's and all strangers'.
func (l *Limiter) strangerBudgets(tx *storage.Tx, sender string) []budget {
	domain := sender[strings.LastIndexByte(sender, '@')+1:]
	return []budget{
		{strangerKey + tx.Pseudonym(sender), 24 * time.Hour, 1},
		{strangerDomainKey + domain, 24 * time.Hour, l.lim.StrangerRepliesPerDomainPerDay},
		{strangersKey, time.Hour, l.lim.StrangerRepliesPerHour},
	}
}

// admitKnown applies the hourly limit of one admin, manager or member
// (sender is their counter's key): when it is spent, the first message
// over it gets a notice and later ones nothing until the hour has passed.
func (l *Limiter) admitKnown(tx *storage.Tx, sender string, now time.Time) (Verdict, error) {
	if l.lim.RepliesPerSenderPerHour <= 0 {
		return Answer, nil
	}
	w, err := tx.RateWindow(sender)
	if err != nil {
		return 0, err
	}
	if now.Sub(w.Start) >= time.Hour || now.Before(w.Start) {
		w = storage.RateWindow{Start: now}
	}
	verdict := Answer
	switch {
	case w.Count < l.lim.RepliesPerSenderPerHour:
		w.Count++
	case w.Noticed:
		return Silence, nil
	default:
		w.Noticed, verdict = true, Notice
	}
	return verdict, tx.PutRateWindow(sender, w)
}

// BreakerOpen reports whether this minute's answers to admins and managers
// reached the global limit, and whether it has just opened (to tell the
// admins once per minute).
func (l *Limiter) BreakerOpen(now time.Time) (open, justOpened bool) {
	if l.lim.RepliesPerMinute <= 0 {
		return false, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	open = l.count >= l.lim.RepliesPerMinute
	justOpened = open && !l.tripped
	if justOpened {
		l.tripped = true
	}
	return open, justOpened
}

// CountReply counts one answer to an admin or manager.
func (l *Limiter) CountReply(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	l.count++
}

// roll starts a new minute's count when the minute changed.
func (l *Limiter) roll(now time.Time) {
	if m := now.Truncate(time.Minute); !m.Equal(l.window) {
		l.window, l.count, l.tripped = m, 0, false
	}
}

// breakerAllows reports whether an admin's or manager's message may be
// handled now; when the breaker has just opened, the admins are told.
func (b *Bot) breakerAllows() bool {
	open, justOpened := b.limiter.BreakerOpen(b.now())
	if justOpened {
		b.log.Error("circuit breaker open: pausing until the minute is over", "replies", b.set.Limits.RepliesPerMinute)
		b.set.Metrics.BreakerTripped()
		b.notifyAdmins("breaker", struct{ Limit int }{b.set.Limits.RepliesPerMinute})
	}
	return !open
}

// role is what the sender is to the network.
type role struct {
	admin   bool
	manager bool
	member  bool // an active member of a participating space
	// erasing: someone else who holds a live "forget me" token, and must
	// be able to send "confirm TOKEN" the same day.
	erasing bool
}

// known reports a sender the bot serves (an admin, a manager, a member,
// or someone asked to confirm their erasure), as opposed to a stranger:
// someone authenticated who is none of these.
func (r role) known() bool { return r.admin || r.manager || r.member || r.erasing }

func (r role) name() string {
	switch {
	case r.admin:
		return "admin"
	case r.manager:
		return "manager"
	case r.member:
		return "member"
	case r.erasing:
		return "erasing"
	}
	return "stranger"
}

// roleOf looks the sender up in the config's admins and the store's
// managers and rosters.
func (b *Bot) roleOf(tx *storage.Tx, sender string) (role, error) {
	var r role
	for _, a := range b.set.Admins {
		if a == sender {
			r.admin = true
		}
	}
	managed, err := tx.ManagedSpaces(sender)
	if err != nil {
		return r, err
	}
	r.manager = len(managed) > 0
	if r.admin || r.manager {
		return r, nil
	}
	now := b.now()
	all, err := tx.MembershipsOf(sender)
	if err != nil {
		return r, err
	}
	for _, m := range all {
		r.member = r.member || m.ActiveOn(now.UTC().Format(time.DateOnly))
	}
	if !r.member {
		r.erasing, err = commands.ErasureWaiting(tx, sender, now)
	}
	return r, err
}
