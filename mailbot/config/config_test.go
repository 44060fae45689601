package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// testEnv stands in for the process environment.
func testEnv(name string) string {
	return map[string]string{
		"MAILBOT_IMAP_PASSWORD": "imap-secret",
		"MAILBOT_SMTP_PASSWORD": "smtp-secret",
	}[name]
}

// minimal holds only the keys that have no default.
func minimal() map[string]any {
	return map[string]any{
		"bot": map[string]any{"address": "visa@example.org"},
		"imap": map[string]any{
			"host": "imap.example.org", "username": "visa@example.org",
			"password_env": "MAILBOT_IMAP_PASSWORD",
		},
		"smtp": map[string]any{
			"host": "smtp.example.org", "username": "visa@example.org",
			"password_env": "MAILBOT_SMTP_PASSWORD",
		},
		"store":  map[string]any{"path": "/var/lib/mailbot/visa.db"},
		"admins": []any{"admin@example.org"},
		"auth":   map[string]any{"authserv_id": "mx.example.org"},
	}
}

// deleted, as an override value, removes the key.
type deleted struct{}

// yamlWith renders minimal() with overrides set at dotted keys ("imap.port").
func yamlWith(t *testing.T, overrides map[string]any) []byte {
	t.Helper()
	doc := minimal()
	for key, v := range overrides {
		m := doc
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		if _, ok := v.(deleted); ok {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = v
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustParse(t *testing.T, data []byte) *Config {
	t.Helper()
	c, err := Parse(data, testEnv)
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", data, err)
	}
	return c
}

func TestParseDefaults(t *testing.T) {
	c := mustParse(t, yamlWith(t, nil))
	tests := []struct {
		key       string
		got, want any
	}{
		{"bot.name", c.Bot.Name, "Coworking Visa"},
		{"imap.tls", c.IMAP.TLS, "implicit"},
		{"imap.port", c.IMAP.Port, 993},
		{"imap.mailbox", c.IMAP.Mailbox, "INBOX"},
		{"imap.processed_mailbox", c.IMAP.ProcessedMailbox, "Processed"},
		{"imap.rejected_mailbox", c.IMAP.RejectedMailbox, "Rejected"},
		{"imap.idle_restart", c.IMAP.IdleRestart, 5 * time.Minute},
		{"imap.command_timeout", c.IMAP.CommandTimeout, 60 * time.Second},
		{"imap.insecure_skip_verify", c.IMAP.InsecureSkipVerify, false},
		{"smtp.tls", c.SMTP.TLS, "implicit"},
		{"smtp.port", c.SMTP.Port, 465},
		{"smtp.connections", c.SMTP.Connections, 2},
		{"auth.require", c.Auth.Require, "dmarc"},
		{"poll_interval", c.PollInterval, 60 * time.Second},
		{"limits.replies_per_sender_per_hour", c.Limits.RepliesPerSenderPerHour, 60},
		// The default itself, not an override: sized from what the outbox sends (README, abuse limits).
		{"limits.replies_per_minute", c.Limits.RepliesPerMinute, 20000},
		{"limits.max_message_bytes", c.Limits.MaxMessageBytes, int64(10 << 20)},
		{"limits.max_lines", c.Limits.MaxLines, 500},
		{"limits.max_commands", c.Limits.MaxCommands, 100},
		{"digest.weekday", c.Digest.Weekday, "monday"},
		{"digest.time", c.Digest.Time, "08:00"},
		{"digest.timezone", c.Digest.Timezone, "UTC"},
		{"digest.roster_confirm_days", c.Digest.RosterConfirmDays, 90},
		{"privacy.retention", time.Duration(c.Privacy.Retention), 400 * 24 * time.Hour},
		{"outbox.retry_initial", c.Outbox.RetryInitial, 5 * time.Second},
		{"outbox.retry_max", c.Outbox.RetryMax, time.Hour},
		{"limits.max_message_age", c.Limits.MaxMessageAge, 7 * 24 * time.Hour},
		{"limits.max_reply_bytes", c.Limits.MaxReplyBytes, 5 << 20},
		{"limits.max_attempts", c.Limits.MaxAttempts, 3},
		{"limits.stranger_replies_per_domain_per_day", c.Limits.StrangerRepliesPerDomainPerDay, 20},
		{"limits.stranger_replies_per_hour", c.Limits.StrangerRepliesPerHour, 100},
		{"outbox.give_up_after", c.Outbox.GiveUpAfter, 96 * time.Hour},
		{"logging.level", c.Log.Level, "info"},
		{"logging.format", c.Log.Format, "text"},
		{"http.listen", c.HTTP.Listen, ""},
		{"http.metrics_public", c.HTTP.MetricsPublic, false},
		{"health.inbox_stale_after", c.Health.InboxStaleAfter, 5 * time.Minute},
		{"health.outbox_stale_after", c.Health.OutboxStaleAfter, 15 * time.Minute},
		{"imap.auth", c.IMAP.Auth, "password"},
		{"smtp.auth", c.SMTP.Auth, "password"},
		{"oauth2.tenant", c.OAuth2.Tenant, "common"},
		{"oauth2.notify_admins_after", c.OAuth2.NotifyAdminsAfter, 30 * time.Minute},
		{"resolved imap password", c.IMAP.Password, "imap-secret"},
		{"resolved smtp password", c.SMTP.Password, "smtp-secret"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.key, tt.got, tt.want)
		}
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]any
		check     func(*Config) bool
	}{
		{"imap starttls port", map[string]any{"imap.tls": "starttls"}, func(c *Config) bool { return c.IMAP.Port == 143 }},
		{"retention in days", map[string]any{"privacy.retention": "30d"},
			func(c *Config) bool { return time.Duration(c.Privacy.Retention) == 30*24*time.Hour }},
		{"retention as a Go duration", map[string]any{"privacy.retention": "36h"},
			func(c *Config) bool { return time.Duration(c.Privacy.Retention) == 36*time.Hour }},
		{"no roster reminders", map[string]any{"digest.roster_confirm_days": 0},
			func(c *Config) bool { return c.Digest.RosterConfirmDays == 0 }},
		{"smtp starttls port", map[string]any{"smtp.tls": "starttls"}, func(c *Config) bool { return c.SMTP.Port == 587 }},
		{"smtp none on loopback", map[string]any{"smtp.tls": "none", "smtp.host": "127.0.0.1"},
			func(c *Config) bool { return c.SMTP.Port == 25 }},
		{"imap none on ::1", map[string]any{"imap.tls": "none", "imap.host": "::1"},
			func(c *Config) bool { return c.IMAP.Port == 143 }},
		{"none elsewhere in 127/8", map[string]any{"imap.tls": "none", "imap.host": "127.1.2.3"},
			func(c *Config) bool { return c.IMAP.TLS == "none" }},
		{"none on LOCALHOST, tls in capitals", map[string]any{"smtp.tls": "NONE", "smtp.host": "LOCALHOST"},
			func(c *Config) bool { return c.SMTP.TLS == "none" }},
		{"explicit port kept", map[string]any{"smtp.port": 2525}, func(c *Config) bool { return c.SMTP.Port == 2525 }},
		{"empty processed_mailbox leaves mail in place", map[string]any{"imap.processed_mailbox": ""},
			func(c *Config) bool { return c.IMAP.ProcessedMailbox == "" }},
		{"admins lowercased", map[string]any{"admins": []any{"Admin@Example.ORG", " second@example.org"}},
			func(c *Config) bool {
				return slices.Equal(c.Admins, []string{"admin@example.org", "second@example.org"})
			}},
		{"admins in the senders' canonical form", map[string]any{"admins": []any{"MÜLLER@Straße.test", "mu\u0308ller@x.test"}},
			func(c *Config) bool {
				return slices.Equal(c.Admins, []string{"müller@straße.test", "müller@x.test"})
			}},
		{"smtp relay without login", map[string]any{"smtp.username": deleted{}, "smtp.password_env": deleted{}},
			func(c *Config) bool { return c.SMTP.Username == "" && c.SMTP.Password == "" }},
		{"auth none needs no authserv_id", map[string]any{"auth.require": "none", "auth.authserv_id": deleted{}},
			func(c *Config) bool { return c.Auth.Require == "none" }},
		{"own DKIM check needs no authserv_id", map[string]any{"auth.verify_dkim": true, "auth.authserv_id": deleted{}},
			func(c *Config) bool { return c.Auth.VerifyDKIM && c.Auth.AuthservID == "" }},
		{"aliases lowercased", map[string]any{"bot.aliases": []any{"Visa-Desk@Example.ORG"}},
			func(c *Config) bool { return slices.Equal(c.Bot.Aliases, []string{"visa-desk@example.org"}) }},
		{"compound duration", map[string]any{"poll_interval": "1h30m"},
			func(c *Config) bool { return c.PollInterval == 90*time.Minute }},
		{"idle_restart at the limit", map[string]any{"imap.idle_restart": "10m"},
			func(c *Config) bool { return c.IMAP.IdleRestart == 10*time.Minute }},
		{"weekday in capitals", map[string]any{"digest.weekday": "Friday", "digest.timezone": "Europe/Paris"},
			func(c *Config) bool { return c.Digest.Weekday == "friday" }},
		{"json log", map[string]any{"logging.format": "json", "logging.level": "DEBUG"},
			func(c *Config) bool { return c.Log.Format == "json" && c.Log.Level == "debug" }},
		{"json log under the former name", map[string]any{"log.format": "JSON"},
			func(c *Config) bool { return c.Log.Format == "json" && c.Log.Level == "info" }},
		{"http on loopback", map[string]any{"http.listen": "127.0.0.1:8080"},
			func(c *Config) bool { return c.HTTP.Listen == "127.0.0.1:8080" && !c.HTTP.MetricsPublic }},
		{"http on every address", map[string]any{"http.listen": ":8080"},
			func(c *Config) bool { return c.HTTP.Listen == ":8080" }},
		{"http on IPv6 loopback", map[string]any{"http.listen": "[::1]:8080"},
			func(c *Config) bool { return c.HTTP.Listen == "[::1]:8080" }},
		{"health limits", map[string]any{"health.inbox_stale_after": "90s", "health.outbox_stale_after": "1h"},
			func(c *Config) bool {
				return c.Health.InboxStaleAfter == 90*time.Second && c.Health.OutboxStaleAfter == time.Hour
			}},
		{"lmtp without imap", map[string]any{"imap": deleted{}, "lmtp.listen": "127.0.0.1:2424"},
			func(c *Config) bool { return !c.UsesIMAP() && c.LMTP.Listen == "127.0.0.1:2424" }},
		{"lmtp on a unix socket beside imap", map[string]any{"lmtp.listen": " unix:/run/mailbot/lmtp.sock"},
			func(c *Config) bool { return c.UsesIMAP() && c.LMTP.Listen == "unix:/run/mailbot/lmtp.sock" }},
		{"fast poll off", map[string]any{"imap.fast_poll.every": "0s"},
			func(c *Config) bool { return c.IMAP.FastPoll.Every == 0 && c.IMAP.FastPoll.For == time.Minute }},
		{"fast poll default", nil,
			func(c *Config) bool {
				return c.IMAP.FastPoll == FastPoll{Every: 100 * time.Millisecond, For: time.Minute}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, yamlWith(t, tt.overrides))
			if !tt.check(c) {
				t.Errorf("unexpected result:\n%s", c.Redacted())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]any
		want      string // the error names this key or says this
	}{
		{"typo in a key", map[string]any{"imap.hots": "x"}, "field hots not found"},
		{"retention in weeks", map[string]any{"privacy.retention": "2w"}, "not a duration: write days (400d)"},
		{"retention of days not a number", map[string]any{"privacy.retention": "xd"}, "not a number of days"},
		{"retention under a day", map[string]any{"privacy.retention": "2h"}, "privacy.retention: must be at least a day"},
		{"negative roster reminder", map[string]any{"digest.roster_confirm_days": -1}, "digest.roster_confirm_days: must be 0"},
		{"typo in a section", map[string]any{"limit.max_lines": 5}, "field limit not found"},
		{"port out of range", map[string]any{"imap.port": 70000}, "imap.port: must be 1-65535"},
		{"unknown tls mode", map[string]any{"smtp.tls": "ssl"}, "smtp.tls: must be implicit, starttls or none"},
		{"tls none over a network", map[string]any{"imap.tls": "none"}, "imap.tls: none would send"},
		{"tls none to a private address", map[string]any{"smtp.tls": "none", "smtp.host": "10.0.0.5"}, "smtp.tls: none"},
		{"host with scheme", map[string]any{"smtp.host": "smtps://smtp.example.org"}, "smtp.host: a host name only"},
		{"missing host", map[string]any{"imap.host": deleted{}}, "imap.host: required"},
		{"missing imap username", map[string]any{"imap.username": deleted{}}, "imap.username: required"},
		{"missing imap password", map[string]any{"imap.password_env": deleted{}}, "imap.password_env: required"},
		{"password without username", map[string]any{"smtp.username": deleted{}}, "smtp.username: required when a password is set"},
		{"env var not set", map[string]any{"imap.password_env": "NOT_SET"}, "imap.password_env: environment variable NOT_SET is not set"},
		{"password file missing", map[string]any{"smtp.password_env": deleted{}, "smtp.password_file": "/nonexistent/pw"},
			"smtp.password_file: open /nonexistent/pw"},
		{"two password sources", map[string]any{"imap.password": "x"}, "imap.password_env: set only one"},
		{"bad bot address", map[string]any{"bot.address": "visa at example.org"}, "bot.address: must be a plain email address"},
		{"bot address with a name", map[string]any{"bot.address": "Visa <visa@example.org>"}, "bot.address: must be a plain"},
		{"missing bot address", map[string]any{"bot": map[string]any{}}, "bot.address: required"},
		{"bot name on two lines", map[string]any{"bot.name": "Visa\r\nBcc: x@example.org"}, "bot.name: must be one line"},
		{"bad admin", map[string]any{"admins": []any{"admin@example.org", "nobody"}}, "admins[1]: must be a plain email address"},
		{"admin with a Kelvin sign", map[string]any{"admins": []any{"admin@\u212aexample.org"}}, "admins[0]: \"admin@\u212aexample.org\" could never match a sender: it contains U+212A"},
		{"missing store path", map[string]any{"store": map[string]any{}}, "store.path: required"},
		{"missing authserv_id", map[string]any{"auth.authserv_id": deleted{}}, "auth.authserv_id: required unless"},
		{"authserv_id with spaces", map[string]any{"auth.authserv_id": "mx example"}, "auth.authserv_id: must be a single token"},
		{"unknown auth mode", map[string]any{"auth.require": "spf"}, "auth.require: must be dmarc, dkim or none"},
		{"duration as a bare number", map[string]any{"poll_interval": 60}, "into time.Duration"},
		{"duration nonsense", map[string]any{"poll_interval": "soon"}, "into time.Duration"},
		{"poll too fast", map[string]any{"poll_interval": "10ms"}, "poll_interval: must be at least 1s"},
		{"idle_restart too long", map[string]any{"imap.idle_restart": "15m"}, "imap.idle_restart: must be more than 0 and at most 10m0s"},
		{"zero command timeout", map[string]any{"imap.command_timeout": "0s"}, "imap.command_timeout: must be more than 0"},
		{"processed is the inbox", map[string]any{"imap.processed_mailbox": "inbox"}, "imap.processed_mailbox: must differ"},
		{"no rejected mailbox", map[string]any{"imap.rejected_mailbox": ""}, "imap.rejected_mailbox: required"},
		{"no connections", map[string]any{"smtp.connections": 0}, "smtp.connections: must be 1-16"},
		{"zero limit", map[string]any{"limits.max_lines": 0}, "limits.max_lines: must be at least 1"},
		{"negative size", map[string]any{"limits.max_message_bytes": -1}, "limits.max_message_bytes: must be at least 1"},
		{"weekday abbreviated", map[string]any{"digest.weekday": "mon"}, "digest.weekday: must be a day of the week"},
		{"hour 25", map[string]any{"digest.time": "25:00"}, "digest.time: must be a 24-hour time"},
		{"time without minutes", map[string]any{"digest.time": "8"}, "digest.time"},
		{"unknown time zone", map[string]any{"digest.timezone": "Mars/Olympus_Mons"}, "digest.timezone: unknown time zone"},
		{"retry_max below retry_initial", map[string]any{"outbox.retry_max": "1s"}, "outbox.retry_max: must be at least outbox.retry_initial"},
		{"give up before retry_max", map[string]any{"outbox.give_up_after": "30m"}, "outbox.give_up_after: must be at least outbox.retry_max"},
		{"message age too short", map[string]any{"limits.max_message_age": "10m"}, "limits.max_message_age: must be at least 1h"},
		{"reply cap too small", map[string]any{"limits.max_reply_bytes": 1000}, "limits.max_reply_bytes: must be at least"},
		{"no attempts", map[string]any{"limits.max_attempts": 0}, "limits.max_attempts: must be at least 1"},
		{"negative stranger budget", map[string]any{"limits.stranger_replies_per_hour": -1}, "limits.stranger_replies_per_hour: must be 0"},
		{"bad alias", map[string]any{"bot.aliases": []any{"not an address"}}, "bot.aliases[0]: must be a plain email address"},
		{"log level", map[string]any{"logging.level": "verbose"}, "logging.level: must be debug, info, warn or error"},
		{"log format", map[string]any{"logging.format": "xml"}, "logging.format: must be text or json"},
		{"log format under the former name", map[string]any{"log.format": "xml"}, "log.format: must be text or json"},
		{"log and logging both", map[string]any{"log.format": "json", "logging.level": "debug"},
			"log: the former name of logging; both are set"},
		{"http listen without a port", map[string]any{"http.listen": "127.0.0.1"}, "http.listen: must be host:port"},
		{"http listen port 0", map[string]any{"http.listen": "127.0.0.1:0"}, "http.listen: must be host:port"},
		{"http listen as a URL", map[string]any{"http.listen": "http://127.0.0.1:8080"}, "http.listen: must be host:port"},
		{"inbox limit zero", map[string]any{"health.inbox_stale_after": "0s"}, "health.inbox_stale_after: must be at least 1s"},
		{"outbox limit too short", map[string]any{"health.outbox_stale_after": "10ms"}, "health.outbox_stale_after: must be at least 1s"},
		{"neither imap nor lmtp", map[string]any{"imap": deleted{}}, "imap.host: required"},
		{"lmtp without a port", map[string]any{"lmtp.listen": "127.0.0.1"}, "lmtp.listen: must be host:port"},
		{"lmtp on a relative socket path", map[string]any{"lmtp.listen": "unix:lmtp.sock"}, "lmtp.listen: a unix socket needs an absolute path"},
		{"lmtp with imap half written", map[string]any{"lmtp.listen": "127.0.0.1:2424", "imap.username": deleted{}}, "imap.username: required"},
		{"fast poll too fast", map[string]any{"imap.fast_poll.every": "10ms"}, "imap.fast_poll.every: must be 0 (always IDLE) or from 50ms"},
		{"fast poll for no time", map[string]any{"imap.fast_poll.for": "0s"}, "imap.fast_poll.for: must be more than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := yamlWith(t, tt.overrides)
			c, err := Parse(data, testEnv)
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", data)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with the error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseDocumentShape(t *testing.T) {
	valid := string(yamlWith(t, nil))
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "empty"},
		{"only a comment", "# nothing here\n", "empty"},
		{"two documents", valid + "---\n" + valid, "more than one YAML document"},
		{"not a mapping", "- a\n- b\n", "cannot unmarshal"},
		{"duplicate key", valid + "poll_interval: 5s\npoll_interval: 6s\n", "already defined"},
		{"key without a value", valid + "limits:\n  max_lines:\n", "limits.max_lines: no value"},
		{"mailbox without a value", `
bot: {address: visa@example.org}
imap:
  host: 127.0.0.1
  tls: none
  username: visa
  password_env: MAILBOT_IMAP_PASSWORD
  processed_mailbox:
smtp: {host: 127.0.0.1, tls: none}
store: {path: /tmp/visa.db}
auth: {require: none}
`, "imap.processed_mailbox: no value (line 8)"},
		{"top-level key without a value", valid + "poll_interval: ~\n", "poll_interval: no value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), testEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseEmptySection(t *testing.T) {
	// A section whose keys are all commented out keeps its defaults.
	c := mustParse(t, append(yamlWith(t, nil), "outbox:\n  # retry_max: 2h\nlogging:\n"...))
	if c.Outbox.RetryMax != Default().Outbox.RetryMax || c.Log.Level != "info" {
		t.Errorf("empty sections lost their defaults: outbox.retry_max %v, log.level %q", c.Outbox.RetryMax, c.Log.Level)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := Parse(yamlWith(t, map[string]any{
		"imap.port":         0,
		"imap.tls":          "none",
		"smtp.connections":  99,
		"store":             map[string]any{},
		"digest.weekday":    "someday",
		"imap.password_env": "UNSET",
	}), testEnv)
	if err == nil {
		t.Fatal("Parse accepted a config with six problems")
	}
	for _, key := range []string{"imap.tls:", "smtp.connections:", "store.path:", "digest.weekday:", "imap.password_env:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s:\n%v", key, err)
		}
	}
	// imap.port 0 means "the default for the TLS mode", 143 for none.
	if strings.Contains(err.Error(), "imap.port") {
		t.Errorf("imap.port 0 should take the default:\n%v", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 5 {
		t.Errorf("got %d problems, want 5:\n%v", n, err)
	}
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	c := Default()
	c.Bot.Address = "visa@localhost"
	c.IMAP.Host, c.IMAP.Port, c.IMAP.TLS = "127.0.0.1", 1143, "none"
	c.IMAP.Username, c.IMAP.Password = "visa@localhost", "demo"
	c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS = "127.0.0.1", 1025, "none"
	c.Store.Path = "/tmp/demo.db"
	c.Auth.Require = "none"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	c.IMAP.Password = ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "imap.password_env: required") {
		t.Errorf("Validate without an IMAP password = %v, want imap.password_env: required", err)
	}
}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name      string
		overrides map[string]any
		want      string
		warning   string
	}{
		{"environment", nil, "imap-secret", ""},
		{"file with newline", map[string]any{"imap.password_env": deleted{}, "imap.password_file": write("nl", "file secret\n")},
			"file secret", ""},
		{"file with CRLF", map[string]any{"imap.password_env": deleted{}, "imap.password_file": write("crlf", "s3cret\r\n")},
			"s3cret", ""},
		{"file keeps inner and leading spaces", map[string]any{"imap.password_env": deleted{}, "imap.password_file": write("sp", " a b")},
			" a b", ""},
		{"literal", map[string]any{"imap.password_env": deleted{}, "imap.password": "inline-secret"},
			"inline-secret", "imap.password: the password is in the config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, yamlWith(t, tt.overrides))
			if c.IMAP.Password != tt.want {
				t.Errorf("IMAP.Password = %q, want %q", c.IMAP.Password, tt.want)
			}
			warnings := strings.Join(c.Warnings(), "\n")
			if tt.warning == "" && warnings != "" {
				t.Errorf("unexpected warnings: %s", warnings)
			}
			if !strings.Contains(warnings, tt.warning) {
				t.Errorf("warnings %q do not contain %q", warnings, tt.warning)
			}
			out := c.Redacted()
			for _, secret := range []string{tt.want, c.SMTP.Password} {
				if strings.Contains(out, secret) {
					t.Errorf("Redacted shows the secret %q:\n%s", secret, out)
				}
			}
		})
	}

	t.Run("empty file", func(t *testing.T) {
		_, err := Parse(yamlWith(t, map[string]any{
			"imap.password_env": deleted{}, "imap.password_file": write("empty", "\n"),
		}), testEnv)
		if err == nil || !strings.Contains(err.Error(), "imap.password_file:") {
			t.Errorf("Parse = %v, want an imap.password_file error", err)
		}
	})
}

