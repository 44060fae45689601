package inbox

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/coworkingvisa/mailbot/mailbot/sasl"
)

// session is one IMAP connection with the watched mailbox selected.
type session struct {
	w   *Watcher
	cfg *Config
	log *slog.Logger

	raw     *trackedConn // the TCP connection under any TLS: closing it fails every pending command
	c       *imapclient.Client
	caps    imap.CapSet
	newMail chan struct{} // signalled (never blocking) by the reader goroutine on EXISTS

	uidValidity uint32
	marker      imap.Flag // KeywordHandled, or \Seen where the mailbox takes no keywords
	keywords    bool
	ensured     map[string]bool // target mailboxes known to exist on this connection
	swept       bool            // the first round, which also hands leftovers, is done
}

// errWatchdog reports a command during which the server fell silent.
var errWatchdog = errors.New("the server sent nothing for too long, connection closed")

// guard runs one command exchange under the watchdog. go-imap v2 beta.8 sets no
// read deadline while a command waits for its answer, so if the server sends
// nothing for CommandTimeout while f runs, or ctx ends first, the TCP
// connection is closed, which makes the pending command fail. A command
// may take longer than that as long as bytes keep coming (a slow link):
// that is logged as slow, not cut (see slowlink.go).
func (s *session) guard(ctx context.Context, what string, f func() error) error {
	err, silent, took := silence(ctx, s.raw, s.cfg.CommandTimeout, f)
	switch {
	case silent:
		return fmt.Errorf("%s: %w (%v without a byte)", what, errWatchdog, s.cfg.CommandTimeout)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	if took > s.cfg.CommandTimeout {
		s.log.Warn("imap: slow link: a command took long, its bytes arriving slowly", "command", what, "took", took.Round(time.Millisecond).String())
	}
	s.w.status.answered()
	return nil
}

// dial connects and wraps TLS as configured. The connection is set up here
// rather than with imapclient.Dial* so that dialing honours ctx and the
// watchdog can close the raw TCP connection (tls.Conn.Close may block).
func dial(ctx context.Context, w *Watcher, cfg *Config, log *slog.Logger) (*session, error) {
	s := &session{w: w, cfg: cfg, log: log, newMail: make(chan struct{}, 1), ensured: map[string]bool{}}
	dctx, cancel := context.WithTimeout(ctx, cfg.CommandTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	raw := track(conn)
	s.raw = raw

	host, _, _ := net.SplitHostPort(cfg.Addr)
	tlsConfig := &tls.Config{}
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = host
	}
	opts := &imapclient.Options{
		TLSConfig: tlsConfig,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Runs on the client's reader goroutine: only signal.
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case s.newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}

	switch cfg.TLS {
	case "implicit":
		if tlsConfig.NextProtos == nil {
			tlsConfig.NextProtos = []string{"imap"} // as imapclient.DialTLS does
		}
		tc := tls.Client(raw, tlsConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		s.c = imapclient.New(tc, opts)
	case "starttls":
		err = s.guard(ctx, "STARTTLS", func() (err error) {
			s.c, err = imapclient.NewStartTLS(raw, opts) // RFC 3501 §6.2.1
			return err
		})
		if err != nil {
			raw.Close()
			return nil, err
		}
	default:
		s.c = imapclient.New(raw, opts)
	}
	return s, nil
}

// open logs in, learns the capabilities and selects the watched mailbox.
func (s *session) open(ctx context.Context) error {
	if err := s.guard(ctx, "greeting", s.c.WaitGreeting); err != nil {
		return err
	}
	if s.cfg.OAuth2 != nil {
		if err := s.authenticate(ctx); err != nil {
			return err
		}
	} else if err := s.guard(ctx, "LOGIN", func() error {
		return s.c.Login(s.cfg.Username, s.cfg.Password).Wait()
	}); err != nil {
		return err
	}
	// Ask again after login: servers such as Dovecot announce MOVE only then.
	if err := s.guard(ctx, "CAPABILITY", func() (err error) {
		s.caps, err = s.c.Capability().Wait()
		return err
	}); err != nil {
		return err
	}

	var data *imap.SelectData
	if err := s.guard(ctx, "SELECT "+s.cfg.Mailbox, func() (err error) {
		data, err = s.c.Select(s.cfg.Mailbox, nil).Wait()
		return err
	}); err != nil {
		return err
	}
	s.uidValidity = data.UIDValidity
	if old := s.w.lastUIDValidity; old != 0 && old != data.UIDValidity {
		s.log.Warn("UIDVALIDITY changed: the mailbox was recreated, old UIDs name other messages now",
			"old", old, "new", data.UIDValidity)
	}
	s.w.lastUIDValidity = data.UIDValidity

	s.keywords = keywordsAllowed(data)
	s.marker = imap.Flag(KeywordHandled)
	if !s.keywords {
		s.marker = imap.FlagSeen
		if !s.w.warnedNoKeywords {
			s.w.warnedNoKeywords = true
			s.log.Warn("mailbox takes no keywords (no \\* in PERMANENTFLAGS): marking handled mail \\Seen instead, so mail read by a person is not handled",
				"permanent_flags", data.PermanentFlags)
		}
	}
	s.log.Info("imap connected", "uidvalidity", data.UIDValidity, "messages", data.NumMessages,
		"idle", s.caps.Has(imap.CapIdle), "move", s.caps.Has(imap.CapMove), "uidplus", s.caps.Has(imap.CapUIDPlus))
	return nil
}

// authenticate logs in with an OAuth2 access token: AUTHENTICATE (RFC 3501
// section 6.2.2) with the mechanism the server offers. Its outcome goes to
// the token source, which gets a new token after a refusal. A refused
// exchange leaves the connection unusable (the clients of package sasl
// abandon it rather than let go-imap answer the server's error challenge
// with "=", which Dovecot rejects), so the session ends and the watcher dials
// again.
func (s *session) authenticate(ctx context.Context) error {
	var caps imap.CapSet
	if err := s.guard(ctx, "CAPABILITY", func() (err error) {
		caps, err = s.c.Capability().Wait()
		return err
	}); err != nil {
		return err
	}
	token, err := s.cfg.OAuth2.AccessToken(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errOAuth2, err)
	}
	client, err := sasl.Choose(caps.AuthMechanisms(), s.cfg.Username, token)
	if err != nil {
		s.cfg.OAuth2.LoginDone(token, err)
		return fmt.Errorf("%w: %w", errOAuth2, err)
	}
	mech, _, _ := client.Start()
	err = s.guard(ctx, "AUTHENTICATE "+mech, func() error { return s.c.Authenticate(client) })
	var refused *sasl.RefusedError
	var imapErr *imap.Error
	switch {
	case err == nil:
		s.cfg.OAuth2.LoginDone(token, nil)
	case errors.As(err, &refused) || errors.As(err, &imapErr) && imapErr.Code != imap.ResponseCodeUnavailable:
		// (UNAVAILABLE, RFC 5530: the server could not check the
		// token now, which says nothing against it.)
		s.cfg.OAuth2.LoginDone(token, err)
		return fmt.Errorf("%w: %w", errOAuth2, err)
	}
	return err
}

// keywordsAllowed tells whether our keyword can be stored permanently: \* in
// PERMANENTFLAGS allows new keywords; without PERMANENTFLAGS, all flags in
// FLAGS are permanent (RFC 3501 §7.1).
func keywordsAllowed(data *imap.SelectData) bool {
	flags := data.PermanentFlags
	if flags == nil {
		flags = data.Flags
	}
	return slices.Contains(flags, imap.FlagWildcard) || slices.Contains(flags, imap.Flag(KeywordHandled))
}

// round sweeps until a search finds nothing new. Messages handed once in a
// round are not handed again in it (a Leave or a failed mark must not spin);
// they are retried on the next wake-up.
func (s *session) round(ctx context.Context) error {
	handed := make(map[imap.UID]bool)
	for ctx.Err() == nil {
		// From here on, an EXISTS means mail this search may not see.
		select {
		case <-s.newMail:
		default:
		}
		uids, err := s.search(ctx)
		if err != nil {
			return err
		}
		if !s.swept {
			s.swept = true
			left, err := s.leftovers(ctx)
			if err != nil {
				return err
			}
			uids = slices.Compact(slices.Sorted(slices.Values(append(uids, left...))))
		}
		uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return handed[u] })
		if len(uids) == 0 {
			s.w.status.update(func(st *Status) { st.LastSweep, st.LastError = time.Now(), "" })
			return nil
		}
		sizes, err := s.sizes(ctx, uids)
		if err != nil {
			return err
		}
		for _, batch := range fetchBatches(sizes, s.w.fetchBudget(), s.cfg.BatchSize) {
			if ctx.Err() != nil {
				return nil
			}
			msgs, err := s.fetch(ctx, batch)
			if errors.Is(err, errWatchdog) {
				// Ask for less next time: a big batch on a slow link
				// must not time out again and again.
				s.log.Warn("imap: a fetch fell silent; the next ones ask for less", "messages", len(batch),
					"budget_bytes", s.w.shrinkFetch())
			}
			if err != nil {
				return err
			}
			s.w.growFetch()
			for _, u := range batch {
				handed[u] = true // also those expunged meanwhile, which FETCH skips
			}
			s.w.sawNew(s.uidValidity, uint32(slices.Max(batch)))
			if err := s.deliver(ctx, msgs); err != nil {
				return err
			}
		}
	}
	return nil
}

