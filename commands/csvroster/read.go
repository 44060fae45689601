package csvroster

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"

	"github.com/coworkingvisa/mailbot/commands/internal/norm"
	"github.com/coworkingvisa/mailbot/templates"
)

// Row is one member as a roster file gives it, checked and normalised with
// the rules of the command language. Set says which columns the row gives a
// value for: an empty cell leaves that field of an existing member as it is.
type Row struct {
	Line                       int // physical line of the file where the row starts
	Email, Name, Status, Until string
	Set                        map[string]bool // "email", "name", "status", "until"
}

// Problem is a row that was not taken, and why. Email is the row's address
// when that much was valid, so that a replace does not remove a member
// whose row merely has a typo in another column.
type Problem struct {
	Line   int
	Reason string // Why in English
	// Why is the reason as a sentence to render in the reader's language.
	Why   templates.Message
	Email string
}

// Columns Read understands; any other column (such as "updated", which
// Write adds) is ignored, so a file the bot sent can be sent back as it is.
const (
	colEmail  = "email"
	colName   = "name"
	colStatus = "status"
	colUntil  = "until"
)

// headerNames maps the header cells people write to the columns.
var headerNames = map[string]string{
	"email":          colEmail,
	"e-mail":         colEmail,
	"email address":  colEmail,
	"e-mail address": colEmail,
	"mail":           colEmail,
	"name":           colName,
	"full name":      colName,
	"status":         colStatus,
	"until":          colUntil,
	"end date":       colUntil,
}

// Read reads a roster file: a header row naming the columns (email is
// required; name, status and until are optional; order and case are free),
// then one member a row. It accepts what spreadsheets write: UTF-8 with or
// without a byte order mark, UTF-16 with one, the declared charset, or
// windows-1252 when nothing is declared and the bytes are not UTF-8; comma,
// semicolon or tab as the delimiter (taken from the header row); quoted
// fields with delimiters and line breaks; CRLF or CR line ends.
//
// Rows are checked one by one: a bad row becomes a Problem with its line
// number and the others are still read. A later row with an address seen
// before is a Problem too. The error is only for a file that cannot be read
// at all (not text, no header, no email column, more than maxRows rows when
// maxRows > 0, a quote that is never closed).
func Read(data []byte, charset string, maxRows int) ([]Row, []Problem, error) {
	text, err := Decode(data, charset)
	if err != nil {
		return nil, nil, err
	}
	return readText(string(text), maxRows)
}

// Decode returns a roster file's text as UTF-8 without a byte order mark,
// by the rules Read follows. An import waiting for confirmation keeps this
// text, so that what is confirmed is exactly what was previewed.
func Decode(data []byte, charset string) ([]byte, error) {
	if kind := binaryKind(data); !kind.IsZero() {
		return nil, templates.Errorf("the file is %s, not CSV text: save it as \"CSV UTF-8\" and attach that", kind)
	}
	out, err := decodeText(data, strings.ToLower(strings.TrimSpace(charset)))
	if err != nil {
		return nil, err
	}
	out = bytes.TrimPrefix(out, []byte("\uFEFF"))
	if bytes.IndexByte(out, 0) >= 0 {
		return nil, templates.Errorf("the file is not text (it contains NUL bytes): save it as \"CSV UTF-8\" and attach that")
	}
	if !bytes.Contains(out, []byte("\n")) && bytes.Contains(out, []byte("\r")) {
		out = bytes.ReplaceAll(out, []byte("\r"), []byte("\n")) // old Mac line ends
	}
	return out, nil
}

// binaryKind recognises the files people attach instead of a CSV.
func binaryKind(data []byte) templates.Message {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return templates.Msg("a zip archive (an Excel or Numbers workbook?)")
	case bytes.HasPrefix(data, []byte("\xD0\xCF\x11\xE0")):
		return templates.Msg("an old Excel workbook (.xls)")
	case bytes.HasPrefix(data, []byte("%PDF")):
		return templates.Msg("a PDF document")
	}
	return templates.Message{}
}

