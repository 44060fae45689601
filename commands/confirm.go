package commands

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Confirmation tokens. A change that can wipe a roster (an import with
// replace; removals, deactivations and renames past the day's limit, see
// guard.go) is held, and the manager confirms it by replying
// with "confirm TOKEN". Never by a link: link scanners in mail systems
// would follow it. A token is random (crypto/rand), works once, only for the
// manager it was given to, and only for 72 hours.
const (
	pendingTTL = 72 * time.Hour
	// pendingKeep is how long an expired token is kept so that a late
	// confirmation hears "expired" rather than "unknown".
	pendingKeep = 30 * 24 * time.Hour
	// tokenLen characters of tokenAlphabet: 50 bits.
	tokenLen = 10
	// tokenAlphabet is Crockford's base32: digits and capitals without
	// I, L, O and U, so a token survives being read aloud or retyped.
	tokenAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// Kinds of pending change. pendingRemove is the kind of held removals
// written before deactivations and renames were held too; such records
// are still confirmed.
const (
	pendingReplace = "replace"
	pendingChanges = "changes"
	pendingRemove  = "remove"
	pendingManager = "manager" // the removal of a space's last manager (admin.go)
)

// maxPendingPerManager bounds the changes one manager has waiting for
// confirmation. A new one past it drops the oldest, and the reply says so:
// the manager's latest request is the one they mean, and a token nobody
// uses expires anyway.
const maxPendingPerManager = 5

// newToken draws a token that no pending change uses yet, in its stored
// form (no dashes). A token holds a digit, so that typed in lower case
// without its dashes it is still told from a word ("confirm attendance"
// is prose): about one draw in forty has none and is drawn again.
func (x *executor) newToken() (string, error) {
	for range 64 {
		b := make([]byte, tokenLen)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("draw a token: %w", err)
		}
		for i := range b {
			b[i] = tokenAlphabet[b[i]&31] // 256 is a multiple of 32: uniform
		}
		if !strings.ContainsAny(string(b), "0123456789") {
			continue
		}
		if _, taken, err := x.tx.Pending(string(b)); err != nil {
			return "", err
		} else if !taken {
			return string(b), nil
		}
	}
	return "", fmt.Errorf("draw a token: every draw was taken")
}

// showToken groups a token for reading: K7QX-4M2P-9R.
func showToken(t string) string {
	if len(t) != tokenLen {
		return t
	}
	return t[:4] + "-" + t[4:8] + "-" + t[8:]
}

// tokenKey turns a token as a person typed it back into its stored form:
// case, dashes, spaces and trailing punctuation do not matter, and the
// letters Crockford's alphabet leaves out read as the digits they resemble.
func tokenKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		case !strings.ContainsRune(tokenAlphabet, r):
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Prune removes what the command language keeps only for a while: tokens
// long expired (kept pendingKeep so that a late confirmation hears
// "expired"), the files of expired tokens, and removal records out of the
// rolling day. It reports how many records went. The daemon calls it
// hourly; holding a new change does too.
func Prune(tx *storage.Tx, now time.Time) (int, error) {
	a, err := tx.DeleteExpiredPending(now.Add(-pendingKeep))
	if err != nil {
		return 0, err
	}
	b, err := tx.ReleaseExpiredPendingFiles(now)
	if err != nil {
		return 0, err
	}
	c, err := tx.PruneRemovals("", now.Add(-rollingDay))
	return a + b + c, err
}

// holdPending stores a change for confirmation by this actor, with the
// file it applies (nil for none), and returns the token as shown to people,
// when it expires, and notes for the reply (an older change it dropped).
// Long-expired tokens, the files of expired ones and removal records out of
// the rolling day are cleared on the way.
func (x *executor) holdPending(space, kind string, payload any, file []byte) (string, time.Time, []string, error) {
	now := x.env.Now
	if _, err := Prune(x.tx, now); err != nil {
		return "", time.Time{}, nil, err
	}
	notes, err := x.makeRoomForPending()
	if err != nil {
		return "", time.Time{}, nil, err
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return "", time.Time{}, nil, fmt.Errorf("encode pending %s: %w", kind, err)
	}
	tok, err := x.newToken()
	if err != nil {
		return "", time.Time{}, nil, err
	}
	expires := now.Add(pendingTTL)
	p := storage.Pending{Token: tok, Actor: x.actor.Address, Space: space, Kind: kind, Payload: data, Expires: expires}
	if file != nil {
		err = x.tx.PutPendingWithFile(p, file)
	} else {
		err = x.tx.PutPending(p)
	}
	if err != nil {
		return "", time.Time{}, nil, err
	}
	return showToken(tok), expires, notes, nil
}

// makeRoomForPending drops the actor's oldest waiting changes so that a new
// one keeps them within maxPendingPerManager, and says which it dropped.
func (x *executor) makeRoomForPending() ([]string, error) {
	all, err := x.tx.PendingOf(x.actor.Address)
	if err != nil {
		return nil, err
	}
	var live []storage.Pending
	for _, p := range all {
		if x.env.Now.Before(p.Expires) {
			live = append(live, p)
		}
	}
	var notes []string
	for len(live) >= maxPendingPerManager {
		p := live[0]
		live = live[1:]
		if err := x.tx.DeletePending(p.Token); err != nil {
			return nil, err
		}
		notes = append(notes, x.t("Your oldest change waiting for confirmation (%s, token %s) was dropped: "+
			"at most %d wait per manager. Send it again if you still want it.", x.pendingWhat(p), showToken(p.Token), maxPendingPerManager))
	}
	return notes, nil
}

// pendingWhat names a pending change for a person.
func (x *executor) pendingWhat(p storage.Pending) string {
	if p.Kind == pendingForget {
		return x.t("the erasure of your data (forget me)")
	}
	if p.Kind == pendingManager {
		var pl managerPayload
		if json.Unmarshal(p.Payload, &pl) == nil {
			return x.t("the removal of %s, the last manager of %s", pl.Email, p.Space)
		}
	}
	if p.Kind == pendingReplace {
		var pl replacePayload
		if json.Unmarshal(p.Payload, &pl) == nil && pl.File != "" {
			return x.t("the import of %s into %s", pl.File, p.Space)
		}
		return x.t("an import")
	}
	var pl heldPayload
	if json.Unmarshal(p.Payload, &pl) == nil {
		return x.t("%d held changes", len(pl.all()))
	}
	return x.t("held changes")
}

// tokenNote tells the manager what the token is good for.
func (x *executor) tokenNote(expires time.Time) string {
	return x.t("The token works once, only when %s sends it, until %s.", x.actor.Address,
		expires.UTC().Format("2006-01-02 15:04 UTC"))
}

// confirm carries out a held change.
func (x *executor) confirm(c *Command) (Result, error) {
	key := tokenKey(c.Target)
	p, found, err := x.tx.Pending(key)
	if err != nil {
		return Result{}, err
	}
	if !found || len(key) != tokenLen {
		return x.fail("nothing is waiting for confirmation under %s: the token is mistyped, was used already, or was dropped for newer ones.",
			truncate(c.Target, 20)), nil
	}
	if p.Actor != x.actor.Address {
		return x.denied("this token was given to another manager; only they can confirm it."), nil
	}
	if !x.env.Now.Before(p.Expires) {
		expired := p.Expires.UTC().Format("2006-01-02 15:04 UTC")
		switch pl, err := heldOf(p); {
		case p.Kind == pendingForget:
			return x.fail("token %s expired on %s; nothing was erased. Send forget me again for a new token.",
				showToken(key), expired), nil
		case p.Kind == pendingReplace:
			return x.fail("token %s expired on %s; nothing was changed. Send the import again for a new token.",
				showToken(key), expired), nil
		case p.Kind == pendingManager:
			return x.fail("token %s expired on %s; nothing was changed. Send remove manager again for a new token.",
				showToken(key), expired), nil
		case err == nil && allRemovals(pl):
			return x.fail("token %s expired on %s; nothing was changed. Send the removals again for a new token.",
				showToken(key), expired), nil
		default:
			return x.fail("token %s expired on %s; nothing was changed. Send the changes again for a new token.",
				showToken(key), expired), nil
		}
	}
	if p.Kind == pendingForget {
		return x.confirmForget(p)
	}
	if p.Kind == pendingManager {
		return x.confirmRemoveManager(p)
	}
	for _, space := range pendingSpaces(p) {
		if allowed, err := x.mayManage(space); err != nil {
			return Result{}, err
		} else if !allowed {
			return x.denied("you are no longer a manager of %s.", space), nil
		}
	}
	switch p.Kind {
	case pendingReplace:
		return x.confirmReplace(p)
	case pendingChanges, pendingRemove:
		return x.confirmChanges(p)
	}
	return x.fail("token %s is for a change this version does not know (%s).", showToken(key), p.Kind), nil
}

// mayManage reports whether the actor may change a space's roster now.
func (x *executor) mayManage(space string) (bool, error) {
	if x.actor.Admin {
		return true, nil
	}
	managed, err := x.tx.ManagedSpaces(x.actor.Address)
	if err != nil {
		return false, err
	}
	return contains(managed, space), nil
}

// pendingSpaces lists the spaces a pending change touches.
func pendingSpaces(p storage.Pending) []string {
	if p.Kind == pendingReplace {
		return []string{p.Space}
	}
	pl, err := heldOf(p)
	if err != nil {
		return []string{p.Space}
	}
	var out []string
	for _, h := range pl {
		if !contains(out, h.Space) {
			out = append(out, h.Space)
		}
	}
	return out
}

// heldOf decodes the changes a pending change of held changes holds.
func heldOf(p storage.Pending) ([]heldChange, error) {
	var pl heldPayload
	if err := json.Unmarshal(p.Payload, &pl); err != nil {
		return nil, fmt.Errorf("decode pending changes: %w", err)
	}
	return pl.all(), nil
}

func allRemovals(hs []heldChange) bool {
	for _, h := range hs {
		if h.Set != nil {
			return false
		}
	}
	return true
}
