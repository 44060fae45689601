package commands

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/message"

	"github.com/coworkingvisa/mailbot/storage"
	"github.com/coworkingvisa/mailbot/templates"
)

// Status is the word a result line begins with. Users and their scripts
// rely on these exact words.
type Status string

// The result statuses of SPEC.md.
const (
	OK          Status = "OK"
	Verified    Status = "VERIFIED"
	NotVerified Status = "NOT VERIFIED"
	Error       Status = "ERROR"
	Denied      Status = "DENIED"
)

// Result is the outcome of one command: a status, a sentence, for
// listings the lines to show under it, and files to attach to the reply.
type Result struct {
	Command string // the command line as written
	Status  Status
	Text    string
	Detail  []string
	Files   []File
	// Verdict is set on the result of a verify: what a reply read on a
	// phone at the front desk puts first (its Subject, its first line).
	Verdict *Verdict
}

// Verdict is a verify's answer in brief: the visitor, and the spaces they
// are an active member of (none for NOT VERIFIED).
type Verdict struct {
	Visitor string
	Homes   []string // space ids
}

// File is a file a command returns, attached to the reply (a roster CSV).
type File struct {
	Name, ContentType string
	Data              []byte
}

// Attachment is a file that came with the command email (a CSV to import).
// Data is transfer-decoded, not converted from Charset.
type Attachment struct {
	Filename, ContentType, Charset string
	Data                           []byte
	TooLarge                       bool // over the message reader's limit: Data is nil
}

// Limits bound what one command may do.
type Limits struct {
	MaxImportBytes int // a CSV attachment larger than this is refused
	MaxImportRows  int // a CSV with more data rows than this is refused
	// ConfirmRemovals: a message whose removals, deactivations and renames
	// would take a space past this many in a rolling day asks for
	// confirmation first (0 = never ask; see guard.go).
	ConfirmRemovals int
}

// Actor is the authenticated sender a message's commands run as.
type Actor struct {
	Address string // bare, lowercased
	Admin   bool   // listed in the config's admins
}

// Env is what a run needs from outside: the time, the message it came
// from, and the reader's language. Injected so that execution has no clock
// or network of its own.
type Env struct {
	Now         time.Time
	MessageID   string
	Attachments []Attachment
	Limits      Limits
	// Printer puts the results' sentences into the reader's language
	// (templates.Lang.Printer); nil means English.
	Printer *message.Printer
	// Languages are the codes a space's language= may name
	// (templates.Set.Languages); nil means the embedded catalogs' ones.
	Languages []string
	// Templates renders the notices a command sends to others (a host's
	// managers, a visitor) in their own language; nil means the embedded
	// set. Language is the network's (bot.language), for spaces that chose
	// none; "" means English.
	Templates *templates.Set
	Language  string
	// DefaultTZ is the time zone of spaces that name none (digest.timezone):
	// free days are counted by calendar day and month in the host's zone.
	// nil means UTC.
	DefaultTZ *time.Location
	// RosterConfirmDays: a roster neither confirmed nor changed for twice
	// this many days is pointed out to hosts who verify its members
	// (digest.roster_confirm_days); 0 never.
	RosterConfirmDays int
	// Contact is whom to ask when the remedy is a person (bot.contact, by
	// default the first admin's address): an address or a sentence; ""
	// names none.
	Contact string
	// DigestDay and DigestTime are the network's digest slot
	// (digest.weekday, digest.time), which a new space keeps unless it
	// names its own; "" says nothing of it.
	DigestDay, DigestTime string
}

// Report is the outcome of all of a message's commands.
type Report struct {
	Results []Result
	Ignored []string // lines that are not commands, in order
	Help    bool     // the reply should carry the help text
	Cut     bool     // more commands than allowed: the rest were not read
	// Items are the script, in order, for the transcript: a command item per
	// result, in the same order; a line Execute found to be prose has no
	// command.
	Items []Item
	// Notices are messages to people other than the sender, to send with
	// the reply: a visit notice to a host's managers, a declined visit to
	// the visitor, an erasure to a space's managers.
	Notices []Notice
}

