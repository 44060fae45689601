package commands

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/commands/csvroster"
	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// csvContentType is how roster files are attached to replies.
const csvContentType = "text/csv; charset=utf-8"

// endingWindow is how far ahead "ending soon" looks, in days.
const endingWindow = 30

// maxListDetail bounds the members list members shows in the reply's text;
// the attached file always has them all.
const maxListDetail = 1000

// maxRejectedDetail bounds the rejected rows a reply lists one by one, so
// that a file of garbage cannot make a reply of megabytes.
const maxRejectedDetail = 200

// ImportReport is what an import did, or (for a replace waiting for
// confirmation) would do.
type ImportReport struct {
	File                               string // the attachment's name; "" when the caller gave data only
	Added, Updated, Unchanged, Removed int
	Rejected                           []RejectedRow
}

// RejectedRow is a row of an import that was not applied, and why.
type RejectedRow struct {
	Line   int
	Reason string // in English
	// Why is the reason as a sentence for the reader's language.
	Why templates.Message `json:"-"`
}

// ImportRoster applies CSV roster data to a space as actor (adds, updates;
// with replace also removes), writing audit records with env's time and
// message id. No confirmation step: for the operator CLI. env.Limits bound
// the data as they bound an attachment. Rows that fail their checks are
// reported in Rejected, not as an error; the error is for data that cannot
// be read at all, an unknown space, or a store failure (then the caller
// must roll back tx).
func ImportRoster(tx *storage.Tx, actor Actor, env Env, space string, data []byte, charset string, replace bool) (ImportReport, error) {
	if _, found, err := tx.Space(space); err != nil {
		return ImportReport{}, err
	} else if !found {
		return ImportReport{}, fmt.Errorf("import roster: there is no space %q", space)
	}
	if max := env.Limits.MaxImportBytes; max > 0 && len(data) > max {
		return ImportReport{}, fmt.Errorf("import roster: the file has %d bytes, over the limit of %d", len(data), max)
	}
	rows, problems, err := csvroster.Read(data, charset, env.Limits.MaxImportRows)
	if err != nil {
		return ImportReport{}, fmt.Errorf("import roster: %w", err)
	}
	if replace && len(rows) == 0 {
		// A header-only or all-rejected file is a mistake far more often
		// than a wish to empty the roster.
		return ImportReport{}, fmt.Errorf("import roster: no row of the file can be imported (%d rejected): "+
			"a replace with it would empty the roster of %s", len(problems), space)
	}
	x := newExecutor(tx, actor, env)
	p, err := x.planImport(space, rows, problems, replace)
	if err != nil {
		return ImportReport{}, err
	}
	if err := x.applyImport(p); err != nil {
		return ImportReport{}, err
	}
	if err := x.finish(); err != nil {
		return ImportReport{}, err
	}
	return p.report(""), nil
}

// RosterCSV renders a space's roster (optionally only one status) as the
// CSV the bot attaches: in the roster's order by name, with a UTF-8 byte
// order mark so that Excel opens names with accents correctly.
func RosterCSV(tx *storage.Tx, space, status string) ([]byte, error) {
	if _, found, err := tx.Space(space); err != nil {
		return nil, err
	} else if !found {
		return nil, fmt.Errorf("roster csv: there is no space %q", space)
	}
	all, err := tx.Members(space)
	if err != nil {
		return nil, err
	}
	return csvroster.File(filterStatus(all, status), ',')
}

// filterState keeps the members in a state on a day, as list members
// shows them: status=active those active that day, status=inactive the
// others (set inactive, or past their end date). "" keeps all.
func filterState(all []storage.Member, status, day string) []storage.Member {
	if status == "" {
		return all
	}
	var out []storage.Member
	for _, m := range all {
		if m.ActiveOn(day) == (status == storage.StatusActive) {
			out = append(out, m)
		}
	}
	return out
}

// filterStatus keeps the members whose recorded status is status, as a
// file of the roster states it ("" keeps all).
func filterStatus(all []storage.Member, status string) []storage.Member {
	if status == "" {
		return all
	}
	var out []storage.Member
	for _, m := range all {
		if m.Status == status {
			out = append(out, m)
		}
	}
	return out
}

// rosterCounts tallies a roster on a day, for list members: every member is
// in one of active, inactive or expired (storage.Member.ActiveOn), as the
// lines under the counts describe them.
type rosterCounts struct {
	total, active, inactive, expired, ending int
}