// decodeText converts data to UTF-8. A byte order mark wins over the
// declared charset (a mislabelled part is more likely than a wrong BOM).
func decodeText(data []byte, label string) ([]byte, error) {
	switch {
	case bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")):
		return bytes.ToValidUTF8(data[3:], []byte("\uFFFD")), nil
	case bytes.HasPrefix(data, []byte("\xFF\xFE")), bytes.HasPrefix(data, []byte("\xFE\xFF")):
		return transform(unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM), data, "UTF-16")
	}
	switch label {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if utf8.Valid(data) {
			return data, nil
		}
		// Not UTF-8 whatever it says: what Excel writes in Western Europe.
		return transform(charmap.Windows1252, data, "windows-1252")
	}
	enc := lookupCharset(label)
	if enc == nil {
		if utf8.Valid(data) {
			return data, nil
		}
		return nil, templates.Errorf("the file's charset %q is unknown: save it as \"CSV UTF-8\" and attach that", norm.Truncate(label, 40))
	}
	return transform(enc, data, label)
}

// lookupCharset finds an encoding by its MIME label. WHATWG's table comes
// first because it reads "iso-8859-1" as windows-1252, as mail clients mean
// it; IANA's covers the rest.
func lookupCharset(label string) encoding.Encoding {
	if enc, err := htmlindex.Get(label); err == nil && enc != nil {
		return enc
	}
	if enc, err := ianaindex.MIME.Encoding(label); err == nil && enc != nil {
		return enc
	}
	if enc, err := ianaindex.IANA.Encoding(label); err == nil && enc != nil {
		return enc
	}
	return nil
}

func transform(enc encoding.Encoding, data []byte, name string) ([]byte, error) {
	out, err := enc.NewDecoder().Bytes(data)
	if err != nil {
		return nil, templates.Errorf("the file cannot be read as %s: %s", name, err)
	}
	return bytes.ToValidUTF8(out, []byte("\uFFFD")), nil
}

// readText parses decoded roster text.
func readText(text string, maxRows int) ([]Row, []Problem, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = delimiter(text)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	cols, err := readHeader(r)
	if err != nil {
		return nil, nil, err
	}
	lastLine := strings.Count(strings.TrimRight(text, "\n"), "\n") + 1
	rd := rowReader{cols: cols, seen: map[string]int{}}
	count := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine && pe.Line >= lastLine {
				return nil, nil, templates.Errorf("line %s: a quoted value is never closed, so the rest of the file cannot be read", strconv.Itoa(pe.StartLine))
			}
			if count++; maxRows > 0 && count > maxRows {
				return nil, nil, tooMany(maxRows)
			}
			rd.problem(pe.StartLine, "", quoteReason(pe))
			continue
		}
		if err != nil {
			return nil, nil, templates.Errorf("the file cannot be read as CSV: %s", err)
		}
		if blank(rec) {
			continue
		}
		if count++; maxRows > 0 && count > maxRows {
			return nil, nil, tooMany(maxRows)
		}
		line, _ := r.FieldPos(0)
		rd.row(line, rec)
	}
	return rd.rows, rd.problems, nil
}

func tooMany(maxRows int) error {
	return templates.Errorf("the file has more than %d member rows, the most one import may have", maxRows)
}

func quoteReason(pe *csv.ParseError) templates.Message {
	if errors.Is(pe.Err, csv.ErrBareQuote) {
		return templates.Msg(`a value contains a quote ("): put the whole value in quotes and double the quote inside it`)
	}
	return templates.Msg(`a quote (") is misplaced on line %s, column %s`, strconv.Itoa(pe.Line), strconv.Itoa(pe.Column))
}

// delimiter picks the separator the header row uses most: Excel writes ";"
// where the decimal separator is a comma, and "Unicode text" uses tabs.
func delimiter(text string) rune {
	first := text
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) != "" {
			first = l
			break
		}
	}
	best, n := ',', strings.Count(first, ",")
	for _, d := range []rune{';', '\t'} {
		if c := strings.Count(first, string(d)); c > n {
			best, n = d, c
		}
	}
	return best
}

