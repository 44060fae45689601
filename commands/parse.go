// Package commands is the bot's command language: it turns the lines of a
// command email into commands, checks who may run them, and executes them
// against the store. It knows nothing of IMAP, SMTP or bbolt: the daemon hands
// it lines and a storage transaction, and gets back results to put in a reply.
package commands

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coworkingvisa/mailbot/templates"
)

// Command is one parsed command line.
type Command struct {
	Line   string            // the line as written (trimmed)
	Name   string            // canonical name, e.g. "add member"
	Target string            // the address, space id or token the command acts on
	Opts   map[string]string // key=value options, keys lowercased
	Words  []string          // bare words after the target (e.g. "replace")
	Err    string            // why the line does not fit the command, in English; set means ERROR
	// Problem is Err as a sentence to render in the reader's language.
	Problem templates.Message
}

// refuse records why the line does not fit its command.
func (c *Command) refuse(why templates.Message) {
	c.Problem, c.Err = why, why.Error()
}

// problem is an error of a value check as a sentence for the reader.
func problem(err error) templates.Message {
	var m templates.Message
	if errors.As(err, &m) {
		return m
	}
	return templates.Msg("%s", err.Error())
}

// Item is one line of a command email as the reply shows it: a command, or
// a line that was not one (Command nil), listed so a typo stays visible.
type Item struct {
	Line    string
	Command *Command
}

// Script is what Parse read from one message.
type Script struct {
	Items    []Item
	Commands int  // how many items are commands
	Cut      bool // reading stopped at the command limit
}

// Options on each command: which keys it takes and which are required.
type spec struct {
	target   string // "email", "space", "token", "" (none) or "name-email" (add member's two forms)
	opts     []string
	required []string
	words    []string // bare words allowed after the target
}

// spaceOpts are the options of add space and update space. digest_day and
// digest_time override the network's digest schedule for one space;
// language is the language of its managers' replies and digests.
// free_days, notice_days, hours and directions are its terms for visitors.
var spaceOpts = []string{"name", "city", "country", "tz", "terms", "digest_day", "digest_time", "language",
	"free_days", "notice_days", "hours", "directions"}

var specs = map[string]spec{
	"add member":     {target: "name-email", opts: []string{"name", "status", "until", "space"}},
	"update member":  {target: "email", opts: []string{"name", "status", "until", "email", "space"}},
	"remove member":  {target: "email", opts: []string{"space"}},
	"list members":   {opts: []string{"status", "space"}},
	"import members": {opts: []string{"space"}, words: []string{"replace"}},
	"verify":         {target: "email", opts: []string{"space"}},
	"history":        {target: "email", opts: []string{"space"}},
	"confirm":        {target: "token"},
	"help":           {},
	"add space":      {target: "space", opts: spaceOpts, required: []string{"name"}},
	"update space":   {target: "space", opts: spaceOpts},
	"remove space":   {target: "space"},
	"add manager":    {target: "email", opts: []string{"space"}, required: []string{"space"}},
	"remove manager": {target: "email", opts: []string{"space"}, required: []string{"space"}},
	"list spaces":    {},
	// The visa exchange: members, hosts, and anyone about their own data.
	"spaces":         {opts: []string{"city", "country"}},
	"terms":          {target: "space"},
	"visit":          {target: "space-date", opts: []string{"days", "note"}},
	"decline visit":  {target: "token", opts: []string{"reason"}},
	"my data":        {},
	"forget me":      {},
	"confirm roster": {opts: []string{"space"}},
}

// verbs are the first words that make a line a command line. A verb that
// needs an object ("add", "list" …) takes one of these.
var verbs = map[string][]string{
	"add":     {"member", "space", "manager"},
	"update":  {"member", "space"},
	"remove":  {"member", "space", "manager"},
	"list":    {"members", "spaces"},
	"import":  {"members"},
	"verify":  nil,
	"history": nil,
	"confirm": nil,
	"help":    nil,
	"spaces":  nil,
	"terms":   nil,
	"visit":   nil,
	"decline": {"visit"},
	"my":      {"data"},
	"forget":  {"me"},
}

// phraseVerbs are first words that make a command only together with
// their object ("my data", "forget me", "decline visit"): a line such as
// "My name is Alex" is not a command at all, rather than a command with
// the wrong object.
var phraseVerbs = map[string]bool{"my": true, "forget": true, "decline": true}

// objectAliases lets "add members" or "list member" mean the obvious thing.
var objectAliases = map[string]string{
	"member": "member", "members": "member",
	"space": "space", "spaces": "space",
	"manager": "manager", "managers": "manager",
	"visit": "visit", "visits": "visit",
	"data": "data", "me": "me",
}

