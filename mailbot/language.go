package mailbot

import (
	"time"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// languageOf is the language a sender is answered in: the language of the
// space they manage (the first, when they manage several); for a member,
// of their home space (the first of those they are active in, by id, that
// chose a language): a member writing to a host reads their own; else the
// network's (Settings.Language, bot.language).
func (b *Bot) languageOf(tx *storage.Tx, sender string) (*templates.Lang, error) {
	managed, err := tx.ManagedSpaces(sender)
	if err != nil {
		return nil, err
	}
	if len(managed) > 0 {
		sp, found, err := tx.Space(managed[0])
		if err != nil || !found || sp.Language == "" {
			return b.tmpl.In(b.set.Language), err
		}
		return b.tmpl.In(sp.Language), nil
	}
	homes, err := tx.MembershipsOf(sender)
	if err != nil {
		return nil, err
	}
	today := b.now().UTC().Format(time.DateOnly)
	for _, m := range homes {
		if !m.ActiveOn(today) {
			continue
		}
		sp, found, err := tx.Space(m.Space)
		if err != nil {
			return nil, err
		}
		if found && sp.Language != "" {
			return b.tmpl.In(sp.Language), nil
		}
	}
	return b.tmpl.In(b.set.Language), nil
}

// audience is whom a sender's help is for: it shows them what they may do.
// role says whether they are an admin or a manager; a member is active on
// some roster today (whatever else they are).
func (b *Bot) audience(tx *storage.Tx, sender string, r role, now time.Time) (templates.Audience, error) {
	a := templates.Audience{Admin: r.admin, Manager: r.manager, Member: r.member}
	if a.Member {
		return a, nil
	}
	all, err := tx.MembershipsOf(sender)
	if err != nil {
		return a, err
	}
	today := now.UTC().Format(time.DateOnly)
	for _, m := range all {
		a.Member = a.Member || m.ActiveOn(today)
	}
	return a, nil
}
