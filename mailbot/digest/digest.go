// Package digest sends the weekly digests: to each space's managers, at the
// configured weekday and time in the space's own time zone, the roster, the
// week's changes and visa activity, and the roster as a CSV attachment; to
// the network admins, a digest of the whole network.
//
// The scheduler is a second producer into the outbox, beside the command
// pipeline. Exactly once per week holds across restarts because the period
// done is recorded (storage Tx.SetPeriod) in the same transaction that
// queues the digests: a crash before the commit leaves neither, after it
// both. A bot that was down at the hour sends the missed digest once on
// start; one down for whole weeks sends only the latest, covering every
// change since the last digest that went out.
package digest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/metrics"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// Settings are the parts of the configuration the digests use.
type Settings struct {
	BotAddress, BotName string
	Admins              []string // lowercased; each gets the network digest
	// The weekly slot, in each space's zone (the network's: DefaultTZ).
	Weekday              time.Weekday
	Hour, Minute, Second int
	// DefaultTZ is the zone of spaces that name none, and of the network
	// digest.
	DefaultTZ *time.Location
	// Metrics counts the digests queued; nil counts nothing.
	Metrics *metrics.Metrics
	// Language is the network's (bot.language): of the network digest, and
	// of spaces that chose none.
	Language string
	// RosterConfirmDays: a roster neither confirmed nor changed for this
	// many days is reminded of in its space's digest; past twice as long
	// the network digest lists it (digest.roster_confirm_days; 0 never).
	RosterConfirmDays int
}

// SettingsFrom takes the digest settings out of a loaded configuration.
func SettingsFrom(cfg *config.Config) (Settings, error) {
	sch, err := cfg.Digest.Schedule()
	if err != nil {
		return Settings{}, err
	}
	return Settings{
		BotAddress: cfg.Bot.Address, BotName: cfg.Bot.Name, Admins: cfg.Admins,
		Weekday: sch.Weekday, Hour: sch.Hour, Minute: sch.Minute, Second: sch.Second,
		DefaultTZ: sch.Location, Language: cfg.Bot.Language, RosterConfirmDays: cfg.Digest.RosterConfirmDays,
	}, nil
}

// Period names in the store: a space's is SpacePeriod+id.
const (
	SpacePeriod   = "digest:"
	NetworkPeriod = "digest:network"
)

// safetyNet: Run looks for due digests at least this often, so that a
// space added (or given a zone) after Run computed its next wake is not
// late by more than this.
const safetyNet = time.Minute

// Scheduler sends the weekly digests. It is safe for concurrent use.
type Scheduler struct {
	db    *storage.DB
	tmpl  *templates.Set
	set   Settings
	sched schedule
	log   *slog.Logger
	now   func() time.Time
	wake  func()

	mu     sync.Mutex
	zones  map[string]*time.Location
	future map[string]bool // spaces whose creation time was found in the future (logged once)
}

// New makes a scheduler over an open store. now is the clock (nil means
// time.Now); wake is called after digests were queued, so the outbox sends
// them at once (nil for none); log may be nil.
func New(db *storage.DB, tmpl *templates.Set, set Settings, log *slog.Logger, now func() time.Time, wake func()) *Scheduler {
	if now == nil {
		now = time.Now
	}
	if wake == nil {
		wake = func() {}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if set.DefaultTZ == nil {
		set.DefaultTZ = time.UTC
	}
	if set.BotName == "" {
		set.BotName = "Coworking Visa"
	}
	return &Scheduler{
		db: db, tmpl: tmpl, set: set, log: log, now: now, wake: wake,
		sched: schedule{weekday: set.Weekday, hour: set.Hour, minute: set.Minute, second: set.Second},
		zones: map[string]*time.Location{},
	}
}

// Run sends digests until ctx is done: at once (a digest missed while the
// bot was down goes out now), then at each next due instant, and at least
// every minute. Failures are logged and tried again at the next pass. It
// returns nil when ctx is done.
func (s *Scheduler) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if _, err := s.SendDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("digest: sending failed; will try again", "error", err)
		}
		wait := safetyNet
		next, err := s.nextDue()
		if err != nil {
			s.log.Error("digest: cannot compute the next digest time", "error", err)
		} else if !next.IsZero() {
			// The clock may read a hair before the instant when the timer
			// fires: then the pass finds nothing and waits again briefly.
			wait = min(wait, max(next.Sub(s.now()), 10*time.Millisecond))
		}
		timer.Reset(wait)
	}
}