func TestRedacted(t *testing.T) {
	c := mustParse(t, yamlWith(t, map[string]any{
		"smtp.password_env": deleted{}, "smtp.password": "hunter2",
	}))
	out := c.Redacted()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "imap-secret") {
		t.Fatalf("Redacted shows a password:\n%s", out)
	}
	if c.SMTP.InlinePassword != "hunter2" || c.SMTP.Password != "hunter2" {
		t.Errorf("Redacted changed the config: smtp password now %q / %q", c.SMTP.InlinePassword, c.SMTP.Password)
	}
	var back map[string]any
	if err := yaml.Unmarshal([]byte(out), &back); err != nil {
		t.Fatalf("Redacted is not YAML: %v\n%s", err, out)
	}
	tests := []struct {
		section, key string
		want         any
	}{
		{"smtp", "password", "[redacted]"},
		{"imap", "password_env", "MAILBOT_IMAP_PASSWORD"},
		{"imap", "port", 993},
		{"imap", "idle_restart", "5m0s"},
		{"digest", "time", "08:00"},
	}
	for _, tt := range tests {
		section, _ := back[tt.section].(map[string]any)
		if got := section[tt.key]; got != tt.want {
			t.Errorf("%s.%s = %v, want %v", tt.section, tt.key, got, tt.want)
		}
	}
	if _, ok := back["imap"].(map[string]any)["password"]; ok {
		t.Errorf("imap.password shown though none was written:\n%s", out)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]any
		want      []string
	}{
		{"clean", nil, nil},
		{"auth none", map[string]any{"auth.require": "none"}, []string{"auth.require: none"}},
		{"self-signed test server", map[string]any{"smtp.insecure_skip_verify": true}, []string{"smtp.insecure_skip_verify"}},
		{"no admins", map[string]any{"admins": []any{}}, []string{"admins: none listed"}},
		{"the former name of logging", map[string]any{"log.level": "debug"}, []string{"log: a former name: rename the section to logging"}},
		{"metrics public on loopback", map[string]any{"http.listen": "127.0.0.1:8080", "http.metrics_public": true}, nil},
		{"metrics public to the network", map[string]any{"http.listen": ":8080", "http.metrics_public": true},
			[]string{"http.metrics_public: /metrics and /healthz are served to anyone"}},
		{"lmtp on loopback", map[string]any{"lmtp.listen": "127.0.0.1:2424"}, nil},
		{"lmtp on a socket", map[string]any{"lmtp.listen": "unix:/run/mailbot/lmtp.sock"}, nil},
		{"lmtp to the network", map[string]any{"lmtp.listen": "0.0.0.0:2424"}, []string{"lmtp.listen: whoever reaches"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustParse(t, yamlWith(t, tt.overrides)).Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("Warnings() = %q, want %d warnings", got, len(tt.want))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("warning %q does not start with %q", got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDigestSchedule(t *testing.T) {
	tests := []struct {
		d            Digest
		weekday      time.Weekday
		hour, minute int
		zone         string
	}{
		{Digest{Weekday: "monday", Time: "08:00", Timezone: "UTC"}, time.Monday, 8, 0, "UTC"},
		{Digest{Weekday: "Sunday", Time: "23:59", Timezone: "Europe/Paris"}, time.Sunday, 23, 59, "Europe/Paris"},
		{Digest{Weekday: "friday", Time: "7:05", Timezone: "America/Argentina/Buenos_Aires"}, time.Friday, 7, 5, "America/Argentina/Buenos_Aires"},
	}
	for _, tt := range tests {
		s, err := tt.d.Schedule()
		if err != nil {
			t.Errorf("%+v: %v", tt.d, err)
			continue
		}
		if s.Weekday != tt.weekday || s.Hour != tt.hour || s.Minute != tt.minute || s.Location.String() != tt.zone {
			t.Errorf("%+v.Schedule() = %v %02d:%02d %v", tt.d, s.Weekday, s.Hour, s.Minute, s.Location)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("MAILBOT_IMAP_PASSWORD", "from-env")
	t.Setenv("MAILBOT_SMTP_PASSWORD", "from-env-too")
	path := filepath.Join(t.TempDir(), "mailbot.yaml")
	if err := os.WriteFile(path, yamlWith(t, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.IMAP.Password != "from-env" || c.SMTP.Password != "from-env-too" {
		t.Errorf("passwords = %q, %q; want them from the environment", c.IMAP.Password, c.SMTP.Password)
	}

	if err := os.WriteFile(path, yamlWith(t, map[string]any{"imap.port": -1}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "imap.port") {
		t.Errorf("Load of an invalid file = %v, want an error naming the file and imap.port", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load of a missing file = %v, want an error naming it", err)
	}
}

const examplePath = "../../config.example.yaml"

// TestExampleConfig keeps config.example.yaml loadable, with the SPEC's
// example values, and with every value shown equal to the documented default.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, data)
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("the example draws warnings: %q", w)
	}
	tests := []struct {
		key       string
		got, want any
	}{
		{"bot.address", c.Bot.Address, "visa@example.org"},
		{"imap.host", c.IMAP.Host, "imap.example.org"},
		{"imap.password_env", c.IMAP.PasswordEnv, "MAILBOT_IMAP_PASSWORD"},
		{"smtp.host", c.SMTP.Host, "smtp.example.org"},
		{"smtp.password_env", c.SMTP.PasswordEnv, "MAILBOT_SMTP_PASSWORD"},
		{"store.path", c.Store.Path, "/var/lib/mailbot/visa.db"},
		{"admins", strings.Join(c.Admins, ","), "admin@example.org"},
		{"auth.authserv_id", c.Auth.AuthservID, "mx.example.org"},
		{"http.listen", c.HTTP.Listen, "127.0.0.1:8080"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.key, tt.got, tt.want)
		}
	}

	// Everything else in the example is a default: the example and a
	// file holding only the required keys must come out the same.
	if got, want := c.Redacted(), mustParse(t, yamlWith(t, map[string]any{"http.listen": "127.0.0.1:8080"})).Redacted(); got != want {
		t.Errorf("the example's values differ from the defaults:\nexample:\n%s\ndefaults:\n%s", got, want)
	}
}

// TestExampleDocumentsEveryKey checks that config.example.yaml shows every
// key of Config, either set or, for alternatives such as password_file, in a
// comment of the form "# key: value" at the key's place.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	want := yamlKeys(reflect.TypeFor[Config](), "")
	leaves := map[string]bool{}
	for _, k := range want {
		leaves[k[strings.LastIndex(k, ".")+1:]] = true
	}

	// Uncomment "# key: value" lines whose key is one of ours, keeping the
	// indentation, then read the keys from the YAML tree.
	commented := regexp.MustCompile(`^(\s*)#\s*([a-z_]+):(.*)$`)
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		if m := commented.FindStringSubmatch(line); m != nil && leaves[m[2]] {
			lines[i] = m[1] + m[2] + ":" + m[3]
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), &root); err != nil {
		t.Fatalf("the example with its commented keys restored is not YAML: %v", err)
	}
	have := map[string]bool{}
	collectKeys(root.Content[0], "", have)

	if len(want) < 40 {
		t.Fatalf("found only %d keys in Config: is yamlKeys broken? %q", len(want), want)
	}
	for _, k := range want {
		if !have[k] {
			t.Errorf("config.example.yaml does not document %s", k)
		}
	}
}

// yamlKeys lists the dotted YAML keys of a struct type.
func yamlKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" {
			keys = append(keys, yamlKeys(f.Type, prefix)...)
			continue
		}
		key := prefix + name
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, yamlKeys(f.Type, key+".")...)
		} else {
			keys = append(keys, key)
		}
	}
	return keys
}

