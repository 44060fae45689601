package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/coworkingvisa/mailbot/commands/csvroster"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// maxRemovedDetail bounds the members a replace preview lists by address.
const maxRemovedDetail = 50

// csvTypes are the media types mail clients give a CSV file: Outlook on
// Windows sends application/vnd.ms-excel, older clients the others.
var csvTypes = map[string]bool{
	"text/csv": true, "application/csv": true, "application/vnd.ms-excel": true,
	"text/comma-separated-values": true, "text/x-csv": true, "application/x-csv": true,
}

// isCSV reports whether an attachment is meant as a CSV file.
func isCSV(a Attachment) bool {
	return csvTypes[strings.ToLower(a.ContentType)] || strings.HasSuffix(strings.ToLower(a.Filename), ".csv")
}

// fileLabel names an attachment for a person, safely on one line.
func (x *executor) fileLabel(a Attachment) string {
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(a.Filename))
	if name == "" {
		return x.t("the attached file")
	}
	return truncate(name, 80)
}

// rosterAttachment picks the CSV file of the message, or says why there
// is none to import.
func (x *executor) rosterAttachment() (Attachment, *Result) {
	var csvs, others []Attachment
	for _, a := range x.env.Attachments {
		if isCSV(a) {
			csvs = append(csvs, a)
		} else {
			others = append(others, a)
		}
	}
	switch {
	case len(csvs) == 1:
		return csvs[0], nil
	case len(csvs) > 1:
		names := make([]string, len(csvs))
		for i, a := range csvs {
			names[i] = x.fileLabel(a)
		}
		r := x.fail("attach one CSV file, not %d (%s).", len(csvs), strings.Join(names, ", "))
		return Attachment{}, &r
	case len(others) == 0:
		r := x.fail("attach the roster as a CSV file (columns email,name,status,until, with a header row).")
		return Attachment{}, &r
	}
	found := make([]string, len(others))
	for i, a := range others {
		found[i] = x.fileLabel(a) + " (" + truncate(a.ContentType, 60) + ")"
	}
	r := x.fail("attach the roster as a CSV file; this message has %s. In a spreadsheet, save as \"CSV UTF-8\" and attach that.",
		strings.Join(found, ", "))
	return Attachment{}, &r
}

// checkSize refuses an attachment over the import limit.
func (x *executor) checkSize(a Attachment) *Result {
	max := x.env.Limits.MaxImportBytes
	if a.TooLarge || max > 0 && len(a.Data) > max {
		limit := x.t("the limit")
		if max > 0 {
			limit = x.t("the limit of %s", x.humanBytes(max))
		}
		r := x.fail("%s is too large to import (over %s). Nothing was changed; split it into several files, "+
			"or ask the network operator to import it.", x.fileLabel(a), limit)
		return &r
	}
	return nil
}

func (x *executor) humanBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return x.t("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return x.t("%d KB", n>>10)
	}
	return x.t("%d bytes", n)
}

// rosterFile is the message's roster attachment, read once however many
// lines look at it.
type rosterFile struct {
	name     string // for a person
	data     []byte // as sent
	text     []byte // decoded to UTF-8
	rows     []csvroster.Row
	problems []csvroster.Problem
	res      *Result // why it cannot be imported; nil when it can
}

// readRosterFile returns the message's roster file, or says why there is
// none to import.
func (x *executor) readRosterFile() (*rosterFile, *Result) {
	if x.file == nil {
		x.file = x.loadRosterFile()
	}
	return x.file, x.file.res
}

func (x *executor) loadRosterFile() *rosterFile {
	att, res := x.rosterAttachment()
	if res != nil {
		return &rosterFile{res: res}
	}
	if res := x.checkSize(att); res != nil {
		return &rosterFile{res: res}
	}
	f := &rosterFile{name: x.fileLabel(att), data: att.Data}
	var err error
	if f.text, err = csvroster.Decode(att.Data, att.Charset); err == nil {
		f.rows, f.problems, err = csvroster.Read(f.text, "utf-8", x.env.Limits.MaxImportRows)
	}
	if err != nil {
		r := x.fail("%s cannot be read: %s. Nothing was changed.", f.name, strings.TrimSuffix(templates.Localize(x.p, err), "."))
		f.res = &r
	}
	return f
}

