// Package demo runs the mailbot against embedded IMAP and SMTP servers on
// loopback (package localmail) with a seeded network, for a first try with no
// mail server of one's own: `mailbot demo`.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot"
	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/demo/localmail"
	"github.com/coworkingvisa/mailbot/storage"
)

// The demo network: a few spaces from the Coworking Visa's early days, an
// admin, one manager per space and some members. Every account's password
// is Password.
const (
	Password     = "demo"
	BotAddress   = "visa@coworkingvisa.test"
	AdminAddress = "admin@coworkingvisa.test"
	AuthservID   = "demo.coworkingvisa.test"
)

type demoSpace struct {
	storage.Space
	manager string
	members []storage.Member
}

var demoNetwork = []demoSpace{
	{Space: storage.Space{ID: "indyhall", Name: "Indy Hall", City: "Philadelphia", Country: "US", TZ: "America/New_York"},
		manager: "alex@indyhall.test",
		members: []storage.Member{
			{Email: "adam@indyhall.test", Name: "Adam Teterus", Status: storage.StatusActive},
			{Email: "beth@indyhall.test", Name: "Beth Kaplan", Status: storage.StatusActive, Until: "2027-06-30"},
			{Email: "carl@indyhall.test", Name: "Carl Moss", Status: storage.StatusInactive},
		}},
	{Space: storage.Space{ID: "citizenspace", Name: "Citizen Space", City: "San Francisco", Country: "US", TZ: "America/Los_Angeles"},
		manager: "chris@citizenspace.test",
		members: []storage.Member{
			{Email: "tara@citizenspace.test", Name: "Tara Hunt", Status: storage.StatusActive},
			{Email: "brad@citizenspace.test", Name: "Brad Neuberg", Status: storage.StatusActive},
		}},
	{Space: storage.Space{ID: "betahaus", Name: "betahaus", City: "Berlin", Country: "DE", TZ: "Europe/Berlin"},
		manager: "madeleine@betahaus.test",
		members: []storage.Member{
			{Email: "jonas@betahaus.test", Name: "Jonas Müller", Status: storage.StatusActive},
			{Email: "zoe@betahaus.test", Name: "Zoë Schmidt", Status: storage.StatusActive, Until: "2026-12-31"},
		}},
	{Space: storage.Space{ID: "lacantine", Name: "La Cantine", City: "Paris", Country: "FR", TZ: "Europe/Paris"},
		manager: "camille@lacantine.test",
		members: []storage.Member{
			{Email: "louis@lacantine.test", Name: "Louis Martin", Status: storage.StatusActive},
		}},
}

// Options configures Run.
type Options struct {
	IMAPAddr, SMTPAddr string // "" = localmail's defaults
	StorePath          string // "" = a new file in a temporary directory, removed on exit
	Out                io.Writer
	Log                *slog.Logger
	// Started, if set, is called with the running demo once the bot is
	// ready (tests use it to find the ports).
	Started func(*Demo)
}

// Demo is a running demo: the embedded servers and the bot.
type Demo struct {
	Mail   *localmail.Server
	Config *config.Config
}

