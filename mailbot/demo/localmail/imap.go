package localmail

import (
	"fmt"

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
	data, err := s.UserSession.Copy(numSet, dest)
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

// Idle implements imapserver.Session. It first writes the updates queued
// since the previous command: imapmemserver's Idle only writes updates that
// arrive after it starts, so mail delivered while a client was busy between
// two commands would go unannounced until the next change.
func (s *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := s.UserSession.Poll(w, true); err != nil {
		return err
	}
	return s.UserSession.Idle(w, stop)
}
