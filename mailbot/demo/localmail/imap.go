package localmail

import (
	"fmt"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// imapSession is an imapmemserver session whose users log in by full
// address, in any case, and whose MOVE reports expunges correctly.
type imapSession struct {
	*imapmemserver.UserSession // nil until Login succeeds

	srv *Server
}

var (
	_ imapserver.Session     = (*imapSession)(nil)
	_ imapserver.SessionMove = (*imapSession)(nil)
)

// Login implements imapserver.Session.
func (s *imapSession) Login(username, password string) error {
	u, _, err := s.srv.login(username, password)
	if err != nil {
		return imapserver.ErrAuthFailed
	}
	s.UserSession = imapmemserver.NewUserSession(u)
	return nil
}

// Move implements MOVE (RFC 6851) as COPY, then STORE \Deleted and UID
// EXPUNGE of exactly the copied messages.
//
// imapmemserver's own Move writes "* 0 EXPUNGE" for each moved message and
// then the real EXPUNGE responses on the next poll, so clients count every
// moved message twice. Here the expunges are only queued, and the server
// writes them after the COPYUID response and before the tagged OK, as
// RFC 6851 sections 3.3 and 4.3 ask.
func (s *imapSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	data, err := s.Copy(numSet, dest)
	if err != nil {
		return err
	}
	if len(data.SourceUIDs) == 0 {
		return nil // nothing matched: a plain OK
	}
	uids := data.SourceUIDs
	deleted := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := s.UserSession.Store(nil, uids, deleted, &imap.StoreOptions{}); err != nil {
		return fmt.Errorf("move: flag copied messages deleted: %w", err)
	}
	if err := s.UserSession.Expunge(nil, &uids); err != nil {
		return fmt.Errorf("move: expunge copied messages: %w", err)
	}
	return w.WriteCopyData(data)
}

// Delete implements imapserver.Session, refusing to delete INBOX as RFC 9051
// section 6.3.5 requires: mail is delivered there.
func (s *imapSession) Delete(name string) error {
	if name == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "INBOX cannot be deleted"}
	}
	return s.UserSession.Delete(name)
}

// Rename implements imapserver.Session. Renaming INBOX moves its messages to
// the new name and leaves an empty INBOX behind (RFC 9051 section 6.3.6).
func (s *imapSession) Rename(oldName, newName string, options *imap.RenameOptions) error {
	if err := s.UserSession.Rename(oldName, newName, options); err != nil {
		return err
	}
	if oldName == "INBOX" {
		if err := s.UserSession.Create("INBOX", nil); err != nil {
			return fmt.Errorf("recreate INBOX after rename: %w", err)
		}
	}
	return nil
}

// Idle implements imapserver.Session: it announces new mail at once,
// whenever it arrived.
//
// imapmemserver's Idle writes only the updates queued after it has
// subscribed to them, once it runs: mail delivered while a client was busy
// between two commands, or just as it started idling, would be queued but
// go unannounced until the next change. So the session subscribes to the
// server's arrivals first, then writes what is queued, and runs
// imapmemserver's Idle (which announces changes made by other sessions)
// only until the next arrival, which the following round writes.
func (s *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	arrived := s.srv.arrivals.subscribe()
	defer s.srv.arrivals.unsubscribe(arrived)
	for {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		next, quit := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(next)
			select {
			case <-arrived:
			case <-stop:
			case <-quit:
			}
		}()
		err := s.UserSession.Idle(w, next)
		close(quit)
		if err != nil {
			return err
		}
		<-next // (imapmemserver's Idle returns at once with no mailbox selected)
		select {
		case <-stop:
			return nil
		default:
		}
	}
}

// Append implements imapserver.Session, waking the sessions in IDLE.
func (s *imapSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	data, err := s.UserSession.Append(mailbox, r, options)
	if err == nil {
		s.srv.arrivals.notify()
	}
	return data, err
}

// Copy implements imapserver.Session, waking the sessions in IDLE.
func (s *imapSession) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, err := s.UserSession.Copy(numSet, dest)
	if err == nil {
		s.srv.arrivals.notify()
	}
	return data, err
}

// arrivals tells the IMAP sessions in IDLE that mail arrived somewhere: a
// delivery, an APPEND, a COPY or MOVE. A session woken for another user's
// mailbox finds nothing new and idles on.
type arrivals struct {
	mu   sync.Mutex
	subs map[chan struct{}]bool
}

// subscribe returns a channel that receives a value after each arrival.
func (a *arrivals) subscribe() chan struct{} {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.subs == nil {
		a.subs = map[chan struct{}]bool{}
	}
	a.subs[ch] = true
	return ch
}

func (a *arrivals) unsubscribe(ch chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.subs, ch)
}

func (a *arrivals) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}
