// Package config loads and checks the mailbot's YAML configuration.
//
// The key names are part of the product's interface (SPEC.md, "Running it"):
// users keep them in their files and scripts, so they are never renamed.
// config.example.yaml at the repository root documents every key; the tests
// keep it in step with this package.
//
// Loading is strict: an unknown key is an error, so that a typo does not
// silently leave a default in place. Every problem is reported at once,
// each naming its key, so a user fixes a file in one pass.
//
// Passwords come from an environment variable (password_env) or a file
// (password_file, for Docker secrets and systemd credentials: a path may
// begin with $CREDENTIALS_DIRECTORY), so that the YAML itself can be shared;
// a literal password is accepted with a warning.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // digest time zones must load on hosts without a zoneinfo database

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"

	"github.com/coworkingvisa/mailbot/commands/address"
)

// Config is the whole configuration of one bot.
type Config struct {
	Bot   Bot   `yaml:"bot"`
	IMAP  IMAP  `yaml:"imap"`
	SMTP  SMTP  `yaml:"smtp"`
	Store Store `yaml:"store"`
	// Admins may manage spaces and managers. In canonical form
	// (address.Canonical) once loaded, as the senders they are compared with.
	Admins []string `yaml:"admins"`
	Auth   Auth     `yaml:"auth"`
	// PollInterval is how often the inbox is checked where the server has
	// no IDLE, and as a safety net where it has.
	PollInterval time.Duration `yaml:"poll_interval"`
	Limits       Limits        `yaml:"limits"`
	Digest       Digest        `yaml:"digest"`
	// Privacy says how long the records of visits are kept.
	Privacy   Privacy   `yaml:"privacy"`
	Outbox    Outbox    `yaml:"outbox"`
	Templates Templates `yaml:"templates"`
	// Log is the logging: section. Its former name, log:, is still read
	// (see file), with a warning.
	Log Log `yaml:"logging"`
	// HTTP is the optional web listener: /healthz, /metrics.
	HTTP HTTP `yaml:"http"`
	// LMTP is the optional listener an MTA delivers the bot's mail to,
	// instead of (or beside) the IMAP mailbox.
	LMTP LMTP `yaml:"lmtp"`
	// Health says when /healthz calls the bot unhealthy.
	Health Health `yaml:"health"`

	// OAuth2 is the bot's own OAuth2 login, for imap and smtp with
	// auth: oauth2.
	OAuth2 OAuth2 `yaml:"oauth2"`

	// deprecated lists the former key names the file used, for Warnings.
	deprecated []string
}

// Bot is the bot's own identity, used as the From of every reply.
type Bot struct {
	Address string `yaml:"address"`
	// Name is the display name in From; "Coworking Visa" by default.
	Name string `yaml:"name"`
	// Aliases are other addresses that deliver to the bot's mailbox. A
	// command is carried out only from mail whose To or Cc names the bot's
	// address or one of these: mail that reached the bot as a Bcc, or
	// through a list or forwarding, was not written to it. Lowercased on
	// load.
	Aliases []string `yaml:"aliases"`
	// Language is the network's language ("en", "fr", "de", "es", or one
	// an operator added in templates.dir): of admin notices, of the network
	// digest, and of the replies and digests of spaces that choose none
	// (add space … language=). "en" by default. Lowercased on load.
	Language string `yaml:"language"`
	// Contact is the people to ask, as users read it: an address
	// ("visa-team@example.org") or a sentence ("the Visa team, +49 30
	// 1234567, hello@coworkingvisa.org"). The help names it, and so do
	// refusals whose remedy is a person (DENIED: ask … to add you). Empty,
	// the default, means the first admin's address.
	Contact string `yaml:"contact"`
}

// ContactOrAdmin is the contact replies name: bot.contact, else the first
// admin's address, else "".
func (b Bot) ContactOrAdmin(admins []string) string {
	if b.Contact != "" {
		return b.Contact
	}
	if len(admins) > 0 {
		return admins[0]
	}
	return ""
}