func collectKeys(n *yaml.Node, prefix string, into map[string]bool) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := prefix + n.Content[i].Value
		into[key] = true
		collectKeys(n.Content[i+1], key+".", into)
	}
}

func TestExpandCredentials(t *testing.T) {
	env := func(dir string) func(string) string {
		return func(name string) string {
			return map[string]string{
				CredentialsVar: dir,
				"HOME":         "/root",
				"CREDENTIALS":  "/elsewhere",
			}[name]
		}
	}
	tests := []struct {
		path, dir string
		want      string
		err       string
	}{
		{"$CREDENTIALS_DIRECTORY/imap-password", "/run/credentials/mailbot.service", "/run/credentials/mailbot.service/imap-password", ""},
		{"${CREDENTIALS_DIRECTORY}/imap-password", "/run/credentials/mailbot.service", "/run/credentials/mailbot.service/imap-password", ""},
		{"$CREDENTIALS_DIRECTORY/sub/dir/pw", "/run/secrets/", "/run/secrets/sub/dir/pw", ""},
		{"$CREDENTIALS_DIRECTORY", "/run/secrets", "/run/secrets", ""},
		// Not at the start, or no variable at all: the path as written.
		{"/etc/mailbot/imap-password", "/run/secrets", "/etc/mailbot/imap-password", ""},
		{"/srv/$CREDENTIALS_DIRECTORY/pw", "/run/secrets", "/srv/$CREDENTIALS_DIRECTORY/pw", ""},
		{"relative/pw", "", "relative/pw", ""},
		// Only that variable, and only as a whole word.
		{"$HOME/pw", "/run/secrets", "", `only $CREDENTIALS_DIRECTORY is expanded`},
		{"${HOME}/pw", "/run/secrets", "", `only $CREDENTIALS_DIRECTORY is expanded`},
		{"$CREDENTIALS/pw", "/run/secrets", "", `only $CREDENTIALS_DIRECTORY is expanded`},
		{"$CREDENTIALS_DIRECTORY_OLD/pw", "/run/secrets", "", `only $CREDENTIALS_DIRECTORY is expanded`},
		{"${CREDENTIALS_DIRECTORY}pw", "/run/secrets", "", `only $CREDENTIALS_DIRECTORY is expanded`},
		{"$CREDENTIALS_DIRECTORY/pw", "", "", "$CREDENTIALS_DIRECTORY is not set"},
	}
	for _, tt := range tests {
		got, err := ExpandCredentials(tt.path, env(tt.dir))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ExpandCredentials(%q) = %q, %v; want an error with %q", tt.path, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ExpandCredentials(%q) with %s=%q = %q, %v; want %q", tt.path, CredentialsVar, tt.dir, got, err, tt.want)
		}
	}
}

