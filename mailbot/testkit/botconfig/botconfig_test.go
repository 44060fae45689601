package botconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/coworkingvisa/mailbot/mailbot/config"
)

// A written config loads back as the same configuration: the defaults
// reach the binary untouched.
func TestWriteRoundTrip(t *testing.T) {
	c, err := New(Stack{Bot: "visa@visa.test", Admin: "admin@visa.test", IMAPAddr: "127.0.0.1:1143",
		SMTPAddr: "127.0.0.1:1025", Store: "/tmp/visa.db", AuthservID: "mx.visa.test"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := Write(path, c); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PasswordEnv, "pw")
	back, err := config.Load(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("load: %v\n%s", err, data)
	}
	if back.Redacted() != c.Redacted() {
		t.Errorf("loaded\n%s\nwant\n%s", back.Redacted(), c.Redacted())
	}
	if back.Outbox != config.Default().Outbox || back.Limits != config.Default().Limits {
		t.Error("the defaults did not reach the file")
	}
}