// Server is what IMAP and SMTP share: where the server is and how to log in.
type Server struct {
	Host string `yaml:"host"`
	// Port defaults by TLS mode: see Parse.
	Port int `yaml:"port"`
	// TLS is "implicit" (the default), "starttls" or "none"; "none" is
	// allowed only for a loopback host.
	TLS string `yaml:"tls"`
	// Auth is how the bot logs in: "password" (the default) or "oauth2",
	// an access token from the oauth2 section (SASL OAUTHBEARER or
	// XOAUTH2, whichever the server offers).
	Auth     string `yaml:"auth"`
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable that holds the password.
	PasswordEnv string `yaml:"password_env,omitempty"`
	// PasswordFile names a file that holds the password; a trailing
	// newline is ignored.
	PasswordFile string `yaml:"password_file,omitempty"`
	// InlinePassword is a password written into the YAML itself: accepted,
	// but Warnings mentions it.
	InlinePassword string `yaml:"password,omitempty"`
	// Password is the resolved password, from whichever source was named.
	// It is never written out.
	Password string `yaml:"-"`
	// InsecureSkipVerify accepts any certificate: for test servers with
	// self-signed certificates only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// IMAP is the inbox the bot reads commands from.
type IMAP struct {
	Server `yaml:",inline"`
	// Mailbox is where commands arrive.
	Mailbox string `yaml:"mailbox"`
	// ProcessedMailbox receives handled messages; "" leaves them in place.
	ProcessedMailbox string `yaml:"processed_mailbox"`
	// RejectedMailbox receives messages that failed authentication and
	// automatic mail (auto-replies, bounces, lists).
	RejectedMailbox string `yaml:"rejected_mailbox"`
	// QuarantineMailbox receives messages whose handling kept failing
	// (an internal error three times), so one bad message cannot stall
	// the inbox.
	QuarantineMailbox string `yaml:"quarantine_mailbox"`
	// IdleRestart renews IDLE before servers drop an idle client
	// (some do after about 10 minutes).
	IdleRestart time.Duration `yaml:"idle_restart"`
	// CommandTimeout bounds each IMAP command.
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// FastPoll cuts the wait behind the server's IDLE notice while mail
	// is coming in (Dovecot reports new mail to an idling client no
	// sooner than 500 ms after it arrived, a NOOP sees it at once).
	FastPoll FastPoll `yaml:"fast_poll"`
}

// FastPoll: for For after mail last arrived, the inbox is polled with NOOP
// every Every instead of waiting in IDLE. Every 0 always waits in IDLE.
type FastPoll struct {
	Every time.Duration `yaml:"every"`
	For   time.Duration `yaml:"for"`
}

// LMTP is the bot's own LMTP listener (RFC 2033): the mail server hands
// the bot's mail to it instead of storing it in a mailbox.
type LMTP struct {
	// Listen is host:port, or unix:/path for a unix socket; "" listens
	// nowhere.
	Listen string `yaml:"listen"`
}

// SMTP is the submission server replies are sent through.
type SMTP struct {
	Server `yaml:",inline"`
	// Connections is how many SMTP connections send in parallel.
	Connections int `yaml:"connections"`
}

// Store is where the bot keeps its state.
type Store struct {
	// Path is the bbolt database file.
	Path string `yaml:"path"`
}

// Auth says which senders are trusted (SPEC.md, "Trust").
type Auth struct {
	// Require is "dmarc", "dkim" or "none" (testing only).
	Require string `yaml:"require"`
	// AuthservID is the only authserv-id whose Authentication-Results
	// headers are believed; required unless Require is "none" or
	// VerifyDKIM is set. With VerifyDKIM and no AuthservID, no
	// Authentication-Results is believed at all (Microsoft 365, whose
	// fields carry no authserv-id and are not removed when forged).
	AuthservID string `yaml:"authserv_id"`
	// VerifyDKIM makes the bot check DKIM signatures itself when the
	// Authentication-Results of AuthservID do not authenticate a sender
	// (for providers such as Microsoft 365 that write no usable ones): a
	// verified signature whose d= is aligned with the From domain then
	// authenticates it, for require dmarc and dkim alike.
	VerifyDKIM bool `yaml:"verify_dkim"`
	// DNSServer is the "host:port" of the DNS server asked for DKIM keys;
	// "" uses the system resolver.
	DNSServer string `yaml:"dns_server"`
	// DNSTimeout bounds the DNS look-ups for one message; a timeout leaves
	// the sender unauthenticated.
	DNSTimeout time.Duration `yaml:"dns_timeout"`
}

// Limits bound what one sender or one message can cost.
type Limits struct {
	// RepliesPerSenderPerHour limits replies to one sender (0 = none).
	RepliesPerSenderPerHour int `yaml:"replies_per_sender_per_hour"`
	// RepliesPerMinute is the global circuit breaker (0 = none).
	RepliesPerMinute int   `yaml:"replies_per_minute"`
	MaxMessageBytes  int64 `yaml:"max_message_bytes"`
	MaxLines         int   `yaml:"max_lines"`
	MaxCommands      int   `yaml:"max_commands"`
	// ImportMaxBytes and ImportMaxRows bound a CSV roster sent by email.
	ImportMaxBytes int `yaml:"import_max_bytes"`
	ImportMaxRows  int `yaml:"import_max_rows"`
	// ConfirmRemovals: removals, deactivations and renames past this many
	// in a space in a rolling day must be confirmed first (an import with
	// replace always is).
	ConfirmRemovals int `yaml:"confirm_removals"`
	// MaxMessageAge: a message whose Date is older than this changes
	// nothing (an old signed mail replayed), and is answered with an
	// ERROR. Raise it after a long outage to handle the backlog.
	MaxMessageAge time.Duration `yaml:"max_message_age"`
	// MaxReplyBytes caps one reply; a larger answer is cut and says so.
	MaxReplyBytes int `yaml:"max_reply_bytes"`
	// MaxAttempts: a message whose handling fails this often (and, for a
	// DNS that does not answer, over at least an hour) goes to quarantine.
	MaxAttempts int `yaml:"max_attempts"`
	// StrangerRepliesPerDomainPerDay is the daily budget of answers shared
	// by every authenticated sender of one domain who is neither an admin
	// nor a manager (each of them gets at most one answer a day).
	StrangerRepliesPerDomainPerDay int `yaml:"stranger_replies_per_domain_per_day"`
	// StrangerRepliesPerHour is the hourly budget of answers shared by all
	// such senders together, so that many domains cannot add up.
	StrangerRepliesPerHour int `yaml:"stranger_replies_per_hour"`
}

// Digest is when the weekly roster digest goes out, in each space's own
// time zone; Timezone is for spaces that name none.
type Digest struct {
	Weekday  string `yaml:"weekday"`
	Time     string `yaml:"time"`
	Timezone string `yaml:"timezone"`
	// RosterConfirmDays: a space whose roster was neither confirmed
	// (confirm roster) nor changed for this many days is reminded in each
	// digest; past twice as long, hosts hear of it when they verify its
	// members, and the network digest lists it. 0 never reminds.
	RosterConfirmDays int `yaml:"roster_confirm_days"`
}

// Privacy is how long the bot keeps what it learns of people's visits.
type Privacy struct {
	// Retention: verifications and visits older than this are removed, and
	// in older audit records the addresses of people on no roster any more
	// are replaced by pseudonyms.
	Retention LongDuration `yaml:"retention"`
}

// LongDuration is a duration that may also be written in days, "400d",
// besides Go's form ("9600h"): spans of months read badly in hours.
type LongDuration time.Duration

// UnmarshalYAML reads "400d", or a Go duration such as "9600h".
func (d *LongDuration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseLongDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = LongDuration(v)
	return nil
}

// MarshalYAML writes whole days as "400d", anything else as Go does.
func (d LongDuration) MarshalYAML() (any, error) { return d.String(), nil }

func (d LongDuration) String() string {
	if v := time.Duration(d); v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return time.Duration(d).String()
}

// ParseLongDuration reads a number of days ("400d") or a Go duration.
func ParseLongDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number of days such as 400d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write days (400d) or hours (9600h)", s)
	}
	return v, nil
}

// Outbox is the backoff for replies that cannot be sent now.
type Outbox struct {
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// GiveUpAfter is how long a reply is retried before it is dropped.
	GiveUpAfter time.Duration `yaml:"give_up_after"`
}

