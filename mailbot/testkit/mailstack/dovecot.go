package mailstack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

// dovecotTemplate is a complete Dovecot 2.3 config: no conf.d is included.
var dovecotTemplate = template.Must(template.New("dovecot.conf").Parse(`# Written by mailstack: a private Dovecot on loopback for one test run.
instance_name = {{.Instance}}
base_dir = {{.Dir}}/dovecot/run
state_dir = {{.Dir}}/dovecot/state
hostname = {{.Hostname}}
protocols = imap lmtp
listen = 127.0.0.1
log_path = {{.Dir}}/dovecot/dovecot.log
auth_verbose = yes

# Plaintext on loopback; no TLS.
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{{if .OAuth2}} xoauth2 oauthbearer{{end}}

# Virtual users: the full address is the login name; maildirs belong to
# Debian's "mail" account (uid/gid 8), as Dovecot refuses root.
# The passwd-file is re-read at most once a second.
first_valid_uid = 1
first_valid_gid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN {{.Dir}}/dovecot/passwd
{{- if .OAuth2}}
  mechanisms = plain login
{{- end}}
}
{{- if .OAuth2}}

# OAuth2 (Options.OAuth2IntrospectionURL): access tokens are checked at the
# test's introspection endpoint; the settings are in oauth2.conf.
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {{.Dir}}/dovecot/oauth2.conf
}
{{- end}}
userdb {
  driver = passwd-file
  args = {{.Dir}}/dovecot/passwd
  default_fields = uid={{.UID}} gid={{.GID}} home={{.Dir}}/mail/%Lu
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Sent {
    special_use = \Sent
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Archive {
    special_use = \Archive
  }
}

# Parallel tests and benchmarks open many connections per user.
mail_max_userip_connections = 200
service imap {
  process_limit = 256
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.IMAPPort}}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{.LMTPPort}}
  }
}
{{- if .Submission}}

# Postfix's submission port asks this socket about SMTP AUTH
# (Options.Submission); smtpd runs as postfix.
service auth {
  unix_listener {{.Dir}}/dovecot/run/auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
{{- end}}
{{- if .Sieve}}

# Sieve (Pigeonhole, Debian's dovecot-sieve) at LMTP delivery, switched on by
# Stack.SetSieve: each user's active script is ~/.dovecot.sieve. Vacation
# notices and redirects go out through this stack's Postfix.
submission_host = {{.SubmissionHost}}
protocol lmtp {
  mail_plugins = $mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_extensions = +editheader
}
{{- end}}
`))

func (s *Stack) writeDovecotConfig(imapPort, lmtpPort int) error {
	var b bytes.Buffer
	err := dovecotTemplate.Execute(&b, map[string]any{
		"Instance": instanceName(s.Dir),
		"Dir":      s.Dir,
		"Hostname": Hostname,
		"UID":      mailUID,
		"GID":      mailGID,
		"IMAPPort": imapPort,
		"LMTPPort": lmtpPort,
		// SetSieve sets it once Postfix runs, whose port the config
		// then names.
		"Sieve":          s.sieve,
		"SubmissionHost": s.SMTPAddr,
		"OAuth2":         s.oauth2URL != "",
		"Submission":     s.submission,
	})
	if err != nil {
		return fmt.Errorf("mailstack: dovecot config: %w", err)
	}
	if s.oauth2URL != "" {
		// Dovecot's oauth2 passdb (doc.dovecot.org, "OAuth2"): RFC 7662
		// introspection by POST, every token checked, the user named by
		// "email", valid while "active" is true.
		conf := "introspection_mode = post\n" +
			"introspection_url = " + s.oauth2URL + "\n" +
			"force_introspection = yes\n" +
			"username_attribute = email\n" +
			"active_attribute = active\n" +
			"active_value = true\n"
		if err := os.WriteFile(s.path(dovecotOAuth2), []byte(conf), 0o644); err != nil {
			return fmt.Errorf("mailstack: %w", err)
		}
	}
	if err := os.WriteFile(s.path(dovecotConf), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	return nil
}

// instanceName names this Dovecot in its process titles
// ("dovecot-mailstack-123/imap") and logs.
func instanceName(dir string) string {
	suffix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, strings.TrimPrefix(filepath.Base(dir), "mailbot-it-"))
	return "mailstack-" + suffix
}

// startDovecotLocked starts Dovecot and waits for its IMAP and LMTP
// greetings. The caller holds s.mu.
func (s *Stack) startDovecotLocked(ctx context.Context) error {
	if s.dovecotPID != 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mailstack: starting dovecot: %w", err)
	}
	pidFile := s.path(dovecotRun + "/master.pid")
	// Dovecot refuses to start while master.pid names a live process, and a
	// killed master's zombie counts as live until PID 1 reaps it.
	if pid, err := proc.ReadPID(pidFile); err == nil && !s.isOurDovecot(pid) {
		os.Remove(pidFile)
	}
	logOffset := fileSize(s.path(dovecotLog))
	outOffset := fileSize(s.path(dovecotStdout))
	out, err := os.OpenFile(s.path(dovecotStdout), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	defer out.Close()
	// The master forks into the background and keeps the stdout and stderr it
	// was given: files, so that Run returns when the parent exits. The
	// parent returns by itself at once; it is not killed when ctx ends, as
	// its child would then run on unknown to the Stack.
	cmd := exec.Command(s.dovecotBin, "-c", s.path(dovecotConf))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return startError("dovecot", err,
			tailFrom(s.path(dovecotStdout), outOffset)+tailFrom(s.path(dovecotLog), logOffset))
	}
	pid, err := waitPIDFile(pidFile, s.isOurDovecot)
	if err != nil {
		return fmt.Errorf("mailstack: dovecot: %w", err)
	}
	s.dovecotPID = pid
	for _, l := range []struct{ addr, greeting string }{
		{s.IMAPAddr, "* OK"}, // RFC 9051, section 7.1.1
		{s.LMTPAddr, "220 "}, // RFC 5321, section 4.2
	} {
		if err := waitGreeting(ctx, l.addr, l.greeting, func() bool { return s.isOurDovecot(pid) }); err != nil {
			return fmt.Errorf("mailstack: dovecot: %w", err)
		}
	}
	return nil
}

// isOurDovecot tells whether pid is the live master of this stack's Dovecot:
// its command line names this stack's config.
func (s *Stack) isOurDovecot(pid int) bool {
	return isDovecotOf(pid, s.path(dovecotConf))
}

func isDovecotOf(pid int, conf string) bool {
	if !proc.IsLive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-c" && args[i+1] == conf {
			return true
		}
	}
	return false
}