// Parse reads the subject and the body lines of a message (the sender's own
// lines: quotes and signatures already cut by the message reader) and returns
// the commands and the ignored lines. Reading stops at a line "end", "thanks"
// or "quit", and after maxCommands commands. The subject counts as a command
// line only when it parses as a command and was not forwarded.
func Parse(subject string, lines []string, maxCommands int) Script {
	var s Script
	if c := subjectCommand(subject); c != nil {
		s.Items = append(s.Items, Item{Line: c.Line, Command: c})
		s.Commands++
	}
	for _, raw := range lines {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if IsStopLine(line) {
			break
		}
		c := ParseLine(line)
		if c == nil {
			s.Items = append(s.Items, Item{Line: line})
			continue
		}
		if maxCommands > 0 && s.Commands >= maxCommands {
			s.Cut = true
			break
		}
		s.Items = append(s.Items, Item{Line: line, Command: c})
		s.Commands++
	}
	return s
}

// IsStopLine reports whether a line ends the commands: "end", "thanks",
// "thank you" or "quit", in any case, with trailing punctuation allowed.
func IsStopLine(line string) bool {
	w := strings.ToLower(strings.TrimRightFunc(strings.TrimSpace(line), func(r rune) bool {
		return unicode.IsPunct(r) || unicode.IsSpace(r)
	}))
	switch w {
	case "end", "thanks", "thank you", "quit":
		return true
	}
	return false
}

// subjectCommand is the command a Subject holds, or nil. A forwarded
// subject ("Fwd: remove member …", also "Re: Fwd: …") is the words of
// whoever wrote the forwarded message, never a command of the sender's.
func subjectCommand(subject string) *Command {
	if isForwardedSubject(subject) {
		return nil
	}
	c := ParseLine(StripReplyPrefixes(subject))
	if c == nil || c.Err != "" {
		return nil
	}
	return c
}

// StripReplyPrefixes removes the reply prefixes ("Re:", "AW:", "SV:" …,
// also counted as "Re[2]:") and "[tag]" markers that mail clients and
// gateways put before a subject, so it can be read as a command. It stops
// at a forward prefix ("Fwd:", "WG:" …), which stays: what follows one is
// not the sender's subject, and a line starting "Fwd:" never parses.
func StripReplyPrefixes(subject string) string {
	s := strings.TrimSpace(subject)
	for {
		word, rest, ok := cutSubjectPrefix(s)
		if !ok || forwardPrefixes[word] {
			return s
		}
		s = strings.TrimSpace(rest)
	}
}

// isForwardedSubject reports whether a forward prefix stands anywhere in
// the chain of prefixes and tags before the subject ("Fwd:", "Re: Fwd:",
// "[EXT] WG:"), or Pine's "(fwd)" ends it.
func isForwardedSubject(subject string) bool {
	s := strings.TrimSpace(subject)
	if strings.HasSuffix(strings.ToLower(s), "(fwd)") {
		return true
	}
	for {
		word, rest, ok := cutSubjectPrefix(s)
		if !ok {
			return false
		}
		if forwardPrefixes[word] {
			return true
		}
		s = rest
	}
}

// Subject prefixes, lowercased, as mail clients write them in their
// languages (Outlook, Thunderbird, Apple Mail, Gmail and the list at
// https://en.wikipedia.org/wiki/List_of_email_subject_abbreviations).
// "VS" is a reply in Finnish (Vastaus) but a forward in Danish and
// Norwegian (Videresendt): it counts as a forward, since reading a
// forwarded subject as a command is the mistake that costs.
var (
	replyPrefixes = map[string]bool{
		"re": true, "aw": true, "antw": true, "antwort": true, "sv": true, "svar": true,
		"r": true, "rif": true, "res": true, "odp": true, "odg": true, "ynt": true, "vá": true,
		"ats": true, "atb": true, "bls": true, "απ": true, "σχετ": true, "回复": true, "答复": true,
		"回覆": true, "השב": true,
	}
	forwardPrefixes = map[string]bool{
		"fw": true, "fwd": true, "wg": true, "tr": true, "rv": true, "enc": true, "i": true,
		"doorst": true, "pd": true, "vb": true, "vl": true, "vs": true, "fs": true, "trs": true,
		"ilt": true, "i̇lt": true, "tov": true, "prosl": true, "posr": true, "pers": true,
		"πρθ": true, "转发": true, "轉寄": true, "轉發": true, "הועבר": true,
		"forward": true, "forwarded": true, "weitergeleitet": true, "doorgestuurd": true,
		"inoltro": true, "inoltrato": true, "encaminhado": true, "reenviado": true,
		"transféré": true, "videresendt": true, "vidarebefordrat": true, "välitetty": true,
	}
)