// readHeader reads the first non-blank record and maps column names to
// their positions.
func readHeader(r *csv.Reader) (map[string]int, error) {
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil, templates.Errorf("the file is empty: the first row must be the header email,name,status,until")
		}
		if err != nil {
			return nil, templates.Errorf("the header row cannot be read: %s", err)
		}
		if blank(rec) {
			continue
		}
		return columns(rec)
	}
}

func columns(rec []string) (map[string]int, error) {
	cols := map[string]int{}
	for i, cell := range rec {
		name := strings.Join(strings.Fields(strings.ToLower(strings.TrimPrefix(cell, "\uFEFF"))), " ")
		col, known := headerNames[name]
		if !known {
			continue
		}
		if _, dup := cols[col]; dup {
			return nil, templates.Errorf("the header row names the %s column twice", col)
		}
		cols[col] = i
	}
	if _, ok := cols[colEmail]; !ok {
		if len(rec) > 0 && strings.Contains(rec[0], "@") {
			return nil, templates.Errorf("the first row looks like a member, not a header: put the row email,name,status,until above it")
		}
		return nil, templates.Errorf("the header row has no email column: the first row must be the header email,name,status,until")
	}
	return cols, nil
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// rowReader checks the data rows one by one.
type rowReader struct {
	cols     map[string]int
	seen     map[string]int // address -> line of its first row
	rows     []Row
	problems []Problem
}

func (rd *rowReader) problem(line int, email string, why templates.Message) {
	rd.problems = append(rd.problems, Problem{Line: line, Reason: why.Error(), Why: why, Email: email})
}

// reason is a value check's error as a sentence for the reader.
func reason(err error) templates.Message {
	var m templates.Message
	if errors.As(err, &m) {
		return m
	}
	return templates.Msg("%s", err.Error())
}

// cell returns a column's trimmed value in rec, and whether there is one.
// What Write does against formula injection is undone first, so a roster
// the bot sent reads back unchanged.
func (rd *rowReader) cell(rec []string, col string) (string, bool) {
	i, ok := rd.cols[col]
	if !ok || i >= len(rec) {
		return "", false
	}
	v := strings.TrimSpace(Undefuse(strings.TrimSpace(rec[i])))
	return v, v != ""
}

// row checks one record; a valid one becomes a Row, another a Problem.
func (rd *rowReader) row(line int, rec []string) {
	raw, ok := rd.cell(rec, colEmail)
	if !ok {
		rd.problem(line, "", templates.Msg("the row has no email address"))
		return
	}
	email, err := norm.Address(raw)
	if err != nil {
		rd.problem(line, "", reason(err))
		return
	}
	if first, dup := rd.seen[email]; dup {
		rd.problem(line, email, templates.Msg("%s is already on line %s; only the first row counts", email, strconv.Itoa(first)))
		return
	}
	rd.seen[email] = line
	row := Row{Line: line, Email: email, Set: map[string]bool{colEmail: true}}
	if why := rd.fill(&row, rec); !why.IsZero() {
		rd.problem(line, email, why)
		return
	}
	rd.rows = append(rd.rows, row)
}

// fill sets the optional columns the row gives a value for, or says what
// is wrong with one.
func (rd *rowReader) fill(row *Row, rec []string) templates.Message {
	if v, ok := rd.cell(rec, colName); ok {
		name := cleanName(v)
		if err := norm.Text(templates.Msg("the name"), name); err != nil {
			return reason(err)
		}
		row.Name, row.Set[colName] = name, true
	}
	if v, ok := rd.cell(rec, colStatus); ok {
		s, err := norm.Status(v)
		if err != nil {
			return reason(err)
		}
		row.Status, row.Set[colStatus] = s, true
	}
	if v, ok := rd.cell(rec, colUntil); ok {
		d, err := norm.Date(v)
		if err != nil {
			return reason(err)
		}
		row.Until, row.Set[colUntil] = d, true
	}
	return templates.Message{}
}

// cleanName folds line breaks and runs of spaces, which a spreadsheet cell
// may hold, into single spaces.
func cleanName(v string) string {
	return strings.Join(strings.Fields(v), " ")
}