// search lists unhandled messages: UID SEARCH UNKEYWORD $MailbotHandled
// UNDELETED (RFC 3501 §6.4.4), or UNSEEN UNDELETED without keywords.
func (s *session) search(ctx context.Context) ([]imap.UID, error) {
	criteria := &imap.SearchCriteria{NotFlag: []imap.Flag{s.marker, imap.FlagDeleted}}
	var data *imap.SearchData
	if err := s.guard(ctx, "UID SEARCH", func() (err error) {
		data, err = s.c.UIDSearch(criteria, nil).Wait()
		return err
	}); err != nil {
		return nil, err
	}
	uids := data.AllUIDs()
	slices.Sort(uids)
	return uids, nil
}

// leftovers lists the messages flagged handled that are still in the
// mailbox: the process died between flagging and moving them, or the move
// failed. They are handed again, and the handler's exactly-once record
// makes that harmless, so that each goes where its disposition says. This
// holds only where handled mail leaves the mailbox (ProcessedMailbox) and
// the marker is the bot's own keyword: \Seen is also what a person reading
// the mail sets. A message quarantined by an older version (which flagged
// it) and moved back by a person is picked up here too.
func (s *session) leftovers(ctx context.Context) ([]imap.UID, error) {
	if !s.keywords || s.cfg.ProcessedMailbox == "" {
		return nil, nil
	}
	criteria := &imap.SearchCriteria{Flag: []imap.Flag{s.marker}, NotFlag: []imap.Flag{imap.FlagDeleted}}
	var data *imap.SearchData
	if err := s.guard(ctx, "UID SEARCH KEYWORD", func() (err error) {
		data, err = s.c.UIDSearch(criteria, nil).Wait()
		return err
	}); err != nil {
		return nil, err
	}
	uids := data.AllUIDs()
	if len(uids) > 0 {
		s.log.Warn("messages flagged handled but still in the mailbox (stopped between flag and move, or the move failed): handing them again",
			"uids", imap.UIDSetNum(uids...).String())
	}
	return uids, nil
}

