// Package commands is the bot's command language: it turns the lines of a
// command email into commands, checks who may run them, and executes them
// against the store. It knows nothing of IMAP, SMTP or bbolt: the daemon hands
// it lines and a storage transaction, and gets back results to put in a reply.
package commands

import (
	"errors"
	"maps"
	"slices"
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
	// weakSpace is set when the line is a command only if a space of this
	// id exists: a single word after terms or visit may be prose ("Terms
	// apply", "Visit us"). Execute lists such a line as ignored when there
	// is no such space.
	weakSpace string
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
// the wrong object. Unlike "add member", such a pair followed by prose
// ("Forget me not") is no command either.
var phraseVerbs = map[string]bool{"my": true, "forget": true, "decline": true}

// objectAliases lets "add members" or "list member" mean the obvious thing.
var objectAliases = map[string]string{
	"member": "member", "members": "member",
	"space": "space", "spaces": "space",
	"manager": "manager", "managers": "manager",
	"visit": "visit", "visits": "visit",
	"data": "data", "me": "me", "roster": "roster",
}

// Parse reads the subject and the body lines of a message (the sender's own
// lines: quotes and signatures already cut by the message reader) and returns
// the commands and the ignored lines. Reading stops at a line "end", "thanks"
// or "quit", and after maxCommands commands. The subject counts as a command
// line only when it parses as a command, was not forwarded, and is not the
// same command as one of the body's: a mail client's Subject "verify a@x"
// above a body "verify a@x" asks once (see Command.Same).
func Parse(subject string, lines []string, maxCommands int) Script {
	var s Script
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
	c := subjectCommand(subject)
	if c == nil || s.has(c) {
		return s
	}
	s.Items = append([]Item{{Line: c.Line, Command: c}}, s.Items...)
	s.Commands++
	if maxCommands > 0 && s.Commands > maxCommands {
		// The subject took a place: the body's last command, and the lines
		// after it, are past the limit.
		last := len(s.Items) - 1
		for s.Items[last].Command == nil {
			last--
		}
		s.Items, s.Commands, s.Cut = s.Items[:last], s.Commands-1, true
	}
	return s
}

// has reports whether the script holds the same command as c.
func (s Script) has(c *Command) bool {
	for _, it := range s.Items {
		if it.Command != nil && it.Command.Same(c) {
			return true
		}
	}
	return false
}

// Same reports whether two lines ask for the same thing: the same command
// on the same target with the same options, however they were written
// ("add member Alice <a@x>" and "add member a@x name=Alice" are the same).
// A line that does not parse is the same as no other.
func (c *Command) Same(o *Command) bool {
	return c.Err == "" && o.Err == "" && c.Name == o.Name && c.Target == o.Target &&
		slices.Equal(c.Words, o.Words) && maps.Equal(c.Opts, o.Opts)
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

// ParseLine parses one line. It returns nil when the line is not a
// command, and a Command with Err set when the line is clearly an attempt at
// one whose arguments do not fit.
//
// What counts as a command. Lines in mail are greetings, prose and
// signatures as often as commands, and several of the command words open
// ordinary sentences ("Help us grow: https://…", "List of events: …",
// "Visit us at 399 Market St"). So a line is a command only when what
// follows its keyword is the command's own arguments:
//
//   - A bullet ("- ", "* ", "• ", "1. ", "2) ") and polite words ("please",
//     "bitte", "por favor", "s'il vous plaît" … before the command, and
//     after it "please", "thanks" …) are not part of the command: "- please
//     add member a@x" is add member. A colon after the keyword is allowed:
//     "Verify: a@x", "Add member: a@x".
//   - A keyword pair ("add member", "list members", "update space", "import
//     members", "decline visit", "confirm roster" …) is always an attempt:
//     its arguments are checked, and any that do not fit are an ERROR.
//     "my data" and "forget me" take nothing after them: followed by words
//     they are prose ("Forget me not").
//   - A keyword alone ("verify", "add") is an attempt, and an ERROR if the
//     command needs more.
//   - A line with a key=value option is an attempt.
//   - Otherwise the first argument must be of the kind the command takes:
//     an address for verify and history (also "Name <address>"), a token
//     for confirm (letters and digits, with a digit, a dash or in capitals,
//     as the bot writes them), a space id for terms and visit. help takes
//     only polite words or command words after it ("help", "help me",
//     "help verify"); spaces takes options only.
//   - The word after terms or visit may be prose ("Terms apply.", "Visit
//     us at 399 Market St"): unless a date follows it, it names a space only
//     if there is one of that id, which Execute checks (weakSpace);
//     otherwise the line is ignored.
//
// Anything else starting with a command word is prose: an ignored line,
// listed as such in the reply, never an ERROR.
func ParseLine(line string) *Command {
	line = strings.TrimSpace(normalizeQuotes(line))
	tokens, err := tokenize(stripMailto(line))
	tokens = trimLeadIn(tokens)
	if len(tokens) == 0 || tokens[0].key != "" {
		return nil
	}
	verb, glued := splitVerb(tokens[0].word)
	if glued != "" {
		// "verify:a@x"
		tokens = append([]token{{word: verb}, {word: glued}}, tokens[1:]...)
	}
	objects, isVerb := verbs[verb]
	if !isVerb {
		return nil
	}
	c := &Command{Line: line, Opts: map[string]string{}}
	rest := dropSeparators(tokens[1:])
	name, pair := verb, false
	switch {
	case phraseVerbs[verb]:
		// "my data", "forget me", "decline visit": the pair is the keyword;
		// "My name is Alex" is no command at all.
		if len(rest) == 0 || rest[0].key != "" || !contains(objects, objectWord(rest[0].word)) {
			return nil
		}
		name, pair, rest = verb+" "+objectWord(rest[0].word), verb == "decline", dropSeparators(rest[1:])
	case verb == "confirm" && len(rest) > 0 && rest[0].key == "" && objectWord(rest[0].word) == "roster":
		name, pair, rest = "confirm roster", true, dropSeparators(rest[1:])
	case objects != nil:
		obj := ""
		if len(rest) > 0 && rest[0].key == "" {
			obj = objectWord(rest[0].word)
		}
		if contains(objects, obj+"s") {
			obj += "s"
		}
		if obj == "" || !contains(objects, obj) {
			// "add foo": an attempt only when the rest shows one.
			if len(rest) > 0 && !hasOption(rest) && !hasAddress(rest) {
				return nil
			}
			c.Name = verb
			c.refuse(templates.Msg("%q needs one of: %s", verb, verbList(verb, objects)))
			return c
		}
		name, pair, rest = verb+" "+obj, true, dropSeparators(rest[1:])
	}
	rest = trimPolite(rest)
	c.Name = name
	if name == "help" {
		if !helpWords(rest) {
			return nil // "Help us grow: …"
		}
		return c
	}
	sp := specs[name]
	if !pair {
		attempt, weak := ownArguments(sp, rest)
		if !attempt {
			return nil
		}
		c.weakSpace = weak
	}
	if err != nil {
		c.refuse(problem(err))
		return c
	}
	if why := fill(c, sp, rest); !why.IsZero() {
		c.refuse(why)
	}
	return c
}

// ownArguments reports whether args are a command's own (see ParseLine):
// attempt when they are, or when they show the command was meant; weak is
// the space id a single word after terms or visit would name.
func ownArguments(sp spec, args []token) (attempt bool, weak string) {
	if len(args) == 0 || hasOption(args) {
		return true, ""
	}
	var words []string
	for _, t := range args {
		words = append(words, t.word)
	}
	switch sp.target {
	case "email", "name-email":
		last := words[len(words)-1]
		return looksLikeAddress(words[0]) ||
			strings.HasPrefix(last, "<") && strings.HasSuffix(last, ">") && strings.Contains(last, "@"), ""
	case "token":
		return looksLikeToken(words[0]), ""
	case "space", "space-date":
		// terms SPACE, visit SPACE DATE: a first word that could be a space
		// id is one only if there is such a space (Execute checks), unless
		// a date follows it.
		id, err := NormalizeSpaceID(words[0])
		if err != nil {
			return false, ""
		}
		if sp.target == "space-date" && len(words) > 1 {
			if first, _ := utf8.DecodeRuneInString(words[1]); unicode.IsDigit(first) {
				return true, ""
			}
		}
		return true, id
	}
	return false, "" // spaces, my data …: no words
}

// helpWords reports whether the words after "help" still ask for help:
// none, polite ones ("help me please"), or command words ("help verify").
func helpWords(args []token) bool {
	for _, t := range args {
		w := strings.ToLower(strings.Trim(t.word, ".,:;!?"))
		if t.key != "" || w != "" && w != "me" && w != "us" && !isVerb(w) && !politeSingle[w] {
			return false
		}
	}
	return true
}

func isVerb(w string) bool { _, ok := verbs[w]; return ok }

// splitVerb reads the first word of a line as a command keyword: lowercased,
// without a trailing colon or sentence mark ("Verify:", "Help!"), and split
// where a colon glues it to its argument ("verify:a@x").
func splitVerb(w string) (verb, glued string) {
	w = strings.ToLower(w)
	if i := strings.IndexAny(w, ":"); i > 0 && i < len(w)-1 {
		if _, ok := verbs[w[:i]]; ok {
			return w[:i], w[i+1:]
		}
	}
	return strings.TrimRight(w, ":.,!?"), ""
}

// objectWord is the object of a keyword pair as its canonical name
// ("Members:" is "member"), or "".
func objectWord(w string) string {
	return objectAliases[strings.ToLower(strings.TrimRight(w, ":,"))]
}

// bullets are the list markers a line may start with, as mail clients and
// people write them.
var bullets = map[string]bool{"-": true, "*": true, "•": true, "·": true, "–": true, "—": true, "+": true}

// isBullet reports whether a word is a list marker: a bullet, or a number
// or letter with "." or ")" ("1.", "2)", "a)").
func isBullet(w string) bool {
	if bullets[w] {
		return true
	}
	n := len(w)
	if n < 2 || n > 4 || w[n-1] != '.' && w[n-1] != ')' {
		return false
	}
	head := strings.TrimPrefix(w[:n-1], "(")
	if len(head) == 1 && head[0] >= 'a' && head[0] <= 'z' {
		return true
	}
	for _, r := range head {
		if r < '0' || r > '9' {
			return false
		}
	}
	return head != ""
}

// Polite words around a command, in the languages of the bot's users.
// politeLead may open a line ("please verify …", "bitte verify …"),
// politeTail end it ("verify … please", "… thanks"); each is a sequence of
// lowercase words.
var (
	politeLead = [][]string{{"please"}, {"pls"}, {"plz"}, {"kindly"}, {"bitte"}, {"por", "favor"}, {"svp"},
		{"s'il", "vous", "plaît"}, {"s'il", "vous", "plait"}, {"s'il", "te", "plaît"}}
	politeTail = append(politeLead[:len(politeLead):len(politeLead)],
		[]string{"thanks"}, []string{"thank", "you"}, []string{"thx"}, []string{"danke"}, []string{"gracias"},
		[]string{"merci"})
	// politeSingle are the one-word polite words, for help.
	politeSingle = map[string]bool{"please": true, "pls": true, "plz": true, "bitte": true, "svp": true,
		"thanks": true, "thx": true, "danke": true, "gracias": true, "merci": true}
)

// trimLeadIn drops a bullet and polite words before a command.
func trimLeadIn(tokens []token) []token {
	if len(tokens) > 1 && tokens[0].key == "" && isBullet(tokens[0].word) {
		tokens = tokens[1:]
	}
	for {
		n := politeAt(tokens, politeLead, 0)
		if n == 0 {
			return tokens
		}
		tokens = tokens[n:]
	}
}

// trimPolite drops polite words after a command's arguments.
func trimPolite(tokens []token) []token {
	for {
		cut := 0
		for _, seq := range politeTail {
			if i := len(tokens) - len(seq); i >= 0 && politeAt(tokens, [][]string{seq}, i) == len(seq) {
				cut = len(seq)
				break
			}
		}
		if cut == 0 {
			return tokens
		}
		tokens = tokens[:len(tokens)-cut]
	}
}

// politeAt is the length of the polite sequence among seqs that starts at
// tokens[i], or 0. Punctuation around the words does not matter
// ("Please,", "thanks!").
func politeAt(tokens []token, seqs [][]string, i int) int {
	for _, seq := range seqs {
		if i+len(seq) > len(tokens) {
			continue
		}
		match := true
		for j, w := range seq {
			t := tokens[i+j]
			if t.key != "" || strings.ToLower(strings.Trim(t.word, ".,:;!?")) != w {
				match = false
				break
			}
		}
		if match {
			return len(seq)
		}
	}
	return 0
}

// dropSeparators drops a dash or colon standing alone between a keyword
// and its arguments ("verify - a@x", "add member : a@x").
func dropSeparators(tokens []token) []token {
	for len(tokens) > 0 && tokens[0].key == "" && (tokens[0].word == "-" || tokens[0].word == ":" ||
		tokens[0].word == "–" || tokens[0].word == "—") {
		tokens = tokens[1:]
	}
	return tokens
}

func hasOption(tokens []token) bool {
	return slices.ContainsFunc(tokens, func(t token) bool { return t.key != "" })
}

func hasAddress(tokens []token) bool {
	return slices.ContainsFunc(tokens, func(t token) bool { return t.key == "" && looksLikeAddress(t.word) })
}

// looksLikeAddress reports whether a word is written as an address, valid
// or not: it has an @ after some other character ("@alex" is a handle).
func looksLikeAddress(w string) bool {
	w = strings.Trim(w, "<>()[].,;:!?")
	return strings.IndexByte(w, '@') > 0
}

// looksLikeToken reports whether a word is written as the bot writes its
// tokens (K7QX-4M2P-9R), or retyped from one: letters and digits, with a
// dash, a digit or in capitals, of about a token's length. A word of
// prose ("Confirm attendance") is not one.
func looksLikeToken(w string) bool {
	w = strings.TrimRight(w, ".,;:!?")
	if n := len(tokenKey(w)); n < 4 || n > 2*tokenLen {
		return false
	}
	mark := strings.ToUpper(w) == w
	for _, r := range w {
		switch {
		case r == '-' || r >= '0' && r <= '9':
			mark = true
		case !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'):
			return false
		}
	}
	return mark
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
		if last := words[len(words)-1]; len(words) > 1 && !looksLikeAddress(words[0]) &&
			strings.HasPrefix(last, "<") && strings.HasSuffix(last, ">") {
			// verify Jonas Müller <jonas@x>, as an address book writes it:
			// the name is the reader's, the address is what counts.
			words = []string{last}
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
		case "country":
			v, err = normalizeCountry(c.Name, v)
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
		case "name", "city", "terms", "hours", "directions", "note", "reason":
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
func normalizeQuotes(s string) string { return typographicQuotes.Replace(s) }

// typographicQuotes is built once: a Replacer is safe for concurrent use,
// and building one costs more than most lines it replaces in.
var typographicQuotes = strings.NewReplacer("\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u00ab", `"`, "\u00bb", `"`,
	"\u2018", "'", "\u2019", "'", "\u00a0", " ")

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