func countRoster(all []storage.Member, today time.Time) rosterCounts {
	day := today.Format("2006-01-02")
	soon := today.AddDate(0, 0, endingWindow).Format("2006-01-02")
	c := rosterCounts{total: len(all)}
	for _, m := range all {
		switch {
		case m.Status != storage.StatusActive:
			c.inactive++
		case !m.ActiveOn(day):
			c.expired++
		default:
			c.active++
			if m.Until != "" && m.Until <= soon {
				c.ending++
			}
		}
	}
	return c
}

// rosterCounts says a roster's counts for the reader: "3 members: 2
// active, 1 inactive; 0 ending within 30 days".
func (x *executor) rosterCounts(c rosterCounts) string {
	parts := []string{x.t("%d active", c.active), x.t("%d inactive", c.inactive)}
	if c.expired > 0 {
		parts = append(parts, x.t("%d expired (past their end date)", c.expired))
	}
	return x.t("%s: %s; %s", x.t("%d members", c.total), strings.Join(parts, ", "),
		x.t("%d ending within %d days", c.ending, endingWindow))
}

// listing is one roster list members showed.
type listing struct{ space, status string }

// listMembers shows a roster as text and attaches it as a CSV file. A reply
// carries one roster file: a later list members of the same message gives
// its counts, and says where its list and file are.
func (x *executor) listMembers(c *Command) (Result, error) {
	sp, res, err := x.space(c)
	if res != nil || err != nil {
		return deref(res), err
	}
	all, err := x.tx.Members(sp.ID)
	if err != nil {
		return Result{}, err
	}
	status := c.Opts["status"]
	counts := x.rosterCounts(countRoster(all, x.env.Now.UTC()))
	this := listing{space: sp.ID, status: status}
	if len(x.listed) > 0 {
		if slices.Contains(x.listed, this) {
			return x.ok("%s has %s: the same roster as above, listed and attached once.", sp.ID, counts), nil
		}
		return x.ok("%s has %s. A reply carries one roster, listed and attached once: the first list members above. "+
			"Send this line in a message of its own for its list and file.", sp.ID, counts), nil
	}
	x.listed = append(x.listed, this)
	shown := filterState(all, status, x.today())
	// Attached with the separator the reader's spreadsheet expects.
	data, err := csvroster.File(shown, templates.CSVDelimiter(x.p))
	if err != nil {
		return Result{}, err
	}
	var r Result
	switch name := fmt.Sprintf("%s-members-%s.csv", sp.ID, x.today()); status {
	case storage.StatusActive:
		name = fmt.Sprintf("%s-members-%s-%s.csv", sp.ID, status, x.today())
		r = x.ok("%s has %s. The %d active members are listed below and attached as %s.", sp.ID, counts, len(shown), name)
		r.Files = []File{{Name: name, ContentType: csvContentType, Data: data}}
	case storage.StatusInactive:
		name = fmt.Sprintf("%s-members-%s-%s.csv", sp.ID, status, x.today())
		r = x.ok("%s has %s. The %d members not active today (inactive or expired) are listed below and attached as %s.",
			sp.ID, counts, len(shown), name)
		r.Files = []File{{Name: name, ContentType: csvContentType, Data: data}}
	default:
		r = x.ok("%s has %s. The roster is listed below and attached as %s.", sp.ID, counts, name)
		r.Files = []File{{Name: name, ContentType: csvContentType, Data: data}}
	}
	for i, m := range shown {
		if i == maxListDetail {
			r.Detail = append(r.Detail, x.t("… and %d more in the attached file", len(shown)-i))
			break
		}
		r.Detail = append(r.Detail, x.describe(m))
	}
	return r, nil
}

// importPlan is what an import does to a roster, worked out before any of
// it is written, so a replace can be previewed and an apply is all or none.
type importPlan struct {
	space     string
	adds      []storage.Member
	updates   [][2]storage.Member // before, after
	unchanged int
	removes   []storage.Member // in roster order
	rejected  []RejectedRow
}