// cutSubjectPrefix splits one leading prefix off s: a "[tag]" (word "")
// or a known reply or forward word before a colon, with an optional
// counter ("Re[2]:", "Re(2):", "Re^2:") and the full-width colon East Asian
// clients write. ok is false when s starts with neither.
func cutSubjectPrefix(s string) (word, rest string, ok bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return "", s[i+1:], true
		}
		return "", s, false
	}
	i := strings.IndexAny(s, ":\uff1a")
	if i <= 0 || i > 40 {
		return "", s, false
	}
	head := strings.ToLower(strings.TrimSpace(s[:i]))
	if j := strings.IndexAny(head, "[(^"); j > 0 {
		head = strings.TrimSpace(head[:j]) // the counter
	}
	if !replyPrefixes[head] && !forwardPrefixes[head] {
		return "", s, false
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return head, s[i+size:], true
}

// ParseLine parses one line. It returns nil when the line does not start
// with a command keyword, and a Command with Err set when it does but its
// arguments do not fit.
func ParseLine(line string) *Command {
	line = strings.TrimSpace(normalizeQuotes(line))
	tokens, err := tokenize(stripMailto(line))
	if len(tokens) == 0 {
		return nil
	}
	verb := strings.TrimSuffix(strings.ToLower(tokens[0].word), ":")
	objects, isVerb := verbs[verb]
	if !isVerb || tokens[0].key != "" {
		return nil
	}
	c := &Command{Line: line, Opts: map[string]string{}}
	rest := tokens[1:]
	name := verb
	if phraseVerbs[verb] && (len(rest) == 0 || rest[0].key != "" || !contains(objects, objectAliases[strings.ToLower(rest[0].word)])) {
		return nil
	}
	if verb == "confirm" && len(rest) > 0 && rest[0].key == "" && strings.EqualFold(rest[0].word, "roster") {
		name, rest = "confirm roster", rest[1:]
	}
	if objects != nil {
		if len(rest) == 0 || rest[0].key != "" {
			c.Name = verb
			c.refuse(templates.Msg("%q needs one of: %s", verb, verbList(verb, objects)))
			return c
		}
		obj := objectAliases[strings.ToLower(rest[0].word)]
		if obj == "" || !contains(objects, obj) && !contains(objects, obj+"s") {
			c.Name = verb
			c.refuse(templates.Msg("%q needs one of: %s", verb, verbList(verb, objects)))
			return c
		}
		if contains(objects, obj+"s") {
			obj += "s"
		}
		name = verb + " " + obj
		rest = rest[1:]
	}
	c.Name = name
	if err != nil {
		c.refuse(problem(err))
		return c
	}
	if verb == "help" {
		return c // "help" with anything after it is still help
	}
	if why := fill(c, specs[name], rest); !why.IsZero() {
		c.refuse(why)
	}
	return c
}

// fill reads the arguments of a command according to its spec and returns
// what is wrong with them, or the zero Message.
func fill(c *Command, sp spec, rest []token) templates.Message {
	// Options (key=value) may stand anywhere; the rest are positional words.
	var words []string
	for _, t := range rest {
		if t.key == "" {
			words = append(words, t.word)
			continue
		}
		if !contains(sp.opts, t.key) {
			if len(sp.opts) == 0 {
				return templates.Msg("%s takes no options (%s=)", c.Name, t.key)
			}
			return templates.Msg("unknown option %s= for %s (known: %s)", t.key, c.Name, optList(sp.opts))
		}
		if _, dup := c.Opts[t.key]; dup {
			return templates.Msg("%s= is given twice", t.key)
		}
		c.Opts[t.key] = t.word
	}
	switch sp.target {
	case "name-email":
		if len(words) == 0 {
			return templates.Msg("%s needs an address, e.g. %s alice@example.org name=\"Alice Smith\"", c.Name, c.Name)
		}
		last := words[len(words)-1]
		if strings.HasPrefix(last, "<") && strings.HasSuffix(last, ">") {
			// add member Full Name <EMAIL>
			if len(words) > 1 {
				if _, has := c.Opts["name"]; has {
					return templates.Msg("give the name either before <address> or as name=, not both")
				}
				c.Opts["name"] = strings.Join(words[:len(words)-1], " ")
			}
			words = []string{last}
		}
		if len(words) != 1 {
			return templates.Msg("%s takes one address; quote names with spaces: name=\"Alice Smith\"", c.Name)
		}
		addr, err := NormalizeAddress(words[0])
		if err != nil {
			return problem(err)
		}
		c.Target = addr
		words = nil
	case "email":
		if len(words) == 0 {
			return templates.Msg("%s needs an address", c.Name)
		}
		addr, err := NormalizeAddress(words[0])
		if err != nil {
			return problem(err)
		}
		c.Target, words = addr, words[1:]
	case "space":
		if len(words) == 0 {
			return templates.Msg("%s needs a space id", c.Name)
		}
		id, err := NormalizeSpaceID(words[0])
		if err != nil {
			return problem(err)
		}
		c.Target, words = id, words[1:]
	case "token":
		if len(words) == 0 {
			return templates.Msg("%s needs the token from the bot's message", c.Name)
		}
		c.Target, words = words[0], words[1:]
	case "space-date":
		// visit SPACE YYYY-MM-DD: the date is the first word after the
		// space, kept in Opts["date"].
		if len(words) < 2 {
			return templates.Msg("%s needs a space id and a date, e.g. %s indyhall 2027-03-31", c.Name, c.Name)
		}
		id, err := NormalizeSpaceID(words[0])
		if err != nil {
			return problem(err)
		}
		date, err := NormalizeDate(words[1])
		if err == nil && date == "" {
			err = templates.Errorf("%q is not a valid date: write YYYY-MM-DD, e.g. 2027-03-31", truncate(words[1], 40))
		}
		if err != nil {
			return problem(err)
		}
		c.Target, c.Opts["date"], words = id, date, words[2:]
	}
	for _, w := range words {
		if !contains(sp.words, strings.ToLower(w)) {
			return templates.Msg("unexpected %q after %s (values with spaces need quotes: name=\"Alice Smith\")", w, c.Name)
		}
		c.Words = append(c.Words, strings.ToLower(w))
	}
	for _, k := range sp.required {
		if c.Opts[k] == "" {
			return templates.Msg("%s needs %s=", c.Name, k)
		}
	}
	return validateOpts(c)
}