// importMembers is "import members [replace]": it reads the attached
// roster and applies it, or for a replace previews it and holds it for
// confirmation. A message imports its file once: a second import line
// would read, and for a replace store, the same file again.
func (x *executor) importMembers(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	if x.importing {
		return x.fail("this message imports its file once, with the import members line above; " +
			"send another import in a message of its own, with its file."), nil
	}
	x.importing = true
	f, res := x.readRosterFile()
	if res != nil {
		return *res, nil
	}
	replace := contains(c.Words, "replace")
	p, err := x.planImport(sp.ID, f.rows, f.problems, replace)
	if err != nil {
		return Result{}, err
	}
	if len(f.rows) == 0 {
		r := x.fail("%s has no member row that can be imported (%d rejected). Nothing was changed.", f.name, len(p.rejected))
		r.Detail = x.rejectedDetail(p.rejected)
		return r, nil
	}
	if replace {
		return x.previewReplace(sp.ID, f, p)
	}
	var held [][2]storage.Member
	if x.holding(sp.ID) {
		held = destructiveUpdates(p, x.today())
		p.updates = slices.DeleteFunc(p.updates, func(u [2]storage.Member) bool { return destructive(u[0], u[1], x.today()) })
		for _, u := range held {
			x.hold(heldChange{Space: sp.ID, Email: u[0].Email, Set: heldSet(u[0], u[1])})
		}
	}
	if err := x.applyImport(p); err != nil {
		return Result{}, err
	}
	rep := p.report(f.name)
	r := x.ok("imported %s into %s: %s.", f.name, sp.ID, x.importCounts(rep, noRemovals))
	if len(held) > 0 {
		r = x.ok("imported %s into %s: %s; %d more updates end memberships and wait for your confirmation, nothing of them changed yet.",
			f.name, sp.ID, x.importCounts(rep, noRemovals), len(held))
		r.Detail = x.heldDetail(held)
	}
	r.Detail = append(r.Detail, x.pastEndDates(p)...)
	r.Detail = append(r.Detail, x.rejectedDetail(rep.Rejected)...)
	return r, nil
}

// pastEndDates says which members an import gives an end date already
// past: they were accepted, and stop verifying at once (see pastEndDate).
func (x *executor) pastEndDates(p importPlan) []string {
	var who []string
	for _, m := range p.adds {
		if x.pastEndDate(nil, m) != "" {
			who = append(who, m.Email)
		}
	}
	for _, u := range p.updates {
		if x.pastEndDate(&u[0], u[1]) != "" {
			who = append(who, u[1].Email)
		}
	}
	if len(who) == 0 {
		return nil
	}
	if len(who) > maxRemovedDetail {
		who = append(who[:maxRemovedDetail:maxRemovedDetail], "…")
	}
	return []string{x.t("%d members have an end date already past in the file, so are no longer active and do not verify "+
		"(NOT VERIFIED): %s", len(who), strings.Join(who, ", "))}
}

// heldDetail lists an import's held updates, a bounded number of them.
func (x *executor) heldDetail(held [][2]storage.Member) []string {
	var out []string
	for i, u := range held {
		if i == maxRemovedDetail {
			out = append(out, x.t("… and %d more held", len(held)-i))
			break
		}
		out = append(out, x.t("held: %s, to become %s", x.describe(u[0]), x.describe(u[1])))
	}
	return out
}