// fetch reads whole messages with BODY.PEEK[], which leaves \Seen alone
// (RFC 3501 §6.4.5), in UID order.
func (s *session) fetch(ctx context.Context, uids []imap.UID) ([]Message, error) {
	section := &imap.FetchItemBodySection{Peek: true}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}
	var bufs []*imapclient.FetchMessageBuffer
	if err := s.guard(ctx, "UID FETCH", func() (err error) {
		bufs, err = s.c.Fetch(imap.UIDSetNum(uids...), opts).Collect()
		return err
	}); err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(bufs))
	for _, b := range bufs {
		raw := b.FindBodySection(section)
		if b.UID == 0 || raw == nil {
			// A flag update from another session can arrive mid-FETCH.
			s.log.Debug("FETCH answer without UID or body, skipped", "seq", b.SeqNum, "uid", b.UID)
			continue
		}
		msgs = append(msgs, Message{UID: uint32(b.UID), UIDValidity: s.uidValidity, Raw: raw, Mailbox: s.cfg.Mailbox})
	}
	slices.SortFunc(msgs, func(a, b Message) int { return cmp.Compare(a.UID, b.UID) })
	return msgs, nil
}

// deliver hands a fetched batch to the handler, one message at a time, and
// then carries out their dispositions together: one UID STORE and one UID
// MOVE per target mailbox for the whole batch, instead of two round trips
// per message (with Dovecot, each MOVE costs more as the inbox grows).
// Every mark still follows its message's commit: a crash before the marks
// hands the batch again, and the handler recognises what it already did.
// Both run with a context that shutdown does not cancel: the messages
// handed are finished and marked (the watchdog still bounds each command).
func (s *session) deliver(ctx context.Context, msgs []Message) error {
	stop := ctx
	ctx = context.WithoutCancel(ctx)
	var marks []mark
	for i, d := range s.handleAll(ctx, stop, msgs) {
		if mk, ok := s.plan(msgs[i], d); ok {
			marks = addMark(marks, mk)
		}
	}
	for _, mk := range marks {
		log := s.log.With("uids", mk.uids.String(), "to", mk.target)
		if len(mk.flags) > 0 && mk.target != "" && s.caps.Has(imap.CapMove) {
			if err := s.markAndMove(ctx, log, mk); err != nil {
				return err
			}
			continue
		}
		if len(mk.flags) > 0 {
			if err := s.store(ctx, mk.uids, mk.flags); err != nil {
				if err := s.soft(log, "marking failed: the messages will be handed again", err); err != nil {
					return err
				}
				continue
			}
		}
		if mk.target == "" {
			log.Info("messages marked, left in place")
			continue
		}
		if err := s.move(ctx, mk.uids, mk.target); err != nil {
			msg := "moving failed: the messages stay flagged in place, and are moved on at the next connection"
			if len(mk.flags) == 0 {
				msg = "moving to quarantine failed: the messages stay in place, unflagged, and are tried again"
			}
			if err := s.soft(log, msg, err); err != nil {
				return err
			}
			continue
		}
		log.Info("messages marked and moved")
	}
	return nil
}

