package itest

import (
	"encoding/base64"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/charmap"

	"github.com/coworkingvisa/mailbot/storage"
)

func init() { worlds = append(worlds, "roster") }

// withCSV writes a mail as Thunderbird does with an attachment: a
// multipart/mixed of the text and the file, base64-encoded.
func withCSV(e envelope, body, filename, contentType string, csv []byte) []byte {
	const bnd = "------------Ab12Cd34Ef56Gh78Ij90Kl"
	h := e.Header("Content-Type: multipart/mixed; boundary=\"" + bnd + "\"\r\nUser-Agent: Mozilla Thunderbird\r\n")
	b64 := base64.StdEncoding.EncodeToString(csv)
	var lines []string
	for len(b64) > 76 {
		lines, b64 = append(lines, b64[:76]), b64[76:]
	}
	lines = append(lines, b64)
	return []byte(h + "\r\nThis is a multi-part message in MIME format.\r\n--" + bnd +
		"\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		crlf(body) + "\r\n\r\n--" + bnd + "\r\nContent-Type: " + contentType + "; name=\"" + filename +
		"\"\r\nContent-Disposition: attachment; filename=\"" + filename + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Join(lines, "\r\n") + "\r\n--" + bnd + "--\r\n")
}

// attachment returns the named attachment of a received reply.
func attachment(t *testing.T, r reply, suffix string) string {
	t.Helper()
	mr, err := mail.CreateReader(strings.NewReader(string(r.Raw)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			if name, _ := h.Filename(); strings.HasSuffix(name, suffix) {
				b, _ := io.ReadAll(p.Body)
				return strings.TrimPrefix(string(b), "\ufeff")
			}
		}
	}
	t.Fatalf("no attachment *%s in the reply:\n%s", suffix, r.Raw)
	return ""
}

// TestRosterByMail: a manager imports a roster as an Excel CSV (semicolons,
// Windows-1252) from a mail client, lists it back as a CSV attachment, and
// replaces it with a smaller file, which applies only after confirm TOKEN
// sent as a reply quoting the bot's message.
func TestRosterByMail(t *testing.T) {
	w := newWorld("roster")
	store := filepath.Join(t.TempDir(), "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)

	excel, err := charmap.Windows1252.NewEncoder().String("Email;Name;Status;Until\r\n" +
		"adam@indyhall.test;Adam Teterus;active;\r\n" +
		"beth@indyhall.test;\"Kaplan; Beth\";active;2027-06-30\r\n" +
		"jose@indyhall.test;José Núñez;;\r\n" +
		"broken@;Nobody;active;\r\n" +
		"carl@indyhall.test;Carl Moss;inactive;31.12.2027\r\n")
	if err != nil {
		t.Fatal(err)
	}
	send(t, w.alex, w.bot, withCSV(envelope{From: w.alex, To: w.bot, Subject: "roster"}, "import members\n",
		"Mitglieder.csv", "text/csv", []byte(excel)))
	r := waitMail(t, w.alex, "INBOX", 1)[0]
	mustContain(t, r, "3 added", "2 rejected", "line 5:", "line 6:")

	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "list"}, "list members\nverify jose@indyhall.test"))
	r = waitMail(t, w.alex, "INBOX", 2)[1]
	mustContain(t, r, "José Núñez", "VERIFIED: jose@indyhall.test is José Núñez")
	csv := attachment(t, r, ".csv")
	for _, want := range []string{"email,name,status,until,updated", "adam@indyhall.test,Adam Teterus,active,,", "beth@indyhall.test,Kaplan; Beth,active,2027-06-30,"} {
		if !strings.Contains(csv, want) {
			t.Errorf("roster CSV lacks %q:\n%s", want, csv)
		}
	}

	send(t, w.alex, w.bot, withCSV(envelope{From: w.alex, To: w.bot, Subject: "new roster", MessageID: "replace-1@indyhall.test"},
		"import members replace\n", "roster.csv", "application/vnd.ms-excel",
		[]byte("email,name\r\nadam@indyhall.test,Adam Teterus\r\nzoe@indyhall.test,Zoë Schmidt\r\n")))
	r = waitMail(t, w.alex, "INBOX", 3)[2]
	mustContain(t, r, "Nothing was changed yet", "beth@indyhall.test", "jose@indyhall.test")
	token := regexp.MustCompile(`confirm ([A-Z0-9-]{6,})`).FindStringSubmatch(strings.ReplaceAll(r.Text, "=\r\n", ""))
	if token == nil {
		t.Fatalf("no token in:\n%s", r.Text)
	}
	botID := strings.Trim(r.Header.Get("Message-Id"), "<>")
	// Nothing changed before the confirmation.
	send(t, w.mad, w.bot, thunderbird(envelope{From: w.mad, To: w.bot, Subject: "check"}, "verify beth@indyhall.test"))
	mustContain(t, waitMail(t, w.mad, "INBOX", 1)[0], "VERIFIED: beth@indyhall.test")

	// The manager answers the bot's message, quoting it, as mail clients do.
	send(t, w.alex, w.bot, gmail(envelope{From: w.alex, To: w.bot, Subject: "Re: Re: new roster", InReplyTo: botID},
		"confirm "+strings.ToLower(token[1])))
	r = waitMail(t, w.alex, "INBOX", 4)[3]
	mustContain(t, r, "OK:")
	mustNotContain(t, r, "ERROR", "DENIED")
	send(t, w.mad, w.bot, thunderbird(envelope{From: w.mad, To: w.bot, Subject: "check again"},
		"verify beth@indyhall.test\nverify zoe@indyhall.test\nverify adam@indyhall.test"))
	r = waitMail(t, w.mad, "INBOX", 2)[1]
	mustContain(t, r, "NOT VERIFIED: beth@indyhall.test", "VERIFIED: zoe@indyhall.test is Zoë Schmidt", "VERIFIED: adam@indyhall.test")
	// The token works once.
	send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: "again"}, "confirm "+token[1]))
	mustContain(t, waitMail(t, w.alex, "INBOX", 5)[4], "ERROR:")

	// The operator's tools work while the daemon holds the store.
	out, err := exec.Command(binary, "export", "--config", b.config, "--space", "indyhall").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "zoe@indyhall.test,Zoë Schmidt,active") {
		t.Errorf("export while running: %v\n%s", err, out)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, err := exec.Command(binary, "backup", "--config", b.config, backup).CombinedOutput(); err != nil {
		t.Fatalf("backup while running: %v\n%s", err, out)
	}
	b.stop()
	db, err := storage.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *storage.Tx) error {
		if n := tx.CountMembers("indyhall"); n != 2 {
			t.Errorf("the backup holds %d members of indyhall, want 2", n)
		}
		return nil
	})
}