// validateOpts checks option values, normalising them in place.
func validateOpts(c *Command) templates.Message {
	for k, v := range c.Opts {
		var err error
		switch k {
		case "status":
			v = strings.ToLower(v)
			if v != "active" && v != "inactive" {
				return templates.Msg("status= must be active or inactive, not %q", v)
			}
		case "until":
			v, err = NormalizeDate(v)
		case "email":
			v, err = NormalizeAddress(v)
		case "space":
			v, err = NormalizeSpaceID(v)
		case "tz":
			err = checkTimeZone(v)
		case "digest_day":
			v, err = normalizeWeekday(v)
		case "digest_time":
			v, err = normalizeClock(v)
		case "language":
			v, err = normalizeLanguage(v)
		case "free_days":
			v, err = normalizeFreeDays(v)
		case "notice_days":
			v, err = normalizeCount(k, v, 0, maxNoticeDays)
		case "days":
			v, err = normalizeCount(k, v, 1, maxVisitDays)
		case "name", "city", "country", "terms", "hours", "directions", "note", "reason":
			err = checkText(k, v)
		}
		if err != nil {
			return problem(err)
		}
		c.Opts[k] = v
	}
	return templates.Message{}
}

// token is one word of a command line, or one key=value option.
type token struct {
	key  string // lowercased option name; "" for a bare word
	word string // the word, or the option's value, with quotes removed
}

// tokenize splits a line into words and key=value options. Double quotes
// group words with spaces; a backslash escapes a quote inside them.
func tokenize(line string) ([]token, error) {
	var (
		out     []token
		cur     strings.Builder
		inQuote bool
		started bool
	)
	flush := func() {
		if !started {
			return
		}
		w := cur.String()
		t := token{word: w}
		if i := strings.IndexByte(w, '='); i > 0 && isOptionKey(w[:i]) {
			t = token{key: strings.ToLower(w[:i]), word: w[i+1:]}
		}
		out = append(out, t)
		cur.Reset()
		started = false
	}
	runes := []rune(line)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case inQuote && r == '\\' && i+1 < len(runes) && runes[i+1] == '"':
			cur.WriteRune('"')
			i++
		case r == '"':
			inQuote = !inQuote
			started = true
		case !inQuote && unicode.IsSpace(r):
			flush()
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if inQuote {
		flush()
		return out, templates.Errorf("a quote is not closed")
	}
	flush()
	return out, nil
}

// isOptionKey reports whether s can be an option name (letters and "_").
func isOptionKey(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_') {
			return false
		}
	}
	return true
}

// normalizeQuotes turns typographic quotes (pasted from Word or sent by
// Outlook and Apple Mail) into ASCII ones.
func normalizeQuotes(s string) string {
	return strings.NewReplacer("\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u00ab", `"`, "\u00bb", `"`,
		"\u2018", "'", "\u2019", "'", "\u00a0", " ").Replace(s)
}

// stripMailto drops the "<mailto:…>" that Outlook's plain text puts after
// every address it turned into a link.
func stripMailto(s string) string {
	for {
		i := strings.Index(strings.ToLower(s), "<mailto:")
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return s[:i]
		}
		s = s[:i] + s[i+j+1:]
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func verbList(verb string, objects []string) string {
	out := make([]string, len(objects))
	for i, o := range objects {
		out[i] = verb + " " + o
	}
	return strings.Join(out, ", ")
}

func optList(opts []string) string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o + "="
	}
	return strings.Join(out, " ")
}