// markAndMove flags messages and moves them in one round trip: the UID
// STORE and the UID MOVE are sent together (RFC 3501 §5.5: the server
// runs them in order), since waiting for the first costs as much as the
// second under a burst. A refused STORE still lets the MOVE happen: the
// handler's record knows the messages, so they need no flag to be safe. A
// refused MOVE leaves them flagged in place, moved on at the next
// connection. Only a connection failure is returned.
func (s *session) markAndMove(ctx context.Context, log *slog.Logger, mk mark) error {
	if err := s.ensureMailbox(ctx, mk.target); err != nil {
		return s.soft(log, "moving failed: the messages stay in place, unflagged, and are tried again", err)
	}
	var storeErr, moveErr error
	err := s.guard(ctx, fmt.Sprintf("UID STORE +FLAGS.SILENT %v, UID MOVE", mk.flags), func() error {
		store := s.c.Store(mk.uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: mk.flags}, nil)
		move := s.c.Move(mk.uids, mk.target)
		storeErr = store.Close()
		_, moveErr = move.Wait()
		var imapErr *imap.Error
		for _, err := range []error{storeErr, moveErr} {
			if err != nil && !errors.As(err, &imapErr) {
				return err // the connection failed
			}
		}
		return nil
	})
	if err != nil {
		return s.soft(log, "marking and moving failed: the messages will be handed again", err)
	}
	switch {
	case storeErr != nil && moveErr != nil:
		return s.soft(log, "marking and moving refused: the messages will be handed again", errors.Join(storeErr, moveErr))
	case storeErr != nil:
		log.Error("marking failed; the messages are moved all the same", "error", storeErr)
	case moveErr != nil:
		return s.soft(log, "moving failed: the messages stay flagged in place, and are moved on at the next connection", moveErr)
	}
	log.Info("messages marked and moved")
	return nil
}

