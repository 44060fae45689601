// Package csvroster reads and writes rosters as CSV files, the format
// managers exchange with spreadsheets: a header row, then one member a row.
package csvroster

import (
	"encoding/csv"
	"fmt"
	"io"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Header is the column row of every roster the bot writes.
var Header = []string{"email", "name", "status", "until", "updated"}

// Write writes members as CSV, in the order given, with a header row.
// Every field is written as text, so a spreadsheet keeps dates and
// addresses as they are.
func Write(w io.Writer, members []storage.Member) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return fmt.Errorf("write roster csv: %w", err)
	}
	for _, m := range members {
		updated := ""
		if !m.Updated.IsZero() {
			updated = m.Updated.UTC().Format(time.RFC3339)
		}
		if err := cw.Write([]string{m.Email, safe(m.Name), m.Status, m.Until, updated}); err != nil {
			return fmt.Errorf("write roster csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write roster csv: %w", err)
	}
	return nil
}

// safe defuses spreadsheet formula injection (CWE-1236): a name starting
// with =, +, - or @ would run as a formula when the file is opened.
func safe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
