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
// replace, a mass removal) is held, and the manager confirms it by replying
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

// Kinds of pending change.
const (
	pendingReplace = "replace"
	pendingRemove  = "remove"
)

// newToken draws a token that no pending change uses yet, in its stored
// form (no dashes).
func (x *executor) newToken() (string, error) {
	for range 8 {
		b := make([]byte, tokenLen)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("draw a token: %w", err)
		}
		for i := range b {
			b[i] = tokenAlphabet[b[i]&31] // 256 is a multiple of 32: uniform
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

// holdPending stores a change for confirmation by this actor and returns
// the token as shown to people, and when it expires. Long-expired tokens
// are cleared on the way.
func (x *executor) holdPending(space, kind string, payload any) (string, time.Time, error) {
	if _, err := x.tx.DeleteExpiredPending(x.env.Now.Add(-pendingKeep)); err != nil {
		return "", time.Time{}, err
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode pending %s: %w", kind, err)
	}
	tok, err := x.newToken()
	if err != nil {
		return "", time.Time{}, err
	}
	expires := x.env.Now.Add(pendingTTL)
	p := storage.Pending{Token: tok, Actor: x.actor.Address, Space: space, Kind: kind, Payload: data, Expires: expires}
	if err := x.tx.PutPending(p); err != nil {
		return "", time.Time{}, err
	}
	return showToken(tok), expires, nil
}

// tokenNote tells the manager what the token is good for.
func tokenNote(actor string, expires time.Time) string {
	return fmt.Sprintf("The token works once, only when %s sends it, until %s.", actor,
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
		return fail("nothing is waiting for confirmation under %s: the token is mistyped, or was used already.",
			truncate(c.Target, 20)), nil
	}
	if p.Actor != x.actor.Address {
		return denied("this token was given to another manager; only they can confirm it."), nil
	}
	what := "the import"
	if p.Kind == pendingRemove {
		what = "the removals"
	}
	if !x.env.Now.Before(p.Expires) {
		return fail("token %s expired on %s; nothing was changed. Send %s again for a new token.",
			showToken(key), p.Expires.UTC().Format("2006-01-02 15:04 UTC"), what), nil
	}
	for _, space := range pendingSpaces(p) {
		if allowed, err := x.mayManage(space); err != nil {
			return Result{}, err
		} else if !allowed {
			return denied("you are no longer a manager of %s.", space), nil
		}
	}
	switch p.Kind {
	case pendingReplace:
		return x.confirmReplace(p)
	case pendingRemove:
		return x.confirmRemovals(p)
	}
	return fail("token %s is for a change this version does not know (%s).", showToken(key), p.Kind), nil
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
	if p.Kind != pendingRemove {
		return []string{p.Space}
	}
	var pl removalPayload
	if json.Unmarshal(p.Payload, &pl) != nil {
		return []string{p.Space}
	}
	var out []string
	for _, r := range pl.Removals {
		if !contains(out, r.Space) {
			out = append(out, r.Space)
		}
	}
	return out
}

// heldRemoval is one "remove member" waiting for confirmation.
type heldRemoval struct {
	Space string `json:"space"`
	Email string `json:"email"`
}

// removalPayload is a mass removal waiting for confirmation.
type removalPayload struct {
	Removals []heldRemoval `json:"removals"`
}

// holding collects a message's removals when there are more of them than
// the limit: none applies until the manager confirms them all at once.
type holding struct {
	removals []heldRemoval
	first    int // index of the first held removal's result in the report
}

// countRemovals counts the well-formed "remove member" lines of a script.
func countRemovals(s Script) int {
	n := 0
	for _, it := range s.Items {
		if it.Command != nil && it.Command.Name == "remove member" && it.Command.Err == "" {
			n++
		}
	}
	return n
}

// holdRemoval checks a removal as removeMember would, and holds it
// instead of applying it.
func (x *executor) holdRemoval(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	if _, found, err := x.tx.Member(sp.ID, c.Target); err != nil {
		return Result{}, err
	} else if !found {
		return fail("%s is not a member of %s.", c.Target, sp.ID), nil
	}
	h := heldRemoval{Space: sp.ID, Email: c.Target}
	for _, o := range x.hold.removals {
		if o == h {
			return fail("%s is already listed above for removal.", c.Target), nil
		}
	}
	x.hold.removals = append(x.hold.removals, h)
	return ok("%s will be removed from %s when you confirm; nothing changed yet.", c.Target, sp.ID), nil
}

// holdRemovals stores the held removals under one token and returns the
// lines that tell the manager how to confirm them.
func (x *executor) holdRemovals() ([]string, error) {
	space := x.hold.removals[0].Space
	for _, r := range x.hold.removals {
		if r.Space != space {
			space = ""
		}
	}
	tok, expires, err := x.holdPending(space, pendingRemove, removalPayload{Removals: x.hold.removals})
	if err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("This message removes %d members, more than %d at once: nothing was changed yet.",
			len(x.hold.removals), x.env.Limits.ConfirmRemovals),
		"To apply all of these removals, reply with the line: confirm " + tok,
		tokenNote(x.actor.Address, expires),
	}, nil
}

// confirmRemovals applies a confirmed mass removal. A member who left the
// roster in between is reported, not an error.
func (x *executor) confirmRemovals(p storage.Pending) (Result, error) {
	var pl removalPayload
	if err := json.Unmarshal(p.Payload, &pl); err != nil {
		return Result{}, fmt.Errorf("decode pending removal: %w", err)
	}
	var removed, gone []string
	for _, h := range pl.Removals {
		old, found, err := x.tx.Member(h.Space, h.Email)
		if err != nil {
			return Result{}, err
		}
		if !found {
			gone = append(gone, fmt.Sprintf("%s was no longer a member of %s", h.Email, h.Space))
			continue
		}
		if err := x.tx.DeleteMember(h.Space, h.Email); err != nil {
			return Result{}, err
		}
		if err := x.record("member", h.Space, h.Email, "remove", old, nil); err != nil {
			return Result{}, err
		}
		removed = append(removed, fmt.Sprintf("removed %s from %s", h.Email, h.Space))
	}
	if err := x.tx.DeletePending(p.Token); err != nil {
		return Result{}, err
	}
	r := ok("removed %d members as you confirmed.", len(removed))
	r.Detail = append(removed, gone...)
	return r, nil
}