// mark is what to do on the server with some handled messages: the flags
// to add and the mailbox to move them to ("" = leave them in place).
type mark struct {
	flags  []imap.Flag
	target string
	uids   imap.UIDSet
}

// addMark adds one message's mark to the batch's, joining it to a mark with
// the same flags and target.
func addMark(marks []mark, mk mark) []mark {
	for i := range marks {
		if marks[i].target == mk.target && slices.Equal(marks[i].flags, mk.flags) {
			marks[i].uids = append(marks[i].uids, mk.uids...)
			return marks
		}
	}
	return append(marks, mk)
}

// plan logs a message's disposition and says how to mark it; ok is false
// when it is to be left as it is.
func (s *session) plan(m Message, d Disposition) (mk mark, ok bool) {
	log := s.log.With("uid", m.UID, "uidvalidity", m.UIDValidity, "action", d.Action)
	if d.Reason != "" {
		log = log.With("reason", d.Reason)
	}
	// The handler logged what it did; what the inbox does is logged once
	// it is done (deliver).
	switch d.Action {
	case Leave:
		log.Info("message left in the inbox for a later sweep")
		return mark{}, false
	case Handled:
		mk.flags, mk.target = []imap.Flag{s.marker, imap.FlagSeen}, s.cfg.ProcessedMailbox
	case SetAside:
		mk.flags, mk.target = []imap.Flag{s.marker, imap.FlagSeen}, d.Mailbox
		if s.keywords {
			mk.flags = append(mk.flags, KeywordRejected)
		}
	case Quarantine:
		// No flag: moved back, it is unhandled. Not moved (a failure),
		// it is tried again.
		mk.target = d.Mailbox
	default:
		log.Error("handler returned an unknown action, message left in place")
		return mark{}, false
	}
	log.Debug("message to be marked and moved", "to", mk.target)
	mk.flags = slices.Compact(mk.flags) // \Seen twice without keywords
	mk.uids = imap.UIDSetNum(imap.UID(m.UID))
	return mk, true
}

// handleAll hands a batch to the handler and returns the dispositions of
// the messages handled: all at once to a BatchHandler, else one at a
// time, stopping at the first message after stop is done.
func (s *session) handleAll(ctx, stop context.Context, msgs []Message) []Disposition {
	if bh, ok := s.w.h.(BatchHandler); ok && len(msgs) > 1 {
		return s.handleBatch(ctx, bh, msgs)
	}
	var out []Disposition
	for _, m := range msgs {
		if stop.Err() != nil {
			break
		}
		out = append(out, s.handle(ctx, m))
	}
	return out
}

// handleBatch calls HandleBatch; a panic, or an answer of the wrong
// length, leaves every message of the batch in place.
func (s *session) handleBatch(ctx context.Context, bh BatchHandler, msgs []Message) (out []Disposition) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("handler panicked, messages left in place", "messages", len(msgs), "panic", v, "stack", string(debug.Stack()))
			out = make([]Disposition, len(msgs))
		}
	}()
	out = bh.HandleBatch(ctx, msgs)
	if len(out) != len(msgs) {
		s.log.Error("handler answered for a batch of the wrong size, messages left in place", "messages", len(msgs), "answers", len(out))
		out = make([]Disposition, len(msgs))
	}
	return out
}

// handle calls the handler; a panic is logged and the message left, so one
// bad message cannot take the daemon down.
func (s *session) handle(ctx context.Context, m Message) (d Disposition) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("handler panicked, message left in place", "uid", m.UID, "panic", v, "stack", string(debug.Stack()))
			d = Disposition{Action: Leave}
		}
	}()
	return s.w.h.Handle(ctx, m)
}

// soft logs a failed mark or move. A refusal by the server (NO/BAD) is
// logged and the sweep goes on; any other failure means the connection is
// gone, so it is returned to reconnect.
func (s *session) soft(log *slog.Logger, msg string, err error) error {
	log.Error(msg, "error", err)
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		return nil
	}
	return err
}

