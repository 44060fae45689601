// Package csvroster reads and writes rosters as CSV files, the format
// managers exchange with spreadsheets: a header row, then one member a row.
package csvroster

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Header is the column row of every roster the bot writes.
var Header = []string{"email", "name", "status", "until", "updated"}

// Write writes members as CSV, in the order given, with a header row.
// Every field is written as text, so a spreadsheet keeps dates and
// addresses as they are, and every cell is defused (see Defuse).
func Write(w io.Writer, members []storage.Member) error { return WriteDelimited(w, members, ',') }

// WriteDelimited is Write with fields separated by comma (',' or ';').
func WriteDelimited(w io.Writer, members []storage.Member, comma rune) error {
	cw := csv.NewWriter(w)
	cw.Comma = comma
	if err := cw.Write(Header); err != nil {
		return fmt.Errorf("write roster csv: %w", err)
	}
	for _, m := range members {
		updated := ""
		if !m.Updated.IsZero() {
			updated = m.Updated.UTC().Format(time.RFC3339)
		}
		rec := []string{m.Email, m.Name, m.Status, m.Until, updated}
		for i := range rec {
			rec[i] = Defuse(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write roster csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write roster csv: %w", err)
	}
	return nil
}

// BOM is the UTF-8 byte order mark a file the bot attaches starts with:
// without it, Excel reads UTF-8 as the system's legacy code page and
// garbles names with accents.
const BOM = "\uFEFF"

// File is a roster as the bot attaches it to a mail: the BOM, then the
// CSV with fields separated by comma, the separator a spreadsheet in the
// reader's language expects (templates.CSVDelimiter: ';' where decimals
// are written with a comma, as in French, German and Spanish). Read reads
// either.
func File(members []storage.Member, comma rune) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(BOM)
	if err := WriteDelimited(&b, members, comma); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// formulaStart are the first characters that make a spreadsheet read a
// cell as a formula (CWE-1236; OWASP's "CSV Injection").
const formulaStart = "=+-@\t\r"

// formulaLike reports whether s, past any leading quotes, starts as a
// formula does.
func formulaLike(s string) bool {
	t := strings.TrimLeft(s, "'")
	return t != "" && strings.IndexByte(formulaStart, t[0]) >= 0
}

// Defuse makes a cell safe to open in a spreadsheet, as OWASP recommends:
// a value starting with =, +, -, @, a tab or a carriage return gets a
// leading ', which spreadsheets show as text. A value whose own leading
// quotes come before such a character gets one more, so that Undefuse
// gives back exactly what was written (a quote then =x is written with
// two quotes before the =).
func Defuse(s string) string {
	if formulaLike(s) {
		return "'" + s
	}
	return s
}

// Undefuse removes the quote Defuse added, so that a file the bot wrote
// reads back to the values it was written from.
func Undefuse(s string) string {
	if strings.HasPrefix(s, "'") && formulaLike(s[1:]) {
		return s[1:]
	}
	return s
}
