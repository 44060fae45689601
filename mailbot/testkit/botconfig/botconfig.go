// Package botconfig writes the configuration files the integration tests,
// the chaos test and the benchmark run the real mailbot binary with.
//
// Every file starts from config.Default(), so the bot under test runs with
// the defaults a user gets; a test changes only what it is about, in code
// next to a comment that says why. The file holds every key, defaults
// included, so a reader of a failed run's config sees exactly what ran.
package botconfig

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/coworkingvisa/mailbot/mailbot/config"
)

// PasswordEnv is the environment variable the written configs read the
// bot's IMAP password from.
const PasswordEnv = "MAILBOT_IMAP_PASSWORD"

// Stack describes the bot and the loopback servers it runs against.
type Stack struct {
	Bot, Admin string // the bot's address (also its IMAP login) and the one admin
	IMAPAddr   string // host:port, plaintext
	SMTPAddr   string // host:port, plaintext, no login
	Store      string // the store file
	AuthservID string // whose Authentication-Results the bot believes
}

// New returns config.Default() pointed at the stack: plaintext loopback
// servers, the IMAP password from PasswordEnv, debug logging (for the
// tests' log assertions and for reading a failed run).
func New(s Stack) (*config.Config, error) {
	c := config.Default()
	c.Bot.Address = s.Bot
	c.Admins = []string{s.Admin}
	var err error
	if c.IMAP.Host, c.IMAP.Port, err = hostPort(s.IMAPAddr); err != nil {
		return nil, err
	}
	if c.SMTP.Host, c.SMTP.Port, err = hostPort(s.SMTPAddr); err != nil {
		return nil, err
	}
	c.IMAP.TLS, c.SMTP.TLS = "none", "none"
	c.IMAP.Username, c.IMAP.PasswordEnv = s.Bot, PasswordEnv
	c.Store.Path = s.Store
	c.Auth.AuthservID = s.AuthservID
	c.Log.Level = "debug"
	return c, nil
}

// Marshal renders c as the YAML of a config file, every key included.
func Marshal(c *config.Config) (string, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return "", fmt.Errorf("botconfig: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("botconfig: %w", err)
	}
	return b.String(), nil
}

// Write writes c as YAML to path, for `mailbot run --config path`. The
// file is checked as the binary will read it, so that a mistake shows up
// here rather than as a bot that does not start.
func Write(path string, c *config.Config) error {
	text, err := Marshal(c)
	if err != nil {
		return err
	}
	env := func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return "set-by-the-test" // the password the test hands the binary
	}
	if _, err := config.Parse([]byte(text), env); err != nil {
		return fmt.Errorf("botconfig: the written config does not load: %w", err)
	}
	return os.WriteFile(path, []byte(text), 0o600)
}

func hostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("botconfig: %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("botconfig: %q: %w", addr, err)
	}
	return h, n, nil
}