func (s *session) store(ctx context.Context, uid imap.UIDSet, flags []imap.Flag) error {
	return s.guard(ctx, fmt.Sprintf("UID STORE +FLAGS.SILENT %v", flags), func() error {
		return s.c.Store(uid, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: flags}, nil).Close()
	})
}

// move moves marked messages to target: UID MOVE where the server has it
// (RFC 6851); otherwise UID COPY, and only if that succeeded \Deleted (with
// the marker, which tells the original as the bot's) and UID EXPUNGE of
// those UIDs alone (RFC 4315 §2.1), or without UIDPLUS a plain EXPUNGE
// when it is safe (expungeOurs). (imapclient's own Move fallback deletes
// even when COPY failed, so it is never used.)
func (s *session) move(ctx context.Context, uid imap.UIDSet, target string) error {
	if err := s.ensureMailbox(ctx, target); err != nil {
		return err
	}
	if s.caps.Has(imap.CapMove) {
		return s.guard(ctx, "UID MOVE", func() error {
			_, err := s.c.Move(uid, target).Wait()
			return err
		})
	}
	if err := s.guard(ctx, "UID COPY", func() error {
		_, err := s.c.Copy(uid, target).Wait()
		return err
	}); err != nil {
		return err
	}
	if err := s.store(ctx, uid, []imap.Flag{imap.FlagDeleted, s.marker}); err != nil {
		return err
	}
	if !s.caps.Has(imap.CapUIDPlus) {
		return s.expungeOurs(ctx)
	}
	return s.guard(ctx, "UID EXPUNGE", func() error {
		return s.c.UIDExpunge(uid).Close()
	})
}

// expungeOurs expunges without UIDPLUS. A plain EXPUNGE removes every
// message flagged \Deleted (RFC 3501 §6.4.3), so it is sent only when all
// of them carry the bot's keyword (the originals of what it copied);
// otherwise the bot's stay flagged \Deleted (never handed again)
// and the log says once why. (Another client flagging a message \Deleted
// between the search and the EXPUNGE, one round trip, would lose it: a
// message it meant to delete.)
func (s *session) expungeOurs(ctx context.Context) error {
	warn := func(msg string, args ...any) {
		if !s.w.warnedNoExpunge {
			s.w.warnedNoExpunge = true
			s.log.Warn(msg, args...)
		}
	}
	if !s.keywords {
		warn("the server has neither MOVE nor UIDPLUS and the mailbox takes no keywords: handled mail is copied and left flagged \\Deleted, " +
			"not expunged, since EXPUNGE would also remove what others flagged \\Deleted; expunge the mailbox from a mail client now and then")
		return nil
	}
	criteria := &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}, NotFlag: []imap.Flag{s.marker}}
	var data *imap.SearchData
	if err := s.guard(ctx, "UID SEARCH DELETED UNKEYWORD", func() (err error) {
		data, err = s.c.UIDSearch(criteria, nil).Wait()
		return err
	}); err != nil {
		return err
	}
	if others := data.AllUIDs(); len(others) > 0 {
		warn("the server has neither MOVE nor UIDPLUS and other messages are flagged \\Deleted: handled mail is copied and left flagged \\Deleted, "+
			"not expunged, since EXPUNGE would remove those too; it is expunged once they are gone", "others", imap.UIDSetNum(others...).String())
		return nil
	}
	return s.guard(ctx, "EXPUNGE", func() error { return s.c.Expunge().Close() })
}

// ensureMailbox creates target unless it exists (RFC 3501 §6.3.3), once per
// connection.
func (s *session) ensureMailbox(ctx context.Context, name string) error {
	if s.ensured[name] {
		return nil
	}
	exists := func() error {
		return s.guard(ctx, "STATUS "+name, func() error {
			_, err := s.c.Status(name, &imap.StatusOptions{UIDValidity: true}).Wait()
			return err
		})
	}
	var imapErr *imap.Error
	err := exists()
	if errors.As(err, &imapErr) {
		err = s.guard(ctx, "CREATE "+name, func() error { return s.c.Create(name, nil).Wait() })
		if errors.As(err, &imapErr) {
			err = exists() // created meanwhile by someone else?
		} else if err == nil {
			s.log.Info("created mailbox", "name", name)
		}
	}
	if err != nil {
		return err
	}
	s.ensured[name] = true
	return nil
}