// replacePayload is a replace waiting for confirmation. The file, as it
// was decoded, is stored with the pending change (storage.PutPendingWithFile)
// so the confirmation applies exactly what was previewed; Data holds it in
// records written before files were stored apart.
type replacePayload struct {
	File       string   `json:"file"`
	Data       []byte   `json:"data,omitempty"` // UTF-8 text of the file, in older records only
	SHA256     string   `json:"sha256"`         // of the UTF-8 text
	FileSHA256 string   `json:"file_sha256"`    // of the attachment as sent
	Removes    []string `json:"removes"`        // the addresses the preview said it would remove
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// previewReplace holds a replace for confirmation and says what it would
// change. Nothing of the roster is written.
func (x *executor) previewReplace(space string, f *rosterFile, p importPlan) (Result, error) {
	payload := replacePayload{File: f.name, SHA256: sha256Hex(f.text), FileSHA256: sha256Hex(f.data)}
	for _, m := range p.removes {
		payload.Removes = append(payload.Removes, m.Email)
	}
	tok, expires, notes, err := x.holdPending(space, pendingReplace, payload, f.text)
	if err != nil {
		return Result{}, err
	}
	rep := p.report(payload.File)
	r := x.ok("%s would replace the roster of %s: %s. Nothing was changed yet. To apply, reply with the line: confirm %s",
		payload.File, space, x.importCounts(rep, previewRemovals), tok)
	r.Detail = append(x.removedDetail(p.removes, previewRemovals), x.rejectedDetail(rep.Rejected)...)
	r.Detail = append(r.Detail, x.tokenNote(expires))
	r.Detail = append(r.Detail, notes...)
	return r, nil
}

// removedDetail lists members removed (removals), to be removed
// (previewRemovals) or that would be removed by a replace now but were
// not in its preview (noRemovals), a bounded number of them.
func (x *executor) removedDetail(removes []storage.Member, how int) []string {
	var out []string
	for i, m := range removes {
		if i == maxRemovedDetail {
			out = append(out, x.t("… and %d more", len(removes)-i))
			break
		}
		switch how {
		case previewRemovals:
			out = append(out, x.t("REMOVED: %s", x.describe(m)))
		case removals:
			out = append(out, x.t("removed: %s", x.describe(m)))
		default:
			out = append(out, x.t("would also remove: %s", x.describe(m)))
		}
	}
	return out
}

// confirmReplace applies a confirmed replace: the stored file, checked
// again against the roster as it is now.
func (x *executor) confirmReplace(p storage.Pending) (Result, error) {
	var pl replacePayload
	if err := json.Unmarshal(p.Payload, &pl); err != nil {
		return Result{}, fmt.Errorf("decode pending replace: %w", err)
	}
	if len(pl.Data) == 0 {
		pl.Data, _ = x.tx.PendingFile(p)
	}
	if sha256Hex(pl.Data) != pl.SHA256 {
		return x.fail("the file waiting under this token is damaged; nothing was changed. Send the import again."), nil
	}
	if res := x.sameFile(pl); res != nil {
		return *res, nil
	}
	rows, problems, err := csvroster.Read(pl.Data, "utf-8", 0)
	if err != nil {
		return x.fail("%s cannot be read any more: %s. Nothing was changed.", pl.File, err), nil
	}
	plan, err := x.planImport(p.Space, rows, problems, true)
	if err != nil {
		return Result{}, err
	}
	if extra := unexpectedRemovals(plan.removes, pl.Removes); len(extra) > 0 {
		r := x.fail("the roster of %s changed since the preview: the import would now also remove %d members "+
			"the preview did not list. Nothing was changed; send the import again for a new preview.", p.Space, len(extra))
		r.Detail = x.removedDetail(extra, noRemovals)
		return r, nil
	}
	if err := x.applyImport(plan); err != nil {
		return Result{}, err
	}
	if err := x.tx.DeletePending(p.Token); err != nil {
		return Result{}, err
	}
	rep := plan.report(pl.File)
	r := x.ok("imported %s into %s, replacing its roster: %s.", pl.File, p.Space, x.importCounts(rep, removals))
	r.Detail = append(x.removedDetail(plan.removes, removals), x.rejectedDetail(rep.Rejected)...)
	return r, nil
}

// sameFile refuses a confirmation that comes with a different CSV file than
// the one the token holds: the token is for that file only.
func (x *executor) sameFile(pl replacePayload) *Result {
	var csvs []Attachment
	for _, a := range x.env.Attachments {
		if isCSV(a) {
			csvs = append(csvs, a)
		}
	}
	for _, a := range csvs {
		if a.TooLarge || sha256Hex(a.Data) != pl.FileSHA256 {
			r := x.fail("this token confirms %s as previewed, and the attached %s is a different file. Nothing was changed; "+
				"to import the new file, send import members replace with it for a new preview.", pl.File, x.fileLabel(a))
			return &r
		}
	}
	return nil
}

// unexpectedRemovals returns the members a replace would remove now that
// its preview did not list (added to the roster since).
func unexpectedRemovals(now []storage.Member, previewed []string) []storage.Member {
	listed := make(map[string]bool, len(previewed))
	for _, e := range previewed {
		listed[e] = true
	}
	var out []storage.Member
	for _, m := range now {
		if !listed[m.Email] {
			out = append(out, m)
		}
	}
	return out
}