// TestPasswordFileFromCredentials reads both passwords from the directory
// systemd hands the service, the way the unit in packaging/ sets it up.
func TestPasswordFileFromCredentials(t *testing.T) {
	dir := t.TempDir()
	for name, secret := range map[string]string{"imap-password": "imap-cred\n", "smtp-password": "smtp-cred"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	data := yamlWith(t, map[string]any{
		"imap.password_env": deleted{}, "imap.password_file": "$CREDENTIALS_DIRECTORY/imap-password",
		"smtp.password_env": deleted{}, "smtp.password_file": "${CREDENTIALS_DIRECTORY}/smtp-password",
	})
	c, err := Parse(data, func(name string) string {
		if name == CredentialsVar {
			return dir
		}
		return testEnv(name)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.IMAP.Password != "imap-cred" || c.SMTP.Password != "smtp-cred" {
		t.Errorf("passwords %q, %q; want imap-cred, smtp-cred", c.IMAP.Password, c.SMTP.Password)
	}
	// The config keeps the path as written: check-config shows it so.
	if out := c.Redacted(); !strings.Contains(out, "$CREDENTIALS_DIRECTORY/imap-password") {
		t.Errorf("Redacted does not show the path as written:\n%s", out)
	}

	// Outside the service the variable is unset: the error names the key
	// and says what sets it.
	_, err = Parse(data, testEnv)
	for _, want := range []string{"imap.password_file:", "smtp.password_file:", "LoadCredential="} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse without %s = %v, want an error with %q", CredentialsVar, err, want)
		}
	}
}

// bot.contact names whom users ask; without it, the first admin.
func TestBotContact(t *testing.T) {
	b := Bot{}
	if got := b.ContactOrAdmin([]string{"admin@example.org", "other@example.org"}); got != "admin@example.org" {
		t.Errorf("default contact = %q, want the first admin", got)
	}
	if got := b.ContactOrAdmin(nil); got != "" {
		t.Errorf("contact with no admins = %q, want none", got)
	}
	b.Contact = "the Visa team, +49 30 1234567"
	if got := b.ContactOrAdmin([]string{"admin@example.org"}); got != b.Contact {
		t.Errorf("contact = %q, want bot.contact", got)
	}
	cfg := Default()
	cfg.Bot.Address, cfg.Admins = "visa@example.org", []string{"admin@example.org"}
	cfg.Bot.Contact = "line one\nline two"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "bot.contact") {
		t.Errorf("a contact of two lines: %v, want a bot.contact error", err)
	}
}
