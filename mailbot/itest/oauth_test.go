package itest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/botconfig"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/idp"
	"github.com/coworkingvisa/mailbot/mailbot/testkit/mailstack"
	"github.com/coworkingvisa/mailbot/storage"
)

// oauthWorld is the OAuth2 test's bot on its own servers.
type oauthWorld struct {
	t          *testing.T
	s          *mailstack.Stack
	p          *idp.Provider
	bot, admin string
	store      string
	replies    int // the admin's messages so far
}

// TestOAuth2 runs the real binary against a Dovecot and a Postfix of its
// own whose logins take OAuth2 access tokens only for the bot (Dovecot's
// oauth2 passdb asks the test's provider about each token; Postfix's
// submission port asks Dovecot), with a provider that rotates refresh
// tokens as Microsoft does and issues access tokens of 15 s. It shows:
// `mailbot oauth login` with the device flow storing the login; the daemon
// reading and answering with XOAUTH2/OAUTHBEARER on IMAP and SMTP; access
// tokens that expire mid-run refreshed at the next login; the rotated
// refresh token persisted across a restart (the first one being dead); a
// revoked login logged once, told to the admins, and the daemon back at
// work after `mailbot oauth login` reaches it through its control socket;
// and no token in any output.
func TestOAuth2(t *testing.T) {
	p := idp.Start(t, idp.Options{Lifetime: 15 * time.Second, Rotate: true, ClientID: "mailbot-itest"})
	w := &oauthWorld{t: t, p: p, bot: "visa-oauth@visa.test", admin: "admin-oauth@visa.test",
		store: filepath.Join(t.TempDir(), "visa.db")}
	// Its own servers, to restart at will; the shared milters judge the
	// mail the admin sends, as on the shared stack.
	w.s = mailstack.StartForTestWith(t, mailstack.Options{
		Users:                  map[string]string{w.bot: password, w.admin: password},
		RetryDelay:             2 * time.Second,
		Milters:                milters.Milters,
		OAuth2IntrospectionURL: p.IntrospectionURL(),
		Submission:             true,
	})
	var logs []*bot
	defer func() { w.noTokens(logs) }()

	// 1. The login, before the daemon ever ran: the device flow, signed in
	// at the provider by the test; the token goes straight into the store.
	cfg := w.config("oauth", nil)
	p.SignIn(w.bot)
	login := runBinary(t, os.Environ(), "oauth", "login", "--config", cfg, "--flow", "device")
	logs = append(logs, login)
	code := waitMatch(t, login, regexp.MustCompile(`Enter the code (\S+)`))
	if !p.Approve(code) {
		t.Fatalf("the provider knows no code %q", code)
	}
	waitExit(t, login)
	if !strings.Contains(login.log.String(), "The login is stored in "+w.store) {
		t.Errorf("oauth login did not say where the login went:\n%s", login.log.String())
	}
	first := w.stored().RefreshToken

	// 2. The daemon logs in to IMAP and SMTP with access tokens.
	b := startBotConfig(t, cfg)
	logs = append(logs, b)
	w.command("add space oauthspace name=\"OAuth Space\"", "OK: added space oauthspace")
	firstAccess := w.lastIssued()
	if !p.Valid(firstAccess) || len(p.Introspected()) == 0 {
		t.Fatal("the bot did not log in with the provider's access token")
	}

	// 3. The access token expires mid-run: the next logins (Dovecot and
	// Postfix restarted under the bot) get a fresh one.
	waitFor(t, 30*time.Second, "the first access token to expire", func() bool { return p.Expired(firstAccess) })
	ctx := ctxT(t)
	grants := len(p.Grants())
	for _, restart := range []func(context.Context) error{w.s.StopDovecot, w.s.StartDovecot, w.s.StopPostfix, w.s.StartPostfix} {
		if err := restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b.waitLogCount("imap connected", 2, 60*time.Second)
	w.command("list spaces", "oauthspace")
	if len(p.Grants()) <= grants {
		t.Error("no refresh after the access token expired")
	}
	if p.Valid(firstAccess) || !p.Valid(w.lastIssued()) {
		t.Error("the bot did not move on to a fresh access token")
	}
	b.stop()

	// 4. The provider rotated the refresh token at each refresh, killing
	// the old one: the store holds the latest, and a restarted bot logs in
	// with it.
	rotated := w.stored()
	if rotated.Source != "rotated" || rotated.RefreshToken == first || !p.RefreshValid(rotated.RefreshToken) || p.RefreshValid(first) {
		t.Fatalf("after the run the store holds %s (%s); want the provider's latest refresh token", rotated.Source, shorten(rotated.RefreshToken))
	}
	b = startBotConfig(t, cfg)
	logs = append(logs, b)
	w.command("list spaces", "oauthspace")
	if g := w.refreshes(); g[len(g)-1].Refresh != rotated.RefreshToken || g[len(g)-1].Error != "" {
		t.Errorf("the restarted bot refreshed with %s, want the stored %s", shorten(g[len(g)-1].Refresh), shorten(rotated.RefreshToken))
	}
	b.stop()

	// 5. The login is revoked while the bot runs. SMTP logs in with its
	// password here, so that the notice to the admins has a way out that
	// does not depend on the revoked login; notify_admins_after is 8 s
	// instead of 30 minutes, so the test need not wait, and long enough
	// for the retries (1, 2, 4 s apart) to reach the token endpoint and
	// learn that the refresh token is revoked even on a busy machine.
	cfg = w.config("oauth-revoked", func(c *config.Config) {
		c.SMTP.Auth, c.SMTP.PasswordEnv = "password", "MAILBOT_SMTP_PASSWORD"
		c.OAuth2.NotifyAdminsAfter = 8 * time.Second
	})
	b = runBinary(t, append(os.Environ(), "MAILBOT_SMTP_PASSWORD="+password), "run", "--config", cfg)
	b.config = cfg
	logs = append(logs, b)
	b.waitLog("imap connected", 30*time.Second)
	p.Revoke(w.bot)
	if err := w.s.StopDovecot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.s.StartDovecot(ctx); err != nil {
		t.Fatal(err)
	}
	notice := w.waitSubject("the bot cannot log in to its mailbox")
	for _, want := range []string{w.bot, "expired or was revoked", "mailbot oauth login"} {
		if !strings.Contains(notice.Text, want) {
			t.Errorf("the notice lacks %q:\n%s", want, notice.Text)
		}
	}
	// A command sent meanwhile waits in the inbox.
	w.sendCommand("add space waited name=\"Sent while the login was revoked\"")
	// Retries go on (positive signal: more refused refreshes), and the
	// failure is logged once.
	refused := func() int {
		n := 0
		for _, g := range w.refreshes() {
			if g.Error == "invalid_grant" {
				n++
			}
		}
		return n
	}
	waitFor(t, 90*time.Second, "three refused refreshes", func() bool { return refused() >= 3 })
	if n := strings.Count(b.log.String(), "cannot get an access token"); n != 1 {
		t.Errorf("the revoked login was logged %d times over %d retries, want once:\n%s", n, refused(), grepLines(b.log.String(), "oauth2"))
	}

	// 6. A new login through the running daemon: the browser flow, the
	// test as the browser.
	login = runBinary(t, os.Environ(), "oauth", "login", "--config", cfg, "--flow", "browser")
	logs = append(logs, login)
	url := waitMatch(t, login, regexp.MustCompile(`^(http://127\.0\.0\.1:\d+/authorize\?\S+)$`))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitExit(t, login)
	if !strings.Contains(login.log.String(), "The running daemon stored the login") {
		t.Errorf("oauth login did not go through the daemon:\n%s", login.log.String())
	}
	// The answer and the notice that logins work again, in either order.
	var answered, told bool
	for _, r := range w.waitNext(2) {
		answered = answered || strings.Contains(r.Text, "OK: added space waited")
		told = told || strings.HasSuffix(r.Header.Get("Subject"), "the bot logs in to its mailbox again")
	}
	if !answered || !told {
		t.Errorf("after the new login: the waiting command answered %v, the admins told %v", answered, told)
	}
	if n := strings.Count(b.log.String(), "access tokens are issued again"); n != 1 {
		t.Errorf("the recovery was logged %d times, want once", n)
	}
	b.stop()
	t.Logf("the OAuth2 lines of the last run's log:\n%s", grepLines(b.log.String(), "oauth2:"))
}

// config writes the bot's config: the defaults, with IMAP and SMTP (the
// submission port) logging in with OAuth2 through the test provider, a
// custom one, then change.
func (w *oauthWorld) config(name string, change func(*config.Config)) string {
	w.t.Helper()
	c, err := botconfig.New(botconfig.Stack{Bot: w.bot, Admin: w.admin, IMAPAddr: w.s.IMAPAddr, SMTPAddr: w.s.SubmissionAddr,
		Store: w.store, AuthservID: authservID})
	if err != nil {
		w.t.Fatal(err)
	}
	c.IMAP.Auth, c.IMAP.PasswordEnv = "oauth2", ""
	c.SMTP.Auth, c.SMTP.Username = "oauth2", w.bot
	c.OAuth2.Provider, c.OAuth2.ClientID = "custom", "mailbot-itest"
	c.OAuth2.TokenURL, c.OAuth2.AuthURL, c.OAuth2.DeviceAuthURL = w.p.TokenURL(), w.p.AuthURL(), w.p.DeviceAuthURL()
	if change != nil {
		change(c)
	}
	path := filepath.Join(filepath.Dir(w.store), name+".yaml")
	if err := botconfig.Write(path, c); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// sendCommand has the admin send one command, signed, through the MX.
func (w *oauthWorld) sendCommand(line string) {
	w.t.Helper()
	raw := signed(w.t, thunderbird(envelope{From: w.admin, To: w.bot, Subject: "oauth"}, line))
	if err := w.s.Send(ctxT(w.t), w.admin, []string{w.bot}, raw); err != nil {
		w.t.Fatal(err)
	}
}

// command sends a command and waits for its reply, which must say want.
func (w *oauthWorld) command(line, want string) {
	w.t.Helper()
	w.sendCommand(line)
	w.waitReply(want)
}

// waitNext waits for the admin's next n messages and returns them.
func (w *oauthWorld) waitNext(n int) []reply {
	w.t.Helper()
	raws, err := w.s.WaitForMessages(ctxT(w.t), w.admin, password, "INBOX", w.replies+n)
	if err != nil {
		w.t.Fatalf("waiting for the admin's messages %d to %d: %v", w.replies+1, w.replies+n, err)
	}
	var out []reply
	for _, raw := range raws[w.replies:] {
		out = append(out, parseReply(w.t, raw))
	}
	w.replies += n
	return out
}

// waitReply waits for the admin's next message and checks it says want.
func (w *oauthWorld) waitReply(want string) reply {
	w.t.Helper()
	r := w.waitNext(1)[0]
	if !strings.Contains(r.Text, want) {
		w.t.Fatalf("the admin's message %d lacks %q:\n%s", w.replies, want, r.Text)
	}
	return r
}

// waitSubject waits for the admin's next message, which must be the notice
// whose Subject ends with subject.
func (w *oauthWorld) waitSubject(subject string) reply {
	w.t.Helper()
	r := w.waitReply("")
	if got := r.Header.Get("Subject"); !strings.HasSuffix(got, subject) {
		w.t.Fatalf("the admin's message %d is %q, want the notice %q:\n%s", w.replies, got, subject, r.Text)
	}
	return r
}

// stored reads the login from the store (the bot must be stopped).
func (w *oauthWorld) stored() storage.OAuthToken {
	w.t.Helper()
	db, err := storage.Open(w.store)
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	var tok storage.OAuthToken
	err = db.View(func(tx *storage.Tx) error {
		var ok bool
		var err error
		tok, ok, err = tx.OAuthToken(storage.OAuthKey("mailbot-itest", w.bot))
		if err == nil && !ok {
			w.t.Fatal("no login in the store")
		}
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

func (w *oauthWorld) refreshes() []idp.Grant {
	var out []idp.Grant
	for _, g := range w.p.Grants() {
		if g.Type == "refresh_token" {
			out = append(out, g)
		}
	}
	return out
}

// lastIssued is the last access token the provider issued.
func (w *oauthWorld) lastIssued() string {
	g := w.p.Grants()
	for i := len(g) - 1; i >= 0; i-- {
		if g[i].Issued != "" {
			return g[i].Issued
		}
	}
	w.t.Fatal("the provider issued no access token")
	return ""
}

// noTokens checks that no output of the binary shows a token the provider
// issued or was shown.
func (w *oauthWorld) noTokens(runs []*bot) {
	w.t.Helper()
	var tokens []string
	for _, g := range w.p.Grants() {
		for _, tok := range []string{g.Issued, g.Refresh} {
			if tok != "" {
				tokens = append(tokens, tok)
			}
		}
	}
	for _, b := range runs {
		out := b.log.String()
		for _, tok := range tokens {
			if strings.Contains(out, tok) {
				w.t.Errorf("the output of mailbot %s shows the token %s", b.cmd.Args[1], shorten(tok))
			}
		}
	}
	if len(tokens) < 5 {
		w.t.Errorf("only %d tokens were checked: did the provider issue any?", len(tokens))
	}
}

// waitMatch waits until the output of b has a line matching re and
// returns its first group.
func waitMatch(t *testing.T, b *bot, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		for _, line := range strings.Split(b.log.String(), "\n") {
			if m := re.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
				return m[1]
			}
		}
		select {
		case <-b.done:
			t.Fatalf("mailbot exited before printing %v:\n%s", re, b.log.String())
		case <-deadline:
			t.Fatalf("mailbot did not print %v within 30 s:\n%s", re, b.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitExit waits for a one-shot command to end with status 0.
func waitExit(t *testing.T, b *bot) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("mailbot did not finish within 60 s:\n%s", b.log.String())
	}
	if !b.exitOK {
		t.Fatalf("mailbot exited with %v:\n%s", b.cmd.ProcessState, b.log.String())
	}
}

// waitLogCount waits until the bot's output holds s n times.
func (b *bot) waitLogCount(s string, n int, within time.Duration) {
	b.t.Helper()
	waitFor(b.t, within, "the bot to log "+s, func() bool { return strings.Count(b.log.String(), s) >= n })
}

// waitFor polls cond every 50 ms until it holds.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shorten shows enough of a token to tell tokens apart in a failure.
func shorten(tok string) string {
	if len(tok) > 8 {
		return tok[:8] + "…"
	}
	return tok
}