// wait returns when there may be new mail: with IDLE on EXISTS, otherwise on
// the poll timer; in both cases also on Poke, on IdleRestart/PollInterval and
// when ctx is done. While mail is coming in (Config.FastPoll) it polls
// instead.
func (s *session) wait(ctx context.Context) error {
	if s.fastPolling() {
		return s.fastPoll(ctx)
	}
	if s.caps.Has(imap.CapIdle) {
		return s.idle(ctx)
	}
	t := time.NewTimer(s.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-s.c.Closed():
		return errors.New("connection closed by server")
	case <-s.newMail:
	case <-s.w.poke:
	case <-t.C:
	}
	// NOOP lets the server report news (RFC 3501 §6.1.2) and proves the
	// connection is alive.
	return s.guard(ctx, "NOOP", func() error { return s.c.Noop().Wait() })
}

// fastPolling reports whether new mail was handed over within
// FastPollFor: more may follow, and a NOOP sees it sooner than IDLE.
func (s *session) fastPolling() bool {
	return s.cfg.FastPoll > 0 && !s.w.lastMail.IsZero() && s.w.now().Sub(s.w.lastMail) < s.cfg.FastPollFor
}

// fastPoll sends a NOOP every FastPoll (RFC 3501 §6.1.2: the server
// answers it with what changed, EXISTS for new mail) until the server
// reports new mail, a poke comes, PollInterval has passed (the safety-net
// sweep), or mail stopped coming for FastPollFor: then it returns, and
// the next wait idles. Messages left in the mailbox are not handed again
// at every NOOP: only new mail ends the wait, as with IDLE.
func (s *session) fastPoll(ctx context.Context) error {
	t := time.NewTimer(s.cfg.FastPoll)
	defer t.Stop()
	sweep := time.NewTimer(s.cfg.PollInterval)
	defer sweep.Stop()
	for s.fastPolling() {
		select {
		case <-ctx.Done():
			return nil
		case <-s.c.Closed():
			return errors.New("connection closed by server")
		case <-s.newMail:
			return nil
		case <-s.w.poke:
			return nil
		case <-sweep.C:
			return nil
		case <-t.C:
		}
		if err := s.guard(ctx, "NOOP", func() error { return s.c.Noop().Wait() }); err != nil {
			return err
		}
		t.Reset(s.cfg.FastPoll)
	}
	return nil
}

// idle waits in IDLE (RFC 2177). Ending it needs an answer from the server
// within CommandTimeout, which also detects a connection that died silently
// while idle: IDLE is ended at least every IdleRestart.
func (s *session) idle(ctx context.Context) error {
	var cmd *imapclient.IdleCommand
	if err := s.guard(ctx, "IDLE", func() (err error) {
		cmd, err = s.c.Idle()
		return err
	}); err != nil {
		return err
	}
	t := time.NewTimer(min(s.cfg.PollInterval, s.cfg.IdleRestart))
	defer t.Stop()
	select {
	case <-s.c.Closed():
		return errors.New("connection closed by server while idling")
	case <-ctx.Done():
	case <-s.newMail:
	case <-s.w.poke:
	case <-t.C:
	}
	return s.guard(context.WithoutCancel(ctx), "DONE (end IDLE)", func() error {
		if err := cmd.Close(); err != nil {
			return err
		}
		return cmd.Wait()
	})
}

// logout ends the session politely (RFC 3501 §6.1.3) on shutdown.
func (s *session) logout(ctx context.Context) {
	err := s.guard(context.WithoutCancel(ctx), "LOGOUT", func() error { return s.c.Logout().Wait() })
	if err != nil {
		s.log.Debug("logout", "error", err)
	}
	s.log.Info("imap logged out")
}