// planImport compares the rows with the space's roster. With replace,
// members missing from the file are removed, except those whose row was
// rejected: a typo in a date must not cost someone their membership.
func (x *executor) planImport(space string, rows []csvroster.Row, problems []csvroster.Problem, replace bool) (importPlan, error) {
	current, err := x.tx.Members(space)
	if err != nil {
		return importPlan{}, err
	}
	byEmail := make(map[string]storage.Member, len(current))
	for _, m := range current {
		byEmail[m.Email] = m
	}
	p := importPlan{space: space}
	inFile := map[string]bool{}
	for _, pr := range problems {
		p.rejected = append(p.rejected, RejectedRow{Line: pr.Line, Reason: pr.Reason, Why: pr.Why})
		if pr.Email != "" {
			inFile[pr.Email] = true
		}
	}
	sortRejected(p.rejected)
	for _, row := range rows {
		inFile[row.Email] = true
		old, found := byEmail[row.Email]
		if !found {
			p.adds = append(p.adds, x.newMember(space, row))
			continue
		}
		m := merge(old, row)
		if m.Name == old.Name && m.Status == old.Status && m.Until == old.Until {
			p.unchanged++
			continue
		}
		m.Updated = x.env.Now
		p.updates = append(p.updates, [2]storage.Member{old, m})
	}
	if replace {
		for _, m := range current {
			if !inFile[m.Email] {
				p.removes = append(p.removes, m)
			}
		}
	}
	return p, nil
}

// newMember is a row for an address the roster does not have yet: active
// unless the row says otherwise.
func (x *executor) newMember(space string, row csvroster.Row) storage.Member {
	m := storage.Member{Space: space, Email: row.Email, Name: row.Name, Status: storage.StatusActive,
		Until: row.Until, Added: x.env.Now, Updated: x.env.Now}
	if row.Set["status"] {
		m.Status = row.Status
	}
	return m
}

// merge applies the columns a row gives a value for to an existing member;
// an empty cell leaves the field as it is.
func merge(m storage.Member, row csvroster.Row) storage.Member {
	if row.Set["name"] {
		m.Name = row.Name
	}
	if row.Set["status"] {
		m.Status = row.Status
	}
	if row.Set["until"] {
		m.Until = row.Until
	}
	return m
}

// applyImport writes a plan and its audit records, in address order: bbolt
// writes keys in order much faster than in a spreadsheet's order (a 100k-row
// import took half the time), and the member index follows the same order.
func (x *executor) applyImport(p importPlan) error {
	slices.SortFunc(p.adds, func(a, b storage.Member) int { return strings.Compare(a.Email, b.Email) })
	slices.SortFunc(p.updates, func(a, b [2]storage.Member) int { return strings.Compare(a[1].Email, b[1].Email) })
	for _, m := range p.adds {
		if err := x.writeAdd(m); err != nil {
			return err
		}
	}
	for _, u := range p.updates {
		if err := x.writeUpdate(u[0], u[1]); err != nil {
			return err
		}
	}
	for _, m := range p.removes {
		if err := x.writeRemoval(m); err != nil {
			return err
		}
	}
	return nil
}

func (p importPlan) report(file string) ImportReport {
	return ImportReport{File: file, Added: len(p.adds), Updated: len(p.updates), Unchanged: p.unchanged,
		Removed: len(p.removes), Rejected: p.rejected}
}

// Whether and how an import's counts show its removals.
const (
	noRemovals = iota
	removals
	previewRemovals // in capitals: in a preview they matter most
)

// importCounts is an import's plan as a person reads it.
func (x *executor) importCounts(r ImportReport, removed int) string {
	parts := []string{x.t("%d added", r.Added), x.t("%d updated", r.Updated), x.t("%d unchanged", r.Unchanged)}
	switch removed {
	case removals:
		parts = append(parts, x.t("%d removed", r.Removed))
	case previewRemovals:
		parts = append(parts, x.t("%d REMOVED", r.Removed))
	}
	return strings.Join(append(parts, x.t("%d rejected", len(r.Rejected))), ", ")
}

// rejectedDetail lists rejected rows for a reply, a bounded number of them.
func (x *executor) rejectedDetail(rows []RejectedRow) []string {
	var out []string
	for i, r := range rows {
		if i == maxRejectedDetail {
			out = append(out, x.t("… and %d more rejected rows", len(rows)-i))
			break
		}
		why := r.Reason
		if !r.Why.IsZero() {
			why = r.Why.In(x.p)
		}
		out = append(out, x.t("line %s: %s", strconv.Itoa(r.Line), why))
	}
	return out
}

// sortRejected orders rejected rows by line, as a person reads the file.
func sortRejected(rows []RejectedRow) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Line < rows[j].Line })
}
