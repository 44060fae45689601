package mailstack

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/coworkingvisa/mailbot/mailbot/testkit/internal/proc"
)

// mainCFTemplate is Postfix's main.cf. The queue lives apart from the config
// directory, and every domain is a virtual mailbox domain delivered to
// Dovecot over LMTP, so nothing leaves the machine.
var mainCFTemplate = template.Must(template.New("main.cf").Parse(`# Written by mailstack: a private Postfix on loopback for one test run.
compatibility_level = 3.6
queue_directory = {{.Dir}}/postfix/queue
data_directory = {{.Dir}}/postfix/data
# No syslog here: Postfix logs through postlogd to this file.
maillog_file = {{.Dir}}/postfix/postfix.log
maillog_file_prefixes = {{.Dir}}
myhostname = {{.Hostname}}
mydomain = {{.Hostname}}
myorigin = $myhostname
smtpd_banner = $myhostname ESMTP
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no

# Every domain is local: Dovecot decides which addresses exist, and Postfix
# bounces mail that it refuses.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
virtual_mailbox_domains = static:all
virtual_transport = lmtp:inet:{{.LMTPAddr}}

# Treat every client as remote: no address rewriting in headers and no
# Message-ID, Date or From made up for a message that lacks one.
local_header_rewrite_clients =
append_dot_mydomain = no

# Generous sizes.
message_size_limit = 52428800
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# Quick retries for outage tests; no delays, no DNS.
queue_run_delay = {{.RetrySeconds}}s
minimal_backoff_time = {{.RetrySeconds}}s
maximal_backoff_time = {{.MaxBackoffSeconds}}s
in_flow_delay = 0
smtpd_peername_lookup = no
{{if .Transports}}
# Addresses delivered elsewhere than Dovecot.
transport_maps = inline:{ {{.Transports}} }
{{end -}}
{{if .Milters}}
# Milters judge each message received over SMTP, as on a provider's inbound
# server; one that does not answer refuses the mail for now (4xx).
smtpd_milters = {{.Milters}}
milter_default_action = tempfail
milter_protocol = 6
{{end -}}
`))

// masterCFTemplate is Postfix's master.cf: Debian's services, none chrooted
// (Debian's chroots need files that its init script copies), and smtpd on one
// loopback port.
var masterCFTemplate = template.Must(template.New("master.cf").Parse(`# Written by mailstack.
# service type  private unpriv  chroot  wakeup  maxproc command
{{.SMTPAddr}} inet n - n - - smtpd
{{- if .SubmissionAddr}}
{{.SubmissionAddr}} inet n - n - - smtpd
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path={{.AuthSocket}}
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_milters=
{{- end}}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`))

func (s *Stack) writePostfixConfig(smtpPort int, lmtpAddr string) error {
	data := map[string]any{
		"Dir":      s.Dir,
		"Hostname": Hostname,
		"LMTPAddr": lmtpAddr,
		"SMTPAddr": loopback(smtpPort),
		// Postfix takes whole seconds.
		"RetrySeconds":      int(s.retryDelay.Seconds()),
		"MaxBackoffSeconds": 6 * int(s.retryDelay.Seconds()),
		"Milters":           strings.Join(s.milters, ", "),
		"SubmissionAddr":    s.SubmissionAddr,
		"AuthSocket":        s.path(dovecotAuthPF),
		"Transports":        inlineMap(s.transports),
	}
	// Postfix commands wait until a main.cf is 2 seconds old: backdate both.
	past := time.Now().Add(-time.Minute)
	for name, tmpl := range map[string]*template.Template{"main.cf": mainCFTemplate, "master.cf": masterCFTemplate} {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			return fmt.Errorf("mailstack: postfix %s: %w", name, err)
		}
		p := s.path(postfixConf + "/" + name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("mailstack: %w", err)
		}
		if err := os.Chtimes(p, past, past); err != nil {
			return fmt.Errorf("mailstack: %w", err)
		}
	}
	return nil
}

// inlineMap renders a Postfix inline: table's entries, in a stable order.
func inlineMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	entries := make([]string, len(keys))
	for i, k := range keys {
		entries[i] = strings.ToLower(k) + "=" + m[k]
	}
	return strings.Join(entries, ", ")
}

// startPostfixLocked starts Postfix and waits for its SMTP greeting. The
// caller holds s.mu.
func (s *Stack) startPostfixLocked(ctx context.Context) error {
	if s.postfixPID != 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mailstack: starting postfix: %w", err)
	}
	logOffset := fileSize(s.path(postfixLog))
	outOffset := fileSize(s.path(postfixStdout))
	out, err := os.OpenFile(s.path(postfixStdout), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	defer out.Close()
	if s.postfixReady {
		// Its queue exists: skip the integrity checks, which take a few
		// hundred milliseconds (postfix-script removes the file).
		if err := os.WriteFile(s.path(postfixQueue+"/quick-start"), nil, 0o644); err != nil {
			return fmt.Errorf("mailstack: %w", err)
		}
	}
	// "postfix start" returns once the master has initialized (master -w) or
	// failed; with no syslog it says why only in maillog_file. It is not
	// killed when ctx ends, as the master it forked would then run on
	// unknown to the Stack.
	if err := s.postfix(context.WithoutCancel(ctx), out, "start"); err != nil {
		return startError("postfix", err,
			tailFrom(s.path(postfixStdout), outOffset)+tailFrom(s.path(postfixLog), logOffset))
	}
	pid, err := waitPIDFile(s.path(postfixQueue+"/pid/master.pid"), s.isOurPostfix)
	if err != nil {
		return fmt.Errorf("mailstack: postfix: %w", err)
	}
	s.postfixPID = pid
	s.postfixReady = true
	// RFC 5321, section 4.2: the greeting is a 220 reply.
	if err := waitGreeting(ctx, s.SMTPAddr, "220 ", func() bool { return s.isOurPostfix(pid) }); err != nil {
		return fmt.Errorf("mailstack: postfix: %w", err)
	}
	return nil
}

// FlushQueue asks Postfix to retry all deferred mail now ("postfix flush"),
// instead of at its next queue run (at most 10 seconds away).
func (s *Stack) FlushQueue(ctx context.Context) error {
	out, err := os.OpenFile(s.path(postfixStdout), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("mailstack: %w", err)
	}
	defer out.Close()
	if err := s.postfix(ctx, out, "flush"); err != nil {
		return fmt.Errorf("mailstack: postfix flush: %w", err)
	}
	return nil
}

// postfix runs the postfix command on this stack's config directory.
func (s *Stack) postfix(ctx context.Context, out *os.File, args ...string) error {
	cmd := exec.CommandContext(ctx, s.postfixBin, append([]string{"-c", s.path(postfixConf)}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// isOurPostfix tells whether pid is the live master of this stack's Postfix:
// Postfix passes the config directory to its master in MAIL_CONFIG.
func (s *Stack) isOurPostfix(pid int) bool {
	return isPostfixOf(pid, s.path(postfixConf))
}

func isPostfixOf(pid int, confDir string) bool {
	if !proc.IsLive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if kv == "MAIL_CONFIG="+confDir {
			return true
		}
	}
	return false
}
