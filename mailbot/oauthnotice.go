package mailbot

import (
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/oauth"
)

// NotifyOAuth tells the admins that the bot's OAuth2 logins have failed for
// oauth2.notify_admins_after, or that they work again (oauth.Watch). The
// notice goes through the outbox: it leaves when SMTP works, which it may
// not if SMTP uses the same failing login.
func (b *Bot) NotifyOAuth(account string, smtpToo bool, a oauth.Alert) {
	data := struct {
		Account, Since, Reason string
		SMTP                   bool
	}{account, a.Since.UTC().Format(time.DateTime), a.Reason, smtpToo}
	if a.Failing {
		b.notifyAdmins("oauth-failing", data)
		return
	}
	b.notifyAdmins("oauth-working", data)
}