// Run starts embedded IMAP and SMTP servers on loopback, seeds a demo
// network, and runs the bot against them until ctx is done. The trust rules
// are the production ones: the embedded SMTP server authenticates senders
// by SMTP AUTH and stamps Authentication-Results with its own authserv-id.
func Run(ctx context.Context, opts Options) error {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	storePath := opts.StorePath
	if storePath == "" {
		dir, err := os.MkdirTemp("", "mailbot-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(dir)
		storePath = filepath.Join(dir, "demo.db")
	}
	srv, err := localmail.Start(ctx, localmail.Options{
		IMAPAddr: opts.IMAPAddr, SMTPAddr: opts.SMTPAddr, AuthservID: AuthservID,
		Logf: func(format string, args ...any) { opts.Log.Debug(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return fmt.Errorf("demo: start mail servers: %w", err)
	}
	defer srv.Close()
	accounts := []string{BotAddress, AdminAddress}
	for _, s := range demoNetwork {
		accounts = append(accounts, s.manager)
	}
	for _, a := range accounts {
		if err := srv.AddUser(a, Password); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	cfg, err := demoConfig(srv, storePath)
	if err != nil {
		return err
	}
	if err := seedDemo(storePath); err != nil {
		return err
	}
	d, err := mailbot.Open(cfg, opts.Log)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		return err
	}
	printDemo(opts.Out, srv, storePath)
	if opts.Started != nil {
		opts.Started(&Demo{Mail: srv, Config: cfg})
	}
	return <-done
}

// demoConfig is the configuration a user would write for these servers.
func demoConfig(srv *localmail.Server, storePath string) (*config.Config, error) {
	imapHost, imapPort, err := splitAddr(srv.IMAPAddr())
	if err != nil {
		return nil, err
	}
	smtpHost, smtpPort, err := splitAddr(srv.SMTPAddr())
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Bot.Address = BotAddress
	cfg.Bot.Name = "Coworking Visa (demo)"
	cfg.IMAP.Host, cfg.IMAP.Port, cfg.IMAP.TLS = imapHost, imapPort, "none"
	cfg.IMAP.Username, cfg.IMAP.Password = BotAddress, Password
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS = smtpHost, smtpPort, "none"
	cfg.SMTP.Username, cfg.SMTP.Password = BotAddress, Password
	cfg.Store.Path = storePath
	cfg.Admins = []string{AdminAddress}
	cfg.Auth.Require, cfg.Auth.AuthservID = "dmarc", AuthservID
	cfg.PollInterval = 30 * time.Second
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	return cfg, nil
}

// seedDemo fills a new store with the demo network; a store that already
// has spaces is left as it is.
func seedDemo(path string) error {
	db, err := storage.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now()
	return db.Update(func(tx *storage.Tx) error {
		if spaces, err := tx.Spaces(); err != nil || len(spaces) > 0 {
			return err
		}
		record := func(kind, space, key string, after any) error {
			data, err := json.Marshal(after)
			if err != nil {
				return err
			}
			_, err = tx.Record(storage.Change{At: now, Actor: "demo seed", MessageID: "demo-seed",
				Space: space, Kind: kind, Key: key, Action: "add", After: data})
			return err
		}
		for _, s := range demoNetwork {
			sp := s.Space
			sp.Created, sp.Updated = now, now
			if err := tx.PutSpace(sp); err != nil {
				return err
			}
			if err := record("space", sp.ID, sp.ID, sp); err != nil {
				return err
			}
			m := storage.Manager{Email: s.manager, Space: sp.ID, Added: now}
			if err := tx.AddManager(m); err != nil {
				return err
			}
			if err := record("manager", sp.ID, m.Email, m); err != nil {
				return err
			}
			for _, mem := range s.members {
				mem.Space, mem.Added, mem.Updated = sp.ID, now, now
				if err := tx.PutMember(mem); err != nil {
					return err
				}
				if err := record("member", sp.ID, mem.Email, mem); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func printDemo(w io.Writer, srv *localmail.Server, storePath string) {
	_, smtpPort, _ := splitAddr(srv.SMTPAddr())
	fmt.Fprintf(w, `
Coworking Visa mailbot demo is running (Ctrl-C stops it).

  SMTP (submission, AUTH PLAIN required): %s
  IMAP (read replies):                    %s
  The bot's address:                      %s
  Store:                                  %s
  Every account's password:               %s

  Network admin:  %s
`, srv.SMTPAddr(), srv.IMAPAddr(), BotAddress, storePath, Password, AdminAddress)
	for _, s := range demoNetwork {
		fmt.Fprintf(w, "  Manager of %-13s %s\n", s.ID+":", s.manager)
	}
	fmt.Fprintf(w, `
Try, as the manager of Indy Hall, verifying a betahaus member:

  swaks --server 127.0.0.1 --port %d --auth PLAIN \
        --auth-user alex@indyhall.test --auth-password %s \
        --from alex@indyhall.test --to %s \
        --header "Subject: verify" --body "verify jonas@betahaus.test"

then read alex@indyhall.test's INBOX over IMAP (any mail client, user
alex@indyhall.test, password %s, no TLS). Send "help" for every command.

`, smtpPort, Password, BotAddress, Password)
}

func splitAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	return host, p, nil
}
