package mailstack

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TakeMessages waits until mailbox of user holds at least n messages for
// which match is true, removes them (\Deleted and EXPUNGE) and returns
// their raw bytes, in UID order. A test uses it for mail it expects but is
// not about (a welcome to a new manager), so that the mail it is about
// keeps its place in the mailbox. It polls as WaitForMessages does.
func (s *Stack) TakeMessages(ctx context.Context, user, password, mailbox string, n int, match func(raw []byte) bool) ([][]byte, error) {
	c, err := s.openMailbox(ctx, user, password, mailbox, false)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for {
		found, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
		if err != nil {
			return nil, fmt.Errorf("mailstack: UID SEARCH in %s of %s: %w", mailbox, user, waitErr(ctx, err))
		}
		if uids := found.AllUIDs(); len(uids) > 0 {
			raws, err := fetchAll(ctx, c, uids)
			if err != nil {
				return nil, err
			}
			var taken []imap.UID
			var out [][]byte
			for i, raw := range raws {
				if match(raw) {
					taken, out = append(taken, uids[i]), append(out, raw)
				}
			}
			if len(taken) >= n {
				set := imap.UIDSetNum(taken...)
				store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
				if err := c.Store(set, store, nil).Close(); err != nil {
					return nil, fmt.Errorf("mailstack: UID STORE in %s of %s: %w", mailbox, user, waitErr(ctx, err))
				}
				if err := c.UIDExpunge(set).Close(); err != nil {
					return nil, fmt.Errorf("mailstack: UID EXPUNGE in %s of %s: %w", mailbox, user, waitErr(ctx, err))
				}
				return out, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("mailstack: %s of %s holds fewer than %d such messages: %w", mailbox, user, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if err := c.Noop().Wait(); err != nil {
			return nil, fmt.Errorf("mailstack: NOOP in %s of %s: %w", mailbox, user, waitErr(ctx, err))
		}
	}
}