// Notice is a message a command sends to others than its sender, written
// in their language.
type Notice struct {
	To       []string // one message each
	Language string   // the code of the language it is written in
	Subject  string
	Lines    []string // the first is the lead sentence; the others follow it, one a line
}

// Counts tallies the results by status, for the summary line.
func (r Report) Counts() map[Status]int {
	m := map[Status]int{}
	for _, res := range r.Results {
		m[res.Status]++
	}
	return m
}

// Execute runs a script's commands, in order, in the transaction tx. A
// command that fails (ERROR, DENIED) writes nothing; the others apply. An
// error return means the store failed: the caller must roll back tx.
//
// Removals, deactivations and renames that would take a space past
// env.Limits.ConfirmRemovals in a rolling day are not applied: each is
// checked and held, and one token confirms them all (see guard.go). The
// message's other lines apply at once.
func Execute(tx *storage.Tx, actor Actor, env Env, script Script) (Report, error) {
	x := newExecutor(tx, actor, env)
	script, err := x.dropProse(script)
	if err != nil {
		return Report{}, err
	}
	r := Report{Cut: script.Cut, Items: script.Items}
	if err := x.planGuard(script); err != nil {
		return Report{}, fmt.Errorf("plan: %w", err)
	}
	for _, it := range script.Items {
		if it.Command == nil {
			r.Ignored = append(r.Ignored, it.Line)
			continue
		}
		held := len(x.guard.held)
		res, err := x.run(it.Command)
		if err != nil {
			return Report{}, fmt.Errorf("%s: %w", it.Command.Name, err)
		}
		res.Command = it.Command.Line
		if it.Command.Name == "help" {
			r.Help = true
		}
		r.Notices = append(r.Notices, x.notices...)
		x.notices = nil
		if len(x.guard.held) > held && x.guard.first < 0 {
			x.guard.first = len(r.Results)
		}
		r.Results = append(r.Results, res)
	}
	if len(x.guard.held) > 0 {
		detail, err := x.holdChanges()
		if err != nil {
			return Report{}, fmt.Errorf("hold changes: %w", err)
		}
		first := &r.Results[x.guard.first]
		first.Detail = append(detail, first.Detail...)
	}
	if err := x.finish(); err != nil {
		return Report{}, err
	}
	if script.Commands == 0 {
		r.Help = true
	}
	return r, nil
}

// dropProse turns the lines that named a space only if there is one
// ("Terms apply.", "Visit us": Command.weakSpace) into ignored lines when
// there is none. The script's items are copied, never changed in place.
func (x *executor) dropProse(s Script) (Script, error) {
	out := s
	out.Items = slices.Clone(s.Items)
	for i, it := range out.Items {
		if it.Command == nil || it.Command.weakSpace == "" {
			continue
		}
		if _, found, err := x.tx.Space(it.Command.weakSpace); err != nil {
			return Script{}, err
		} else if !found {
			out.Items[i].Command = nil
			out.Commands--
		}
	}
	return out, nil
}

// executor carries one run's context so each command handler stays short.
type executor struct {
	tx    *storage.Tx
	actor Actor
	env   Env
	p     *message.Printer // the reader's language
	guard guard
	// importing is set once an import line took the message's file: a
	// message imports its file once.
	importing bool
	file      *rosterFile // the message's roster file, read once
	// listed are the rosters list members showed: a reply carries one file.
	listed []listing
	// notices are what the command in hand sends to others (Report.Notices).
	notices []Notice
	// zones caches the spaces' time zones by name.
	zones map[string]*time.Location
	// advised is set once a NOT VERIFIED said what a host can do next.
	advised bool
}

func newExecutor(tx *storage.Tx, actor Actor, env Env) *executor {
	p := env.Printer
	if p == nil {
		p = templates.Embedded().English().Printer()
	}
	return &executor{tx: tx, actor: actor, env: env, p: p, guard: newGuard(env.Limits.ConfirmRemovals)}
}

// Results and their sentences. Every sentence is a message id of the
// catalogs (templates/files/i18n), rendered in the reader's language.

func (x *executor) ok(id string, args ...any) Result {
	return Result{Status: OK, Text: x.t(id, args...)}
}