// Templates says where an operator's own templates are.
type Templates struct {
	// Dir holds files that replace the embedded templates of the same name;
	// "" uses the embedded ones only.
	Dir string `yaml:"dir"`
}

// Log configures the daemon's log.
type Log struct {
	Level string `yaml:"level"` // debug, info, warn or error
	// Format is text (logfmt) or json (one JSON object a line, for log
	// shippers).
	Format string `yaml:"format"`
}

// HTTP is the bot's own web listener, off unless Listen is set.
type HTTP struct {
	// Listen is the host:port to serve on; "" serves nothing, so that
	// several bots on one machine never fight over a port.
	Listen string `yaml:"listen"`
	// MetricsPublic serves /metrics and /healthz to any peer; by default
	// only to loopback peers not behind a proxy, since they tell how busy
	// the network is and when its mail servers fail.
	MetricsPublic bool `yaml:"metrics_public"`
}

// Health holds the limits past which /healthz answers 503.
type Health struct {
	// InboxStaleAfter: the inbox not reached for longer than this (no
	// answer from the IMAP server, and not waiting on a live connection)
	// is unhealthy.
	InboxStaleAfter time.Duration `yaml:"inbox_stale_after"`
	// OutboxStaleAfter: a reply waiting in the outbox for longer than this
	// is unhealthy.
	OutboxStaleAfter time.Duration `yaml:"outbox_stale_after"`
}

// file is the YAML document: the Config, and the sections it still reads
// under a former name.
type file struct {
	*Config `yaml:",inline"`
	// OldLog is log:, the former name of logging:.
	OldLog *Log `yaml:"log"`
}

// OAuth2 is the bot's own OAuth2 client, for the servers whose auth is
// oauth2. Either the provider's token endpoint gets access tokens with a
// refresh token that `mailbot oauth login` stored in the store, or
// TokenCommand prints one.
type OAuth2 struct {
	// Provider is "google", "microsoft" or "custom"; it sets the
	// endpoints and the default scopes.
	Provider string `yaml:"provider"`
	// ClientID is the OAuth2 client (the app registered with the provider).
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv and ClientSecretFile name where the client secret
	// is: required for Google's clients, none for Microsoft's public
	// clients.
	ClientSecretEnv  string `yaml:"client_secret_env,omitempty"`
	ClientSecretFile string `yaml:"client_secret_file,omitempty"`
	// ClientSecret is the resolved secret; it is never written out.
	ClientSecret string `yaml:"-"`
	// Tenant is Microsoft's directory: "common", "organizations", or the
	// tenant's id or domain.
	Tenant string `yaml:"tenant"`
	// AuthURL, DeviceAuthURL and TokenURL are the endpoints of a custom
	// provider: the browser login, the device login, the token endpoint.
	AuthURL       string `yaml:"auth_url"`
	DeviceAuthURL string `yaml:"device_auth_url"`
	TokenURL      string `yaml:"token_url"`
	// Scopes default by provider (filled in by Parse).
	Scopes []string `yaml:"scopes"`
	// TokenCommand is a shell command that prints an access token, for
	// operators whose tokens come from a helper of their own; the
	// provider keys are then not used.
	TokenCommand string `yaml:"token_command"`
	// NotifyAdminsAfter: when the bot has not been able to log in with
	// OAuth2 for this long, the admins are told by mail (once, and once
	// more when it works again).
	NotifyAdminsAfter time.Duration `yaml:"notify_admins_after"`
}

// Providers' default scopes: what IMAP and SMTP need, and for Microsoft
// offline_access, without which no refresh token is issued.
var defaultScopes = map[string][]string{
	"google": {"https://mail.google.com/"},
	"microsoft": {"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send",
		"offline_access"},
}

// Schedule is Digest in parsed form, for the scheduler.
type Schedule struct {
	Weekday              time.Weekday
	Hour, Minute, Second int
	// Location is the default time zone, for spaces that name none.
	Location *time.Location
}

// maxIdleRestart: some servers drop an idle client after about 10 minutes.
const maxIdleRestart = 10 * time.Minute

// MaxConnections keeps the bot a polite client of its submission server:
// the most SMTP connections it opens at once, stalled sends included.
const MaxConnections = 16

// Default returns a Config holding every default; YAML is decoded over it,
// so a key that is absent keeps its default and a key that is present, even
// empty, replaces it. Programs that build a config in code (the demo) start
// from it too.
func Default() *Config {
	return &Config{
		Bot: Bot{Name: "Coworking Visa", Language: "en"},
		IMAP: IMAP{
			Server:            Server{TLS: "implicit", Auth: "password"},
			Mailbox:           "INBOX",
			ProcessedMailbox:  "Processed",
			RejectedMailbox:   "Rejected",
			QuarantineMailbox: "Quarantine",
			IdleRestart:       5 * time.Minute,
			CommandTimeout:    60 * time.Second,
			// A NOOP every 100 ms for a minute after mail arrived: a front
			// desk's next verify is seen within 100 ms instead of 500, for
			// about 600 small commands after each burst of activity. At
			// 150 ms the bot's p50 was not always below a naive poller's
			// at 200 ms (BENCHMARKS.md).
			FastPoll: FastPoll{Every: 100 * time.Millisecond, For: time.Minute},
		},
		SMTP:         SMTP{Server: Server{TLS: "implicit", Auth: "password"}, Connections: 2},
		Auth:         Auth{Require: "dmarc", DNSTimeout: 5 * time.Second},
		PollInterval: 60 * time.Second,
		Limits: Limits{
			RepliesPerSenderPerHour: 60,
			// The breaker against loops, sized from what the bot can send:
			// its outbox submits about 500 replies a second to a local
			// Postfix (BENCHMARKS.md, outbox_*), 30,000 a minute. A burst
			// of real commands is held back by the mail servers long
			// before this; a loop, which runs as fast as the bot sends,
			// trips it within a minute.
			RepliesPerMinute: 20000,
			MaxMessageBytes:  10 << 20,
			MaxLines:         500,
			MaxCommands:      100,
			ImportMaxBytes:   2 << 20,
			ImportMaxRows:    20000,
			ConfirmRemovals:  20,
			MaxMessageAge:    7 * 24 * time.Hour,
			MaxReplyBytes:    5 << 20,
			MaxAttempts:      3,

			StrangerRepliesPerDomainPerDay: 20,
			StrangerRepliesPerHour:         100,
		},
		Digest: Digest{Weekday: "monday", Time: "08:00", Timezone: "UTC", RosterConfirmDays: 90},
		// A little over a year: this year's and last year's same month
		// can be compared, and nothing older is kept.
		Privacy: Privacy{Retention: LongDuration(400 * 24 * time.Hour)},
		// A reply answers a person who is waiting (a host at the front
		// desk): the first retry comes within seconds, and the queue
		// notices within 30 s when the submission server is back.
		Outbox: Outbox{
			RetryInitial: 5 * time.Second,
			RetryMax:     time.Hour,
			GiveUpAfter:  4 * 24 * time.Hour,
		},
		Log: Log{Level: "info", Format: "text"},
		// An IMAP server away for 5 minutes (the watcher retries within a
		// minute) or a reply kept from someone waiting for 15 is what an
		// operator should hear about; a restart or a short blip is not.
		Health: Health{InboxStaleAfter: 5 * time.Minute, OutboxStaleAfter: 15 * time.Minute},
		OAuth2: OAuth2{
			Tenant:            "common",
			NotifyAdminsAfter: 30 * time.Minute,
		},
	}
}

