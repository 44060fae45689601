package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// oauthEnv is testEnv with a client secret.
func oauthEnv(name string) string {
	if name == "MAILBOT_OAUTH2_SECRET" {
		return "client-s3cret"
	}
	return testEnv(name)
}

// withOAuth2 switches both servers of minimal() to OAuth2 with the given
// oauth2 keys, then applies more overrides.
func withOAuth2(oauth2 map[string]any, more map[string]any) map[string]any {
	o := map[string]any{
		"imap.auth": "oauth2", "imap.password_env": deleted{},
		"smtp.auth": "oauth2", "smtp.password_env": deleted{},
	}
	for k, v := range oauth2 {
		o["oauth2."+k] = v
	}
	for k, v := range more {
		o[k] = v
	}
	return o
}

func parseOAuth(t *testing.T, overrides map[string]any) (*Config, error) {
	t.Helper()
	return Parse(yamlWith(t, overrides), oauthEnv)
}

func TestOAuth2Valid(t *testing.T) {
	google := []string{"https://mail.google.com/"}
	microsoft := []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access"}
	tests := []struct {
		name      string
		overrides map[string]any
		check     func(*Config) bool
	}{
		{"google with its default scope and secret",
			withOAuth2(map[string]any{"provider": "Google", "client_id": "x.apps.googleusercontent.com", "client_secret_env": "MAILBOT_OAUTH2_SECRET"}, nil),
			func(c *Config) bool {
				return c.OAuth2.Provider == "google" && slices.Equal(c.OAuth2.Scopes, google) && c.OAuth2.ClientSecret == "client-s3cret"
			}},
		{"microsoft public client, default tenant and scopes",
			withOAuth2(map[string]any{"provider": "microsoft", "client_id": "00000000-aaaa"}, nil),
			func(c *Config) bool {
				return c.OAuth2.Tenant == "common" && slices.Equal(c.OAuth2.Scopes, microsoft) && c.OAuth2.ClientSecret == ""
			}},
		{"own scopes kept",
			withOAuth2(map[string]any{"provider": "microsoft", "client_id": "c", "tenant": "contoso.onmicrosoft.com",
				"scopes": []any{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}}, map[string]any{"smtp.auth": "password", "smtp.password_env": "MAILBOT_SMTP_PASSWORD"}),
			func(c *Config) bool { return len(c.OAuth2.Scopes) == 2 && c.SMTP.Password == "smtp-secret" }},
		{"custom on loopback http",
			withOAuth2(map[string]any{"provider": "custom", "client_id": "c", "token_url": "http://127.0.0.1:8080/token",
				"device_auth_url": "http://localhost:8080/device"}, nil),
			func(c *Config) bool { return len(c.OAuth2.Scopes) == 0 }},
		{"token_command alone",
			withOAuth2(map[string]any{"token_command": "oama access visa@example.org"}, nil),
			func(c *Config) bool { return c.OAuth2.Provider == "" && c.OAuth2Account() == "visa@example.org" }},
		{"imap only; smtp relay without login",
			withOAuth2(map[string]any{"token_command": "helper"}, map[string]any{"smtp.auth": deleted{}, "smtp.username": deleted{}}),
			func(c *Config) bool { return c.UsesOAuth2() && c.SMTP.Auth == "password" }},
		{"smtp only", withOAuth2(map[string]any{"token_command": "helper"},
			map[string]any{"imap.auth": "password", "imap.password_env": "MAILBOT_IMAP_PASSWORD", "smtp.username": "Visa@Example.org"}),
			func(c *Config) bool { return c.OAuth2Account() == "Visa@Example.org" }},
		{"usernames differing in case only", withOAuth2(map[string]any{"token_command": "helper"}, map[string]any{"smtp.username": "VISA@example.org"}),
			func(c *Config) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseOAuth(t, tt.overrides)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected result: %+v", c.OAuth2)
			}
			if w := c.Warnings(); len(w) != 0 {
				t.Errorf("warnings: %q", w)
			}
		})
	}
}