// scheduleOf is a space's weekly slot: the network's, with the space's own
// day and time where it set them (update space … digest_day= digest_time=).
func (s *Scheduler) scheduleOf(sp storage.Space) schedule {
	sch := s.sched
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(sp.DigestDay, d.String()) {
			sch.weekday = d
		}
	}
	if t, err := time.Parse("15:04", sp.DigestTime); err == nil {
		sch.hour, sch.minute, sch.second = t.Hour(), t.Minute(), 0
	}
	return sch
}

// nextDue is the earliest slot after now over every space and the network.
func (s *Scheduler) nextDue() (time.Time, error) {
	now := s.now()
	next := s.sched.next(now, s.set.DefaultTZ)
	err := s.db.View(func(tx *storage.Tx) error {
		spaces, err := tx.Spaces()
		for _, sp := range spaces {
			if t := s.scheduleOf(sp).next(now, s.zone(sp)); t.Before(next) {
				next = t
			}
		}
		return err
	})
	return next, err
}

// SendDue makes one pass: it queues the digest of every space whose current
// period is due and not yet recorded, each space in a transaction of its
// own with the record of its period, then the network digest likewise. It
// returns how many messages it queued.
func (s *Scheduler) SendDue(ctx context.Context) (int, error) {
	// Find the due spaces in one read: a write transaction (and its fsync)
	// per space and pass would cost a network of 10,000 spaces 10,000
	// commits a minute. sendSpace checks again inside its own transaction.
	var ids []string
	var visa *visaTally
	now := s.now()
	err := s.db.View(func(tx *storage.Tx) error {
		spaces, err := tx.Spaces()
		for _, sp := range spaces {
			due, key := s.scheduleOf(sp).current(now, s.zone(sp))
			if !due.IsZero() && tx.Period(SpacePeriod+sp.ID) < key && !s.createdOf(sp, now).After(due) {
				ids = append(ids, sp.ID)
			}
		}
		if err == nil && len(ids) > 0 {
			// The visa days are counted once for the pass, not per space.
			visa, err = tallyVisa(tx)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("digest: %w", err)
	}
	total := 0
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.sendSpace(id, visa)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("digest of %s: %w", id, err))
		}
	}
	n, err := s.sendNetwork()
	total += n
	if err != nil {
		errs = append(errs, fmt.Errorf("network digest: %w", err))
	}
	return total, errors.Join(errs...)
}

// createdOf is when a space was created, as the schedule counts it: a
// creation time in the future (the clock ran ahead when the space was
// added, and was set back since) is not believed, and the space counts as
// created long ago, so that it gets its digest at the next slot, not when
// the clock catches up with the bad time.
func (s *Scheduler) createdOf(sp storage.Space, now time.Time) time.Time {
	if !sp.Created.After(now.Add(time.Minute)) {
		return sp.Created
	}
	s.mu.Lock()
	first := !s.future[sp.ID]
	if s.future == nil {
		s.future = map[string]bool{}
	}
	s.future[sp.ID] = true
	s.mu.Unlock()
	if first {
		s.log.Warn("digest: a space was created in the future; the clock was set back; its creation time is ignored",
			"space", sp.ID, "created", sp.Created.Format(time.RFC3339))
	}
	return time.Time{}
}