// Load reads the file at path and parses it with the process environment:
// see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads a configuration from YAML, fills in defaults, resolves the
// passwords and validates the result. env looks up environment variables
// (os.Getenv if nil); password files are read from the file system, relative
// to the working directory, after a leading $CREDENTIALS_DIRECTORY is
// expanded (ExpandCredentials).
//
// Default ports follow the TLS mode: IMAP 993 (implicit) or 143; SMTP 465
// (implicit), 587 (starttls) or 25 (none).
func Parse(data []byte, env func(string) string) (*Config, error) {
	return parse(data, env, true)
}

// LoadSkippingPasswords is Load without reading the IMAP and SMTP
// passwords, which stay empty: for `mailbot oauth login`, which needs the
// OAuth2 keys and the store but neither server's password (often readable
// by the service alone).
func LoadSkippingPasswords(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, os.Getenv, false)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func parse(data []byte, env func(string) string, passwords bool) (*Config, error) {
	if env == nil {
		env = os.Getenv
	}
	c := Default()
	f := file{Config: c, OldLog: &Log{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the configuration is empty")
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: a configuration is one")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err // cannot happen: the same bytes decoded above
	}
	if err := errors.Join(nullValues(&doc)...); err != nil {
		return nil, err
	}
	if err := f.oldNames(&doc); err != nil {
		return nil, err
	}

	c.normalize()
	c.IMAP.defaultPort(993, 143, 143)
	c.SMTP.defaultPort(465, 587, 25)
	var errs []error
	if passwords {
		errs = append(errs, c.IMAP.resolvePassword("imap", env), c.SMTP.resolvePassword("smtp", env))
	}
	if c.UsesOAuth2() {
		errs = append(errs, c.OAuth2.resolveSecret(env))
	}
	err := errors.Join(append(errs, c.Validate())...)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// oldNames carries the sections written under a former name over to
// their present one, and notes each for Warnings. A file may use one name
// or the other, not both: which one would win is not obvious to a reader.
func (f *file) oldNames(doc *yaml.Node) error {
	top := map[string]bool{}
	if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		for i := 0; i < len(doc.Content[0].Content); i += 2 {
			top[doc.Content[0].Content[i].Value] = true
		}
	}
	if !top["log"] {
		return nil
	}
	if top["logging"] {
		return errors.New("log: the former name of logging; both are set: keep only logging")
	}
	if f.OldLog != nil {
		if f.OldLog.Level != "" {
			f.Log.Level = f.OldLog.Level
		}
		if f.OldLog.Format != "" {
			f.Log.Format = f.OldLog.Format
		}
	}
	f.deprecated = append(f.deprecated, "log")
	return nil
}

// nullValues reports keys written without a value ("processed_mailbox:"),
// which YAML reads as "not set" and so as the default: rarely what the writer
// meant. A section left empty, all its keys commented out, is fine.
func nullValues(doc *yaml.Node) []error {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	sections := map[string]bool{"log": true} // the former name of logging
	for f := range reflect.TypeFor[Config]().Fields() {
		if f.Type.Kind() == reflect.Struct {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			sections[name] = true
		}
	}
	var errs []error
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch {
			case v.Kind == yaml.MappingNode:
				walk(v, prefix+k.Value+".")
			case v.Tag == "!!null" && !(prefix == "" && sections[k.Value]):
				errs = append(errs, fmt.Errorf("%s%s: no value (line %d): write \"\" for empty, or remove the key for the default",
					prefix, k.Value, k.Line))
			}
		}
	}
	walk(doc.Content[0], "")
	return errs
}

// normalize lowercases what is compared case-insensitively, and puts the
// admins' addresses in the senders' canonical form (validate reports one
// that has none).
func (c *Config) normalize() {
	for i, a := range c.Admins {
		a = strings.TrimSpace(a)
		if canon, err := address.Canonical(a); err == nil {
			a = canon
		}
		c.Admins[i] = a
	}
	for i, a := range c.Bot.Aliases {
		c.Bot.Aliases[i] = strings.ToLower(strings.TrimSpace(a))
	}
	c.Bot.Language = strings.ToLower(strings.TrimSpace(c.Bot.Language))
	c.Bot.Contact = strings.TrimSpace(c.Bot.Contact)
	c.LMTP.Listen = strings.TrimSpace(c.LMTP.Listen)
	for _, p := range []*string{
		&c.IMAP.TLS, &c.SMTP.TLS, &c.Auth.Require,
		&c.Digest.Weekday, &c.Log.Level, &c.Log.Format, &c.HTTP.Listen,
		&c.IMAP.Auth, &c.SMTP.Auth, &c.OAuth2.Provider,
	} {
		*p = strings.ToLower(strings.TrimSpace(*p))
	}
	if len(c.OAuth2.Scopes) == 0 && c.OAuth2.TokenCommand == "" {
		c.OAuth2.Scopes = slices.Clone(defaultScopes[c.OAuth2.Provider])
	}
}

