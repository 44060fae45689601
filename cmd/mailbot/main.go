// Command mailbot is the Coworking Visa bot: a daemon that reads command
// emails from an IMAP inbox and answers by SMTP, and the tools around it.
// It only parses flags and configuration and calls into the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // space time zones must resolve on hosts without tzdata

	"github.com/coworkingvisa/mailbot/mailbot"
	"github.com/coworkingvisa/mailbot/mailbot/config"
	"github.com/coworkingvisa/mailbot/mailbot/demo"
	"github.com/coworkingvisa/mailbot/mailbot/inbox"
	"github.com/coworkingvisa/mailbot/templates"
)

// exitTempFail asks an MTA to deliver again later (sysexits.h EX_TEMPFAIL).
const exitTempFail = 75

const usage = `mailbot: the Coworking Visa membership bot

Usage:
  mailbot run --config FILE        run the daemon: take mail from the IMAP inbox or over LMTP, answer by SMTP
  mailbot demo [--imap ADDR] [--smtp ADDR] [--store FILE]
                                   embedded IMAP and SMTP servers, a seeded demo network and the bot
  mailbot process --config FILE    handle one message from standard input (MTA pipe delivery;
                                   exit 75 asks the MTA to retry); the daemon must not be running
  mailbot check-config --config FILE
                                   load and validate a config; print it with secrets redacted
  mailbot export --config FILE [--space ID] [--format csv|json] [--status active|inactive] [--out FILE]
                                   write the rosters of one space, or of all (CSV with a first
                                   column space; JSON: spaces with managers and members)
  mailbot import --config FILE --space ID [--replace] [--charset NAME] CSVFILE
                                   add and update a space's members from a CSV (email,name,status,until);
                                   --replace also removes those missing from it. Prints the counts and
                                   each rejected row with its line number; exits 0 even when rows were
                                   rejected, 1 only when the import failed (then nothing was applied)
  mailbot backup --config FILE BACKUPFILE
                                   write a consistent copy of the store (a private temporary, then renamed)
                                   export, import and backup work while the daemon runs: they go
                                   through its socket <store.path>.sock (run them as the daemon's
                                   user), or open the store themselves when no daemon runs
  mailbot check-store --config FILE | --store FILE
                                   verify a store: bbolt's consistency check and the store's own
                                   invariants (through the daemon, on a consistent copy, when it
                                   runs); --store checks a backup or copy. Exit 0 when clean
  mailbot restore --config FILE BACKUPFILE
                                   put a backup in place of the store, the daemon stopped: checks
                                   it first, keeps the old file as <store>.replaced-<time>
  mailbot outbox --config FILE [--release ID]
                                   list the replies waiting to be sent (attempts, next try, last
                                   error, held); --release puts a held one back in the queue
  mailbot digest --config FILE --now [--space ID] [--dry-run]
                                   build the weekly digests now (one space, or all and the network
                                   digest) and send them, or print them with --dry-run
  mailbot oauth login --config FILE [--flow device|browser] [--listen 127.0.0.1:PORT]
                                   sign the bot in to its mailbox with OAuth2 (imap or smtp auth: oauth2):
                                   prints a URL (and a code) to open in a browser, then stores the
                                   refresh token, through the running daemon or in the store
  mailbot help                     this text and the command language

`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, rest, stderr)
	case "demo":
		err = cmdDemo(ctx, rest, stdout, stderr)
	case "process":
		code, err := cmdProcess(ctx, rest, stdin, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "mailbot process: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		return code
	case "export":
		err = cmdExport(ctx, rest, stdout, stderr)
	case "import":
		err = cmdImport(ctx, rest, stdin, stdout, stderr)
	case "digest":
		err = cmdDigest(ctx, rest, stdout, stderr)
	case "oauth":
		err = cmdOAuth(ctx, rest, stdout, stderr)
	case "outbox":
		err = cmdOutbox(ctx, rest, stdout, stderr)
	case "backup":
		err = cmdBackup(ctx, rest, stdout, stderr)
	case "check-config":
		err = cmdCheckConfig(rest, stdout, stderr)
	case "check-store":
		err = cmdCheckStore(ctx, rest, stdout, stderr)
	case "restore":
		err = cmdRestore(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		return cmdHelp(stdout)
	default:
		fmt.Fprintf(stderr, "mailbot: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailbot %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// loadConfig parses the --config flag of a subcommand and loads the file.
func loadConfig(name string, args []string, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if *path == "" {
		return nil, nil, errors.New("--config FILE is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return nil, nil, err
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	for _, w := range cfg.Warnings() {
		log.Warn("config: " + w)
	}
	return cfg, log, nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, log, err := loadConfig("run", args, stderr)
	if err != nil {
		return err
	}
	d, err := mailbot.Open(cfg, log)
	if err != nil {
		return storeAdvice(err, configArg(args))
	}
	mailbot.SetGCPercent(os.Getenv)
	return d.Run(ctx)
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	imapAddr := fs.String("imap", "127.0.0.1:1143", "IMAP listen address")
	smtpAddr := fs.String("smtp", "127.0.0.1:1025", "SMTP listen address")
	store := fs.String("store", "", "store file (default: a temporary file, removed on exit)")
	verbose := fs.Bool("v", false, "log debug detail")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := "info"
	if *verbose {
		level = "debug"
	}
	return demo.Run(ctx, demo.Options{
		IMAPAddr: *imapAddr, SMTPAddr: *smtpAddr, StorePath: *store,
		Out: stdout, Log: newLogger(stderr, level, "text"),
	})
}

func cmdProcess(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) (int, error) {
	cfg, log, err := loadConfig("process", args, stderr)
	if err != nil {
		return 0, err
	}
	raw, err := io.ReadAll(io.LimitReader(stdin, int64(cfg.Limits.MaxMessageBytes)+1))
	if err != nil {
		return 0, fmt.Errorf("read message: %w", err)
	}
	d, err := mailbot.Open(cfg, log)
	if err != nil {
		return exitTempFail, storeAdvice(err, configArg(args))
	}
	out := d.Bot.Handle(ctx, raw)
	// Send what this message queued now; anything left waits for the daemon.
	sendErr := d.Outbox.Flush(ctx)
	if err := d.DB.Close(); err != nil {
		return exitTempFail, err
	}
	switch out.Action {
	case inbox.Leave:
		log.Error("message not handled; the MTA should retry", "reason", out.Reason)
		return exitTempFail, nil
	case inbox.SetAside, inbox.Quarantine:
		log.Warn("message set aside", "action", out.Action, "reason", out.Reason)
	}
	if sendErr != nil {
		log.Warn("reply queued but not sent yet", "error", sendErr)
	}
	return 0, nil
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("check-config", args, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, cfg.Redacted())
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stdout, "# warning:", w)
	}
	fmt.Fprintln(stdout, "# config is valid")
	return nil
}

func cmdHelp(stdout io.Writer) int {
	fmt.Fprint(stdout, usage)
	tmpl, err := templates.New("")
	if err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	text, err := tmpl.Help("the bot's address")
	if err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	fmt.Fprintln(stdout, "The command language (what managers send by email):")
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, text)
	return 0
}