func TestOAuth2Errors(t *testing.T) {
	ms := map[string]any{"provider": "microsoft", "client_id": "c"}
	tests := []struct {
		name      string
		overrides map[string]any
		want      string
	}{
		{"unknown auth", map[string]any{"imap.auth": "kerberos"}, "imap.auth: must be password or oauth2"},
		{"no provider", withOAuth2(nil, nil), "oauth2.provider: required when imap.auth or smtp.auth is oauth2"},
		{"unknown provider", withOAuth2(map[string]any{"provider": "yahoo", "client_id": "c"}, nil), "oauth2.provider: must be google, microsoft or custom"},
		{"no client id", withOAuth2(map[string]any{"provider": "microsoft"}, nil), "oauth2.client_id: required"},
		{"password kept", withOAuth2(ms, map[string]any{"imap.password_env": "MAILBOT_IMAP_PASSWORD"}), "imap.password_env: not used with imap.auth: oauth2"},
		{"no username", withOAuth2(ms, map[string]any{"smtp.username": deleted{}}), "smtp.username: required with smtp.auth: oauth2"},
		{"two accounts", withOAuth2(ms, map[string]any{"smtp.username": "other@example.org"}), "smtp.username: must be imap.username"},
		{"google without secret", withOAuth2(map[string]any{"provider": "google", "client_id": "c"}, nil), "oauth2.client_secret_env: required with provider: google"},
		{"secret env unset", withOAuth2(map[string]any{"provider": "google", "client_id": "c", "client_secret_env": "NOT_SET"}, nil),
			"oauth2.client_secret_env: environment variable NOT_SET is not set"},
		{"secret pasted", withOAuth2(map[string]any{"provider": "google", "client_id": "c", "client_secret_env": "GOCSPX-abc.def"}, nil),
			"oauth2.client_secret_env: must name an environment variable"},
		{"two secret sources", withOAuth2(map[string]any{"provider": "microsoft", "client_id": "c", "client_secret_env": "MAILBOT_OAUTH2_SECRET",
			"client_secret_file": "/etc/passwd"}, nil), "oauth2.client_secret_env: set only one"},
		{"secret file missing", withOAuth2(map[string]any{"provider": "microsoft", "client_id": "c", "client_secret_file": "/nonexistent/s"}, nil),
			"oauth2.client_secret_file: open /nonexistent/s"},
		{"bad tenant", withOAuth2(map[string]any{"provider": "microsoft", "client_id": "c", "tenant": "a/b"}, nil), "oauth2.tenant: must be"},
		{"endpoint for google", withOAuth2(map[string]any{"provider": "google", "client_id": "c", "client_secret_env": "MAILBOT_OAUTH2_SECRET",
			"token_url": "https://x.example/token"}, nil), "oauth2.token_url: only with provider: custom"},
		{"custom without token url", withOAuth2(map[string]any{"provider": "custom", "client_id": "c", "auth_url": "https://id.example/a"}, nil),
			"oauth2.token_url: required with provider: custom"},
		{"custom without a login endpoint", withOAuth2(map[string]any{"provider": "custom", "client_id": "c", "token_url": "https://id.example/t"}, nil),
			"oauth2.auth_url: required with provider: custom"},
		{"custom over http", withOAuth2(map[string]any{"provider": "custom", "client_id": "c", "token_url": "http://id.example/t",
			"auth_url": "https://id.example/a"}, nil), "oauth2.token_url: must be https"},
		{"custom not a URL", withOAuth2(map[string]any{"provider": "custom", "client_id": "c", "token_url": "id.example/t",
			"auth_url": "https://id.example/a"}, nil), "oauth2.token_url: must be an https URL"},
		{"scope with a space", withOAuth2(map[string]any{"provider": "microsoft", "client_id": "c", "scopes": []any{"a b"}}, nil), "oauth2.scopes[0]"},
		{"command and provider", withOAuth2(map[string]any{"provider": "microsoft", "client_id": "c", "token_command": "x"}, nil),
			"oauth2.token_command: set either token_command"},
		{"no notice delay", withOAuth2(map[string]any{"token_command": "x", "notify_admins_after": "0s"}, nil), "oauth2.notify_admins_after: must be more than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOAuth(t, tt.overrides)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error %v, want one containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "client-s3cret") {
				t.Errorf("the error shows the client secret: %v", err)
			}
		})
	}
}

// TestOAuth2Unused: an oauth2 section that no server uses is not checked,
// its secret not read, and a warning says it is not used.
func TestOAuth2Unused(t *testing.T) {
	c, err := parseOAuth(t, map[string]any{"oauth2.provider": "google", "oauth2.client_secret_env": "NOT_SET"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "oauth2: set, but neither") {
		t.Errorf("Warnings() = %q", w)
	}
}

func TestOAuth2Redacted(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("file-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, o := range []map[string]any{
		{"provider": "google", "client_id": "c", "client_secret_env": "MAILBOT_OAUTH2_SECRET"},
		{"provider": "google", "client_id": "c", "client_secret_file": file},
	} {
		c, err := parseOAuth(t, withOAuth2(o, nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.OAuth2.ClientSecret != "client-s3cret" && c.OAuth2.ClientSecret != "file-s3cret" {
			t.Errorf("secret not resolved: %q", c.OAuth2.ClientSecret)
		}
		out := c.Redacted()
		if strings.Contains(out, "s3cret") {
			t.Errorf("Redacted shows the client secret:\n%s", out)
		}
		if !strings.Contains(out, "provider: google") || !strings.Contains(out, "https://mail.google.com/") {
			t.Errorf("Redacted lacks the provider or its scope:\n%s", out)
		}
	}
}

// TestLoadSkippingPasswords: `mailbot oauth login` loads a config whose
// SMTP password it cannot read, but it still needs the client secret.
func TestLoadSkippingPasswords(t *testing.T) {
	t.Setenv("MAILBOT_OAUTH2_SECRET", "client-s3cret")
	t.Setenv("MAILBOT_SMTP_PASSWORD", "")
	path := filepath.Join(t.TempDir(), "mailbot.yaml")
	data := yamlWith(t, withOAuth2(map[string]any{"provider": "google", "client_id": "c", "client_secret_env": "MAILBOT_OAUTH2_SECRET"},
		map[string]any{"smtp.auth": "password", "smtp.password_env": "MAILBOT_SMTP_PASSWORD"}))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "smtp.password_env") {
		t.Fatalf("Load = %v, want the missing SMTP password reported", err)
	}
	c, err := LoadSkippingPasswords(path)
	if err != nil {
		t.Fatalf("LoadSkippingPasswords: %v", err)
	}
	if c.OAuth2.ClientSecret != "client-s3cret" || c.SMTP.Password != "" {
		t.Errorf("client secret %q, smtp password %q", c.OAuth2.ClientSecret, c.SMTP.Password)
	}
	t.Setenv("MAILBOT_OAUTH2_SECRET", "")
	if _, err := LoadSkippingPasswords(path); err == nil || !strings.Contains(err.Error(), "oauth2.client_secret_env") {
		t.Errorf("LoadSkippingPasswords without the client secret = %v", err)
	}
}