func (x *executor) fail(id string, args ...any) Result {
	return Result{Status: Error, Text: x.t(id, args...)}
}

func (x *executor) denied(id string, args ...any) Result {
	return Result{Status: Denied, Text: x.t(id, args...)}
}

// t renders a message id in the reader's language.
func (x *executor) t(id string, args ...any) string { return templates.Sprintf(x.p, id, args...) }

// admins names whom to ask when the remedy is a person: "the network's
// admins (CONTACT)".
func (x *executor) admins() string {
	if x.env.Contact == "" {
		return x.t("the network's admins")
	}
	return x.t("the network's admins (%s)", x.env.Contact)
}

// withSpace is a command line as it would name a space: the example a
// manager of several spaces reads ("add member a@x space=indyhall").
func withSpace(c *Command, space string) string {
	return strings.TrimRight(c.Line, ".,;!? ") + " space=" + space
}

// run dispatches one command after its parse check.
func (x *executor) run(c *Command) (Result, error) {
	if c.Err != "" {
		return Result{Status: Error, Text: strings.TrimSuffix(c.Problem.In(x.p), ".") + "."}, nil
	}
	switch c.Name {
	case "help":
		return x.ok("the list of commands is below."), nil
	case "verify":
		return x.verify(c)
	case "add member":
		return x.addMember(c)
	case "update member":
		return x.updateMember(c)
	case "remove member":
		return x.removeMember(c)
	case "list members":
		return x.listMembers(c)
	case "history":
		return x.history(c)
	case "import members":
		return x.importMembers(c)
	case "confirm":
		return x.confirm(c)
	case "add space", "update space", "remove space", "add manager", "remove manager", "list spaces":
		if !x.actor.Admin {
			return x.denied("%s is for network admins only; to have it done, ask %s.", c.Name, x.admins()), nil
		}
		return x.admin(c)
	case "spaces":
		return x.spaces(c)
	case "terms":
		return x.terms(c)
	case "visit":
		return x.visit(c)
	case "decline visit":
		return x.declineVisit(c)
	case "my data":
		return x.myData()
	case "forget me":
		return x.forgetMe()
	case "confirm roster":
		return x.confirmRoster(c)
	}
	return x.fail("unknown command %q.", c.Name), nil
}

// record writes one audit entry for a change made by this message.
func (x *executor) record(kind, space, key, action string, before, after any) error {
	return x.recordChange(storage.Change{Space: space, Kind: kind, Key: key, Action: action}, before, after)
}

// recordMember writes the audit entry of a change to a member; elsewhere
// are the other spaces where an added (or renamed-to) address is active.
func (x *executor) recordMember(space, key, action string, before, after any, elsewhere []string) error {
	return x.recordChange(storage.Change{Space: space, Kind: "member", Key: key, Action: action,
		ActiveElsewhere: elsewhere}, before, after)
}

// recordChange completes ch with who, when and which message, and the
// record before and after (nil for a creation or a removal), and writes it.
func (x *executor) recordChange(ch storage.Change, before, after any) error {
	ch.At, ch.Actor, ch.MessageID = x.env.Now, x.actor.Address, x.env.MessageID
	var err error
	if before != nil {
		if ch.Before, err = json.Marshal(before); err != nil {
			return fmt.Errorf("encode audit: %w", err)
		}
	}
	if after != nil {
		if ch.After, err = json.Marshal(after); err != nil {
			return fmt.Errorf("encode audit: %w", err)
		}
	}
	_, err = x.tx.Record(ch)
	return err
}

// today is the current day as YYYY-MM-DD, in UTC.
func (x *executor) today() string { return x.env.Now.UTC().Format("2006-01-02") }

// spaceLabel names a space for a person: "Indy Hall (Philadelphia, US)".
func spaceLabel(s storage.Space) string {
	var where []string
	for _, p := range []string{s.City, s.Country} {
		if p != "" {
			where = append(where, p)
		}
	}
	name := s.Name
	if name == "" {
		name = s.ID
	}
	if len(where) == 0 {
		return name
	}
	return fmt.Sprintf("%s (%s)", name, strings.Join(where, ", "))
}