func (s *Server) defaultPort(implicit, starttls, none int) {
	if s.Port != 0 {
		return
	}
	switch s.TLS {
	case "implicit":
		s.Port = implicit
	case "starttls":
		s.Port = starttls
	case "none":
		s.Port = none
	}
}

// resolvePassword fills Password from the source the YAML names.
func (s *Server) resolvePassword(key string, env func(string) string) error {
	switch {
	case s.PasswordEnv != "":
		if !isEnvName(s.PasswordEnv) {
			// Most likely the password itself pasted in: never echo it.
			return fmt.Errorf("%s.password_env: must name an environment variable (letters, digits, _), "+
				"not hold the password itself", key)
		}
		s.Password = env(s.PasswordEnv)
		if s.Password == "" {
			return fmt.Errorf("%s.password_env: environment variable %s is not set or empty", key, s.PasswordEnv)
		}
	case s.PasswordFile != "":
		path, err := ExpandCredentials(s.PasswordFile, env)
		if err != nil {
			return fmt.Errorf("%s.password_file: %w", key, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s.password_file: %w", key, err)
		}
		s.Password = strings.TrimRight(string(b), "\r\n")
		if s.Password == "" {
			return fmt.Errorf("%s.password_file: %s is empty", key, path)
		}
	case s.InlinePassword != "":
		s.Password = s.InlinePassword
	}
	return nil
}

// CredentialsVar is the environment variable in which systemd hands a
// service the directory of its credentials (LoadCredential=, see
// systemd.exec(5)). A *_file key may begin with it, so that one config file
// names the secrets wherever the service manager puts them.
const CredentialsVar = "CREDENTIALS_DIRECTORY"

// ExpandCredentials returns the path of a *_file key (imap.password_file,
// smtp.password_file, …) with a leading $CREDENTIALS_DIRECTORY or
// ${CREDENTIALS_DIRECTORY} replaced by that variable's value, as env gives
// it. That variable, at the start of the path and followed by "/" or
// nothing, is the only one expanded: a secret's path never depends on
// anything else in the environment. A path that begins with any other "$"
// is refused, as a variable that would not be expanded; a "$" further on
// is part of a file name. Callers prefix errors with the key.
func ExpandCredentials(path string, env func(string) string) (string, error) {
	if !strings.HasPrefix(path, "$") {
		return path, nil
	}
	rest, ok := strings.CutPrefix(path, "${"+CredentialsVar+"}")
	if !ok {
		rest, ok = strings.CutPrefix(path, "$"+CredentialsVar)
	}
	if !ok || rest != "" && rest[0] != '/' {
		return "", fmt.Errorf("%q: only $%s is expanded, at the start of the path (as $%s/NAME)",
			path, CredentialsVar, CredentialsVar)
	}
	dir := env(CredentialsVar)
	if dir == "" {
		return "", fmt.Errorf("$%s is not set: systemd sets it for a service with LoadCredential=; "+
			"elsewhere set it to the directory holding the secrets", CredentialsVar)
	}
	if rest == "" {
		return dir, nil
	}
	return strings.TrimRight(dir, "/") + rest, nil
}

// isEnvName reports whether s can be the name of an environment variable.
func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// Validate checks the configuration and reports every problem at once, each
// beginning with the key it concerns, as in "imap.port: must be 1-65535".
// It works on a Config built in code too (the demo does), with passwords set
// in Password directly.
func (c *Config) Validate() error {
	var p problems
	p.address("bot.address", c.Bot.Address)
	for i, a := range c.Bot.Aliases {
		p.address(fmt.Sprintf("bot.aliases[%d]", i), a)
	}
	if strings.ContainsFunc(c.Bot.Name, isControl) {
		p.add("bot.name", "must be one line of text")
	}
	if strings.ContainsFunc(c.Bot.Contact, isControl) || len(c.Bot.Contact) > 300 {
		p.add("bot.contact", "must be one line of text, at most 300 bytes")
	}
	if _, err := language.Parse(c.Bot.Language); err != nil || c.Bot.Language == "" {
		p.add("bot.language", "must be a language code such as en, fr, de or es")
	}

	if c.UsesIMAP() || c.LMTP.Listen == "" {
		c.validateIMAP(&p)
	}
	c.LMTP.validate(&p)

	c.SMTP.validate(&p, "smtp", false)
	if c.SMTP.Connections < 1 || c.SMTP.Connections > MaxConnections {
		p.add("smtp.connections", "must be 1-%d, got %d", MaxConnections, c.SMTP.Connections)
	}

	if c.Store.Path == "" {
		p.add("store.path", "required")
	}
	for i, a := range c.Admins {
		key := fmt.Sprintf("admins[%d]", i)
		p.address(key, a)
		if _, err := address.Canonical(a); err != nil {
			p.add(key, "%q could never match a sender: %v", a, err)
		}
	}

	switch c.Auth.Require {
	case "dmarc", "dkim":
		if c.Auth.AuthservID == "" && !c.Auth.VerifyDKIM {
			p.add("auth.authserv_id", "required unless auth.require is none or auth.verify_dkim is true: "+
				"the id your receiving server writes in Authentication-Results")
		}
	case "none":
	default:
		p.add("auth.require", "must be dmarc, dkim or none, got %q", c.Auth.Require)
	}
	if strings.ContainsFunc(c.Auth.AuthservID, func(r rune) bool { return r <= ' ' || r == ';' }) {
		p.add("auth.authserv_id", "must be a single token, got %q", c.Auth.AuthservID)
	}
	if c.Auth.DNSServer != "" {
		host, port, err := net.SplitHostPort(c.Auth.DNSServer)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			p.add("auth.dns_server", "must be host:port, such as 127.0.0.1:53 or [::1]:53, got %q", c.Auth.DNSServer)
		}
	}
	if c.Auth.DNSTimeout <= 0 || c.Auth.DNSTimeout > time.Minute {
		p.add("auth.dns_timeout", "must be more than 0 and at most 1m, got %v", c.Auth.DNSTimeout)
	}

	if c.PollInterval < time.Second {
		p.add("poll_interval", "must be at least 1s, got %v", c.PollInterval)
	}

	if c.Limits.RepliesPerSenderPerHour < 0 {
		p.add("limits.replies_per_sender_per_hour", "must be 0 (no limit) or more, got %d", c.Limits.RepliesPerSenderPerHour)
	}
	p.atLeastOne("limits.max_message_bytes", c.Limits.MaxMessageBytes)
	p.atLeastOne("limits.max_lines", int64(c.Limits.MaxLines))
	p.atLeastOne("limits.max_commands", int64(c.Limits.MaxCommands))
	if c.Limits.MaxMessageAge < time.Hour {
		p.add("limits.max_message_age", "must be at least 1h, got %v", c.Limits.MaxMessageAge)
	}
	if c.Limits.MaxReplyBytes < 64<<10 {
		p.add("limits.max_reply_bytes", "must be at least 65536 (64 KiB), got %d", c.Limits.MaxReplyBytes)
	}
	p.atLeastOne("limits.max_attempts", int64(c.Limits.MaxAttempts))
	for _, l := range []struct {
		key string
		v   int
	}{
		{"limits.stranger_replies_per_domain_per_day", c.Limits.StrangerRepliesPerDomainPerDay},
		{"limits.stranger_replies_per_hour", c.Limits.StrangerRepliesPerHour},
	} {
		if l.v < 0 {
			p.add(l.key, "must be 0 (no answers to strangers) or more, got %d", l.v)
		}
	}

	if _, err := c.Digest.Schedule(); err != nil {
		p = append(p, err)
	}
	if c.Digest.RosterConfirmDays < 0 {
		p.add("digest.roster_confirm_days", "must be 0 (no reminders) or more, got %d", c.Digest.RosterConfirmDays)
	}
	if time.Duration(c.Privacy.Retention) < 24*time.Hour {
		p.add("privacy.retention", "must be at least a day (1d), got %v", c.Privacy.Retention)
	}

	p.positive("outbox.retry_initial", c.Outbox.RetryInitial)
	if c.Outbox.RetryMax < c.Outbox.RetryInitial {
		p.add("outbox.retry_max", "must be at least outbox.retry_initial (%v), got %v", c.Outbox.RetryInitial, c.Outbox.RetryMax)
	}
	if c.Outbox.GiveUpAfter < c.Outbox.RetryMax {
		p.add("outbox.give_up_after", "must be at least outbox.retry_max (%v), got %v", c.Outbox.RetryMax, c.Outbox.GiveUpAfter)
	}

	if c.UsesOAuth2() {
		c.OAuth2.validate(&p)
		if c.IMAP.Auth == "oauth2" && c.SMTP.Auth == "oauth2" && !strings.EqualFold(c.IMAP.Username, c.SMTP.Username) {
			p.add("smtp.username", "must be imap.username (%s) when both log in with oauth2: one OAuth2 login serves one account", c.IMAP.Username)
		}
	}

	logKey := "logging"
	if slices.Contains(c.deprecated, "log") {
		logKey = "log"
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add(logKey+".level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		p.add(logKey+".format", "must be text or json, got %q", c.Log.Format)
	}

	if c.HTTP.Listen != "" {
		host, port, err := net.SplitHostPort(c.HTTP.Listen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 1 || n > 65535 || strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == '/' }) {
			p.add("http.listen", "must be host:port, such as 127.0.0.1:8080, [::1]:8080 or :8080 (all addresses), or \"\" for none; got %q", c.HTTP.Listen)
		}
	}
	if c.Health.InboxStaleAfter < time.Second {
		p.add("health.inbox_stale_after", "must be at least 1s, got %v", c.Health.InboxStaleAfter)
	}
	if c.Health.OutboxStaleAfter < time.Second {
		p.add("health.outbox_stale_after", "must be at least 1s, got %v", c.Health.OutboxStaleAfter)
	}
	return errors.Join(p...)
}

