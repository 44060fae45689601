package commands

import "github.com/coworkingvisa/mailbot/commands/internal/norm"

// The rules themselves live in package norm, shared with the CSV roster
// reader, so that a file and a command line accept exactly the same values.

// NormalizeAddress checks that s is a plain email address (local@domain) and
// returns it lowercased, so that addresses compare case-insensitively.
// Surrounding <>, "mailto:" and trailing punctuation are removed first.
func NormalizeAddress(s string) (string, error) { return norm.Address(s) }

// NormalizeSpaceID checks a space id (letters, digits, "-", "_") and returns
// it lowercased.
func NormalizeSpaceID(s string) (string, error) { return norm.SpaceID(s) }

// NormalizeDate checks a YYYY-MM-DD date and returns it; "", "none" and
// "never" clear an end date and return "".
func NormalizeDate(s string) (string, error) { return norm.Date(s) }

// checkTimeZone checks an IANA time zone name such as Europe/Paris.
func checkTimeZone(tz string) error { return norm.TimeZone(tz) }

// checkText refuses option values that could not be shown safely on one line.
func checkText(key, v string) error { return norm.Text(key+"=", v) }

// truncate shortens s for an error message.
func truncate(s string, n int) string { return norm.Truncate(s, n) }
