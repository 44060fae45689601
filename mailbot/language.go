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