// UsesIMAP reports whether the bot reads a mailbox over IMAP: the imap
// section is required unless lmtp.listen is set.
func (c *Config) UsesIMAP() bool { return c.IMAP.Host != "" }

// validateIMAP checks the imap section.
func (c *Config) validateIMAP(p *problems) {
	c.IMAP.validate(p, "imap", true)
	switch {
	case c.IMAP.Mailbox == "":
		p.add("imap.mailbox", "required")
	case sameMailbox(c.IMAP.ProcessedMailbox, c.IMAP.Mailbox):
		p.add("imap.processed_mailbox", "must differ from imap.mailbox (use \"\" to leave handled mail in place)")
	}
	switch {
	case c.IMAP.RejectedMailbox == "":
		p.add("imap.rejected_mailbox", "required")
	case sameMailbox(c.IMAP.RejectedMailbox, c.IMAP.Mailbox):
		p.add("imap.rejected_mailbox", "must differ from imap.mailbox")
	}
	switch {
	case c.IMAP.QuarantineMailbox == "":
		p.add("imap.quarantine_mailbox", "required")
	case sameMailbox(c.IMAP.QuarantineMailbox, c.IMAP.Mailbox):
		p.add("imap.quarantine_mailbox", "must differ from imap.mailbox")
	}
	if c.IMAP.IdleRestart <= 0 || c.IMAP.IdleRestart > maxIdleRestart {
		p.add("imap.idle_restart", "must be more than 0 and at most %v, got %v", maxIdleRestart, c.IMAP.IdleRestart)
	}
	p.positive("imap.command_timeout", c.IMAP.CommandTimeout)
	switch f := c.IMAP.FastPoll; {
	case f.Every == 0:
	case f.Every < minFastPoll || f.Every > c.PollInterval:
		p.add("imap.fast_poll.every", "must be 0 (always IDLE) or from %v to poll_interval (%v), got %v", minFastPoll, c.PollInterval, f.Every)
	case f.For <= 0:
		p.add("imap.fast_poll.for", "must be more than 0 when imap.fast_poll.every is set, got %v", f.For)
	}
}

// minFastPoll keeps the bot a polite client: no more than 20 commands a
// second, even while mail comes in.
const minFastPoll = 50 * time.Millisecond

