package mailbot

import (
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// languageOf is the language a sender is answered in: the language of the
// space they manage (the first, when they manage several), else the
// network's (Settings.Language, bot.language).
func (b *Bot) languageOf(tx *storage.Tx, sender string) (*templates.Lang, error) {
	managed, err := tx.ManagedSpaces(sender)
	if err != nil || len(managed) == 0 {
		return b.tmpl.In(b.set.Language), err
	}
	sp, found, err := tx.Space(managed[0])
	if err != nil || !found || sp.Language == "" {
		return b.tmpl.In(b.set.Language), err
	}
	return b.tmpl.In(sp.Language), nil
}
