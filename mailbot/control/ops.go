package control

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/commands/csvroster"
	"github.com/coworkingvisa/mailbot/storage"
)

// Errors of the operations, the same through the socket as in-process.
var (
	ErrUnknownSpace = errors.New("no such space")
	ErrInvalid      = errors.New("invalid request")
)

// MaxImportBytes bounds a CSV sent to Import (the operator's, not the
// email limit of the config).
const MaxImportBytes = 64 << 20

// Operator is who an operator import runs as, in the audit trail.
var Operator = commands.Actor{Address: "operator (mailbot import)", Admin: true}

// ExportRequest says which rosters to export.
type ExportRequest struct {
	Space  string // "" for every space
	Format string // "csv" (the default) or "json"
	Status string // "" for every member, or "active" or "inactive"
}

func (r *ExportRequest) check() error {
	switch r.Format {
	case "":
		r.Format = "csv"
	case "csv", "json":
	default:
		return fmt.Errorf("%w: format must be csv or json, not %q", ErrInvalid, r.Format)
	}
	switch r.Status {
	case "", storage.StatusActive, storage.StatusInactive:
	default:
		return fmt.Errorf("%w: status must be %s or %s, not %q", ErrInvalid, storage.StatusActive, storage.StatusInactive, r.Status)
	}
	return nil
}

// ContentType is the media type of the export's format.
func (r ExportRequest) ContentType() string {
	if r.Format == "json" {
		return "application/json"
	}
	return "text/csv; charset=utf-8"
}

// SpaceExport is one space in a JSON export: the space's record, its
// managers' addresses and its members, ordered by name.
type SpaceExport struct {
	storage.Space
	Managers []string         `json:"managers"`
	Members  []storage.Member `json:"members"`
}

// Export writes the rosters req asks for to w, from one read transaction:
//   - CSV of one space: the roster as a manager gets it by email
//     (email,name,status,until,updated, after a UTF-8 BOM for Excel);
//   - CSV of every space: the same, with a first column "space";
//   - JSON: an array of SpaceExport, also for one space.
func Export(db *storage.DB, req ExportRequest, w io.Writer) error {
	if err := req.check(); err != nil {
		return err
	}
	var out []byte
	err := db.View(func(tx *storage.Tx) error {
		var err error
		out, err = exportTx(tx, req)
		return err
	})
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func exportTx(tx *storage.Tx, req ExportRequest) ([]byte, error) {
	var spaces []storage.Space
	if req.Space != "" {
		sp, ok, err := tx.Space(req.Space)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownSpace, req.Space)
		}
		spaces = []storage.Space{sp}
	} else {
		var err error
		if spaces, err = tx.Spaces(); err != nil {
			return nil, err
		}
	}
	switch {
	case req.Format == "json":
		return exportJSON(tx, spaces, req.Status)
	case req.Space != "":
		return commands.RosterCSV(tx, req.Space, req.Status)
	default:
		return exportAllCSV(tx, spaces, req.Status)
	}
}

func exportJSON(tx *storage.Tx, spaces []storage.Space, status string) ([]byte, error) {
	out := make([]SpaceExport, 0, len(spaces))
	for _, sp := range spaces {
		e := SpaceExport{Space: sp, Managers: []string{}, Members: []storage.Member{}}
		managers, err := tx.Managers(sp.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range managers {
			e.Managers = append(e.Managers, m.Email)
		}
		members, err := tx.Members(sp.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			if status == "" || m.Status == status {
				e.Members = append(e.Members, m)
			}
		}
		out = append(out, e)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return append(b, '\n'), nil
}

// bom is the UTF-8 byte order mark.
const bom = "\uFEFF"

// exportAllCSV joins the rosters of every space, as RosterCSV writes them,
// in one file with the space's id in a first column.
func exportAllCSV(tx *storage.Tx, spaces []storage.Space, status string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(bom) // as RosterCSV writes it, for Excel
	cw := csv.NewWriter(&buf)
	wroteHeader := false
	for _, sp := range spaces {
		data, err := commands.RosterCSV(tx, sp.ID, status)
		if err != nil {
			return nil, err
		}
		cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte(bom))))
		cr.FieldsPerRecord = -1
		header := true
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("export: roster of %s: %w", sp.ID, err)
			}
			switch {
			case !header:
				rec = append([]string{csvroster.Defuse(sp.ID)}, rec...)
			case wroteHeader:
				header = false
				continue
			default:
				header, wroteHeader = false, true
				rec = append([]string{"space"}, rec...)
			}
			if err := cw.Write(rec); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
		}
	}
	if !wroteHeader {
		if err := cw.Write(append([]string{"space"}, csvroster.Header...)); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return buf.Bytes(), nil
}

// ImportRequest is a roster to import into one space.
type ImportRequest struct {
	Space    string
	CSV      []byte
	Charset  string // "" for UTF-8, with or without a BOM
	Replace  bool   // also remove the members missing from the file
	Filename string // for the report only
}

// Import applies a roster to a space in one transaction, as Operator, with
// the message id "cli-import-<time>" in the audit trail. Rows that do not
// fit are in the report's Rejected; an error means nothing was applied.
// A replace applies at once: the operator asked for it on the command line.
func Import(db *storage.DB, now time.Time, req ImportRequest) (commands.ImportReport, error) {
	if req.Space == "" {
		return commands.ImportReport{}, fmt.Errorf("%w: a space is required", ErrInvalid)
	}
	if len(req.CSV) > MaxImportBytes {
		return commands.ImportReport{}, fmt.Errorf("%w: the file is larger than %d bytes", ErrInvalid, MaxImportBytes)
	}
	env := commands.Env{
		Now:       now,
		MessageID: "cli-import-" + now.UTC().Format(time.RFC3339Nano),
	}
	var rep commands.ImportReport
	err := db.Update(func(tx *storage.Tx) error {
		_, ok, err := tx.Space(req.Space)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w %q", ErrUnknownSpace, req.Space)
		}
		rep, err = commands.ImportRoster(tx, Operator, env, req.Space, req.CSV, req.Charset, req.Replace)
		return err
	})
	if err != nil {
		return commands.ImportReport{}, err
	}
	if req.Filename != "" {
		rep.File = req.Filename
	}
	return rep, nil
}