// validate checks the lmtp section: host:port or unix:/absolute/path.
func (l *LMTP) validate(p *problems) {
	if l.Listen == "" {
		return
	}
	if path, ok := strings.CutPrefix(l.Listen, "unix:"); ok {
		if !filepath.IsAbs(path) {
			p.add("lmtp.listen", "a unix socket needs an absolute path, as unix:/run/mailbot/lmtp.sock; got %q", l.Listen)
		}
		return
	}
	host, port, err := net.SplitHostPort(l.Listen)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 1 || n > 65535 || strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == '/' }) {
		p.add("lmtp.listen", "must be host:port, such as 127.0.0.1:2424, or unix:/path for a unix socket, or \"\" for none; got %q", l.Listen)
	}
}

// validate checks one server's keys; IMAP needs a login, SMTP may go without.
func (s *Server) validate(p *problems, key string, needLogin bool) {
	switch {
	case s.Host == "":
		p.add(key+".host", "required")
	case strings.Contains(s.Host, "://"):
		p.add(key+".host", "a host name only, without a scheme, got %q", s.Host)
	case strings.ContainsFunc(s.Host, func(r rune) bool { return r <= ' ' || r == '/' }):
		p.add(key+".host", "not a host name: %q", s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		p.add(key+".port", "must be 1-65535, got %d", s.Port)
	}
	switch s.TLS {
	case "implicit", "starttls":
	case "none":
		if !isLoopback(s.Host) {
			p.add(key+".tls", "none would send the password in clear over the network: allowed only for a loopback host (localhost, 127.0.0.0/8, ::1)")
		}
	default:
		p.add(key+".tls", "must be implicit, starttls or none, got %q", s.TLS)
	}

	sources := 0
	for _, v := range []string{s.PasswordEnv, s.PasswordFile, s.InlinePassword} {
		if v != "" {
			sources++
		}
	}
	switch s.Auth {
	case "password", "": // "": a Config built in code without Default
	case "oauth2":
		if sources > 0 {
			p.add(key+".password_env", "not used with %s.auth: oauth2, which logs in with an access token: remove the password keys", key)
		}
		if s.Username == "" {
			p.add(key+".username", "required with %s.auth: oauth2: the account the access token is for", key)
		}
		return
	default:
		p.add(key+".auth", "must be password or oauth2, got %q", s.Auth)
	}
	if sources > 1 {
		p.add(key+".password_env", "set only one of password_env, password_file and password")
	}
	hasPassword := sources > 0 || s.Password != ""
	switch {
	case needLogin && s.Username == "":
		p.add(key+".username", "required")
	case s.Username == "" && hasPassword:
		p.add(key+".username", "required when a password is set")
	}
	if s.Username != "" && !hasPassword {
		p.add(key+".password_env", "required when %s.username is set (or password_file)", key)
	}
}

// UsesOAuth2 reports whether imap or smtp logs in with OAuth2.
func (c *Config) UsesOAuth2() bool { return c.IMAP.Auth == "oauth2" || c.SMTP.Auth == "oauth2" }

// OAuth2Account is the account the OAuth2 login is for: the username of
// the server that uses it (the same for both, as Validate checks).
func (c *Config) OAuth2Account() string {
	if c.IMAP.Auth == "oauth2" {
		return c.IMAP.Username
	}
	return c.SMTP.Username
}

// resolveSecret fills ClientSecret from the source the YAML names.
func (o *OAuth2) resolveSecret(env func(string) string) error {
	switch {
	case o.ClientSecretEnv != "":
		if !isEnvName(o.ClientSecretEnv) {
			return errors.New("oauth2.client_secret_env: must name an environment variable (letters, digits, _), " +
				"not hold the secret itself")
		}
		o.ClientSecret = env(o.ClientSecretEnv)
		if o.ClientSecret == "" {
			return fmt.Errorf("oauth2.client_secret_env: environment variable %s is not set or empty", o.ClientSecretEnv)
		}
	case o.ClientSecretFile != "":
		b, err := os.ReadFile(o.ClientSecretFile)
		if err != nil {
			return fmt.Errorf("oauth2.client_secret_file: %w", err)
		}
		o.ClientSecret = strings.TrimRight(string(b), "\r\n")
		if o.ClientSecret == "" {
			return fmt.Errorf("oauth2.client_secret_file: %s is empty", o.ClientSecretFile)
		}
	}
	return nil
}

// validate checks the oauth2 section of a config that uses it.
func (o *OAuth2) validate(p *problems) {
	if o.NotifyAdminsAfter <= 0 {
		p.add("oauth2.notify_admins_after", "must be more than 0, got %v", o.NotifyAdminsAfter)
	}
	if o.ClientSecretEnv != "" && o.ClientSecretFile != "" {
		p.add("oauth2.client_secret_env", "set only one of client_secret_env and client_secret_file")
	}
	if o.TokenCommand != "" {
		if o.Provider != "" || o.ClientID != "" {
			p.add("oauth2.token_command", "set either token_command, or provider and client_id, not both")
		}
		return
	}
	urls := []struct {
		key, url string
	}{{"oauth2.auth_url", o.AuthURL}, {"oauth2.device_auth_url", o.DeviceAuthURL}, {"oauth2.token_url", o.TokenURL}}
	switch o.Provider {
	case "google", "microsoft":
		for _, u := range urls {
			if u.url != "" {
				p.add(u.key, "only with provider: custom (%s has its own)", o.Provider)
			}
		}
	case "custom":
		if o.TokenURL == "" {
			p.add("oauth2.token_url", "required with provider: custom")
		}
		if o.AuthURL == "" && o.DeviceAuthURL == "" {
			p.add("oauth2.auth_url", "required with provider: custom (or device_auth_url): mailbot oauth login needs one")
		}
		for _, u := range urls {
			if u.url != "" {
				p.endpoint(u.key, u.url)
			}
		}
	case "":
		p.add("oauth2.provider", "required when imap.auth or smtp.auth is oauth2: google, microsoft or custom (or set oauth2.token_command)")
	default:
		p.add("oauth2.provider", "must be google, microsoft or custom, got %q", o.Provider)
	}
	if o.ClientID == "" && o.Provider != "" {
		p.add("oauth2.client_id", "required: the id of the app registered with %s", o.Provider)
	}
	if o.Provider == "google" && o.ClientSecretEnv == "" && o.ClientSecretFile == "" && o.ClientSecret == "" {
		p.add("oauth2.client_secret_env", "required with provider: google (or client_secret_file): Google's token endpoint wants the client's secret")
	}
	if o.Provider == "microsoft" && (o.Tenant == "" || strings.ContainsFunc(o.Tenant, func(r rune) bool { return r <= ' ' || r == '/' || r == '?' || r == '#' })) {
		p.add("oauth2.tenant", "must be common, organizations, or your tenant's id or domain, got %q", o.Tenant)
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' }) {
			p.add(fmt.Sprintf("oauth2.scopes[%d]", i), "must be one scope without spaces, got %q", s)
		}
	}
}