// sendSpace queues one space's digest if its period is due; visa is the
// pass's count of visa days.
func (s *Scheduler) sendSpace(id string, visa *visaTally) (int, error) {
	now := s.now()
	var n int
	var key string
	err := s.db.Update(func(tx *storage.Tx) error {
		n = 0
		sp, ok, err := tx.Space(id)
		if err != nil || !ok {
			return err // removed since the list was read
		}
		loc, sch := s.zone(sp), s.scheduleOf(sp)
		due, k := sch.current(now, loc)
		key = k
		last := tx.Period(SpacePeriod + id)
		if due.IsZero() || last >= key {
			return nil // done (a later key: the zone or the schedule changed)
		}
		created := s.createdOf(sp, now)
		if created.After(due) {
			return nil // a new space waits for its first slot
		}
		w := window{
			Start: since(sch, last, due, created, loc), End: due, AsOf: now, Loc: loc,
			Day: due.In(loc), FileDate: key,
		}
		m, err := s.spaceDigest(tx, sp, w, visa)
		if err != nil {
			return err
		}
		if n, err = s.enqueue(tx, m, now); err != nil {
			return err
		}
		if len(m.To) == 0 {
			s.log.Warn("digest: space has no managers; nothing sent this week", "space", id, "period", key)
		}
		return tx.SetPeriod(SpacePeriod+id, key)
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.log.Info("digest queued", "space", id, "period", key, "messages", n)
		s.set.Metrics.DigestsQueued(metrics.SpaceDigest, n)
		s.wake()
	}
	return n, nil
}

// sendNetwork queues the admins' digest if its period is due.
func (s *Scheduler) sendNetwork() (int, error) {
	now := s.now()
	loc := s.set.DefaultTZ
	due, key := s.sched.current(now, loc)
	var n int
	err := s.db.Update(func(tx *storage.Tx) error {
		n = 0
		last := tx.Period(NetworkPeriod)
		if due.IsZero() || last >= key {
			return nil
		}
		// The network exists from its first space on: a new installation
		// waits for the first slot after that, as a new space does.
		born, err := networkBorn(tx)
		if err != nil {
			return err
		}
		if born.IsZero() || born.After(due) {
			return nil
		}
		if len(s.set.Admins) > 0 {
			w := window{
				Start: since(s.sched, last, due, born, loc), End: due, AsOf: now, Loc: loc,
				Day: due.In(loc), FileDate: key,
			}
			m, err := s.networkDigest(tx, w, nil)
			if err != nil {
				return err
			}
			if n, err = s.enqueue(tx, m, now); err != nil {
				return err
			}
		}
		return tx.SetPeriod(NetworkPeriod, key)
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.log.Info("network digest queued", "period", key, "messages", n)
		s.set.Metrics.DigestsQueued(metrics.NetworkDigest, n)
		s.wake()
	}
	return n, nil
}

// networkBorn is when the first space still in the network was created;
// zero when there is none.
func networkBorn(tx *storage.Tx) (time.Time, error) {
	spaces, err := tx.Spaces()
	if err != nil {
		return time.Time{}, err
	}
	var born time.Time
	for _, sp := range spaces {
		if born.IsZero() || sp.Created.Before(born) {
			born = sp.Created
		}
	}
	return born, nil
}

// since is where a digest's window starts: at the slot of the last digest
// sent (last, a period key) if it is not after due, else at the slot before
// due; never before the space was created.
func since(sch schedule, last string, due, created time.Time, loc *time.Location) time.Time {
	start := sch.previous(due, loc)
	if t, ok := sch.dueOf(last, loc); ok && !t.After(due) {
		start = t
	}
	if created.After(start) {
		// Windows are open at the start (Start < At): begin just before
		// the creation, so the changes made with it are listed.
		start = created.Add(-time.Nanosecond)
	}
	return start
}

// SendNow builds digests now, whatever the schedule, covering everything
// since the last scheduled digest: of one space (space != "") or of every
// space and the network. With dryRun it prints their text versions to w and
// queues nothing; otherwise it queues them, lists them on w (may be nil),
// and wakes the outbox. It records no period, so the weekly digests still
// go out on their day.
func (s *Scheduler) SendNow(space string, dryRun bool, w io.Writer) error {
	if w == nil {
		w = io.Discard
	}
	now := s.now()
	var mails []letter
	build := func(tx *storage.Tx) error {
		mails = nil
		visa, err := tallyVisa(tx)
		if err != nil {
			return err
		}
		var spaces []storage.Space
		if space != "" {
			sp, ok, err := tx.Space(space)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("digest: no space %q", space)
			}
			spaces = []storage.Space{sp}
		} else {
			var err error
			if spaces, err = tx.Spaces(); err != nil {
				return err
			}
		}
		for _, sp := range spaces {
			loc, sch := s.zone(sp), s.scheduleOf(sp)
			due, _ := sch.current(now, loc)
			day := now.In(loc)
			win := window{
				Start: since(sch, tx.Period(SpacePeriod+sp.ID), due, sp.Created, loc), End: now, AsOf: now, Loc: loc,
				Day: day, FileDate: day.Format(dateKey), OnRequest: true,
			}
			m, err := s.spaceDigest(tx, sp, win, visa)
			if err != nil {
				return fmt.Errorf("digest of %s: %w", sp.ID, err)
			}
			if len(m.To) == 0 {
				fmt.Fprintf(w, "%s has no managers: no digest.\n", sp.ID)
			}
			mails = append(mails, m)
		}
		if space == "" {
			loc := s.set.DefaultTZ
			due, _ := s.sched.current(now, loc)
			day := now.In(loc)
			win := window{
				Start: since(s.sched, tx.Period(NetworkPeriod), due, time.Time{}, loc), End: now, AsOf: now, Loc: loc,
				Day: day, FileDate: day.Format(dateKey), OnRequest: true,
			}
			m, err := s.networkDigest(tx, win, visa)
			if err != nil {
				return fmt.Errorf("network digest: %w", err)
			}
			if len(m.To) == 0 {
				fmt.Fprintln(w, "No admins in the configuration: no network digest.")
			}
			mails = append(mails, m)
		}
		if dryRun {
			return nil
		}
		for _, m := range mails {
			if _, err := s.enqueue(tx, m, now); err != nil {
				return err
			}
		}
		return nil
	}
	if dryRun {
		if err := s.db.View(build); err != nil {
			return err
		}
		for _, m := range mails {
			for _, to := range m.To {
				fmt.Fprintf(w, "==== To: %s\n==== Subject: %s\n", to, m.Subject)
				for _, f := range m.Files {
					fmt.Fprintf(w, "==== Attachment: %s (%d bytes)\n", f.Name, len(f.Data))
				}
				fmt.Fprintf(w, "\n%s\n\n", m.Text)
			}
		}
		return nil
	}
	if err := s.db.Update(build); err != nil {
		return err
	}
	n := 0
	for _, m := range mails {
		for _, to := range m.To {
			fmt.Fprintf(w, "Queued %q to %s.\n", m.Subject, to)
			n++
		}
	}
	if n > 0 {
		s.log.Info("digests queued on request", "space", space, "messages", n)
		s.wake()
	}
	return nil
}

// zone is the time zone of a space's digest: its own, else the default.
func (s *Scheduler) zone(sp storage.Space) *time.Location {
	if sp.TZ == "" {
		return s.set.DefaultTZ
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if loc, ok := s.zones[sp.TZ]; ok {
		return loc
	}
	loc, err := time.LoadLocation(sp.TZ)
	if err != nil {
		s.log.Warn("digest: unknown time zone; using the default", "space", sp.ID, "tz", sp.TZ, "default", s.set.DefaultTZ.String())
		loc = s.set.DefaultTZ
	}
	s.zones[sp.TZ] = loc
	return loc
}