// endpoint wants an https URL, or http to a loopback host (a test's own
// provider): tokens and secrets cross it.
func (p *problems) endpoint(key, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http":
		p.add(key, "must be an https URL, got %q", raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		p.add(key, "must be https (http only for a loopback host), got %q", raw)
	}
}

// Schedule parses the digest keys, reporting each bad one by its key.
func (d Digest) Schedule() (Schedule, error) {
	var s Schedule
	var p problems
	s.Weekday = -1
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		if strings.EqualFold(d.Weekday, wd.String()) {
			s.Weekday = wd
		}
	}
	if s.Weekday < 0 {
		p.add("digest.weekday", "must be a day of the week such as monday, got %q", d.Weekday)
	}
	// Seconds are allowed (HH:MM:SS) so that a test can set a digest a few
	// seconds ahead.
	if t, err := time.Parse("15:04", d.Time); err == nil {
		s.Hour, s.Minute = t.Hour(), t.Minute()
	} else if t, err := time.Parse("15:04:05", d.Time); err == nil {
		s.Hour, s.Minute, s.Second = t.Hour(), t.Minute(), t.Second()
	} else {
		p.add("digest.time", "must be a 24-hour time HH:MM such as \"08:00\" (or HH:MM:SS), got %q", d.Time)
	}
	if d.Timezone == "" {
		p.add("digest.timezone", "required: an IANA time zone such as Europe/Paris, or UTC")
	} else if loc, err := time.LoadLocation(d.Timezone); err == nil {
		s.Location = loc
	} else {
		p.add("digest.timezone", "unknown time zone %q: use an IANA name such as Europe/Paris", d.Timezone)
	}
	return s, errors.Join(p...)
}

// Warnings lists settings that work but weaken the bot, for the daemon to log
// at start and for check-config to show.
func (c *Config) Warnings() []string {
	var w []string
	for _, s := range []struct {
		key string
		srv Server
	}{{"imap", c.IMAP.Server}, {"smtp", c.SMTP.Server}} {
		if s.srv.InlinePassword != "" {
			w = append(w, s.key+".password: the password is in the config file; prefer password_env or password_file")
		}
		if s.srv.InsecureSkipVerify {
			w = append(w, s.key+".insecure_skip_verify: the server's certificate is not checked; use it only with a test server")
		}
	}
	if c.Auth.Require == "none" {
		w = append(w, "auth.require: none: commands are honoured without checking who sent them; for testing only")
	}
	if c.Auth.VerifyDKIM && c.Auth.Require == "none" {
		w = append(w, "auth.verify_dkim: has no effect with auth.require: none")
	}
	if c.Auth.VerifyDKIM && c.Auth.AuthservID != "" && c.Auth.Require != "none" {
		w = append(w, "auth.authserv_id: Authentication-Results of "+c.Auth.AuthservID+" are believed besides the own DKIM check; "+
			"leave authserv_id out if your provider does not remove forged ones (Microsoft 365)")
	}
	if len(c.Admins) == 0 {
		w = append(w, "admins: none listed: nobody can add spaces or managers")
	}
	if slices.Contains(c.deprecated, "log") {
		w = append(w, "log: a former name: rename the section to logging (log will stop working in a later version)")
	}
	if c.HTTP.MetricsPublic && c.HTTP.Listen != "" {
		if host, _, _ := net.SplitHostPort(c.HTTP.Listen); !isLoopback(host) {
			w = append(w, "http.metrics_public: /metrics and /healthz are served to anyone who reaches "+c.HTTP.Listen+
				"; keep them behind a firewall or an authenticating proxy")
		}
	}
	if l := c.LMTP.Listen; l != "" && !strings.HasPrefix(l, "unix:") {
		if host, _, _ := net.SplitHostPort(l); !isLoopback(host) {
			w = append(w, "lmtp.listen: whoever reaches "+l+" can hand the bot mail with Authentication-Results of their own making, "+
				"past your mail server's checks: listen on loopback or a unix socket, or firewall it to the mail server alone")
		}
	}
	if !c.UsesOAuth2() && (c.OAuth2.Provider != "" || c.OAuth2.ClientID != "" || c.OAuth2.TokenCommand != "") {
		w = append(w, "oauth2: set, but neither imap.auth nor smtp.auth is oauth2, so it is not used")
	}
	return w
}

// Redacted renders the configuration as YAML, defaults included, with every
// password shown as [redacted]: safe to print (mailbot check-config).
func (c *Config) Redacted() string {
	r := *c
	for _, s := range []*Server{&r.IMAP.Server, &r.SMTP.Server} {
		if s.InlinePassword != "" {
			s.InlinePassword = "[redacted]"
		}
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&r); err != nil {
		// Plain strings, numbers and durations always encode.
		return fmt.Sprintf("# cannot render the configuration: %v\n", err)
	}
	enc.Close()
	return b.String()
}

// problems collects validation errors, each prefixed with its key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// address wants a bare address such as visa@example.org, without a name.
func (p *problems) address(key, addr string) {
	if addr == "" {
		p.add(key, "required")
		return
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		p.add(key, "must be a plain email address such as visa@example.org, got %q", addr)
	}
}

func (p *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be more than 0, got %v", d)
	}
}

func (p *problems) atLeastOne(key string, n int64) {
	if n < 1 {
		p.add(key, "must be at least 1, got %d", n)
	}
}

// sameMailbox compares IMAP mailbox names: case-sensitive, except INBOX
// (RFC 3501 section 5.1).
func sameMailbox(a, b string) bool {
	return a == b || strings.EqualFold(a, "INBOX") && strings.EqualFold(b, "INBOX")
}

// isLoopback reports whether host names this machine, so that a password sent
// there in clear never crosses a network.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }
