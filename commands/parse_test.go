package commands

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		line   string
		name   string
		target string
		opts   map[string]string
		words  []string
		err    string // substring; "" = no error
	}{
		{line: "add member alice@example.org", name: "add member", target: "alice@example.org"},
		{line: `ADD Member Alice@Example.ORG name="Alice Smith" status=inactive until=2027-03-31`, name: "add member",
			target: "alice@example.org", opts: map[string]string{"name": "Alice Smith", "status": "inactive", "until": "2027-03-31"}},
		{line: "add member Alice Smith <alice@example.org>", name: "add member", target: "alice@example.org",
			opts: map[string]string{"name": "Alice Smith"}},
		{line: "add member Zoë Müller <zoe@example.de> until=2027-01-01", name: "add member", target: "zoe@example.de",
			opts: map[string]string{"name": "Zoë Müller", "until": "2027-01-01"}},
		{line: "add member “Alice Smith” <alice@example.org>", name: "add member", target: "alice@example.org",
			opts: map[string]string{"name": "Alice Smith"}},
		{line: `add member alice@example.org name=“Alice Smith”`, name: "add member", target: "alice@example.org",
			opts: map[string]string{"name": "Alice Smith"}},
		{line: "add members bob@example.org", name: "add member", target: "bob@example.org"},
		{line: "add member alice@example.org name=Alice Smith", name: "add member", err: "quote"},
		{line: "add member", name: "add member", err: "needs an address"},
		{line: "add member not-an-address", name: "add member", err: "not a valid email address"},
		{line: "add member a@b", name: "add member", err: "dot"},
		{line: "add member alice@example.org status=gone", name: "add member", err: "active or inactive"},
		{line: "add member alice@example.org until=31/12/2027", name: "add member", err: "YYYY-MM-DD"},
		{line: "add member alice@example.org until=2027-02-30", name: "add member", err: "YYYY-MM-DD"},
		{line: "add member alice@example.org colour=red", name: "add member", err: "unknown option colour="},
		{line: `add member alice@example.org name="Alice`, name: "add member", err: "quote is not closed"},
		{line: "add member alice@example.org name=a name=b", name: "add member", err: "twice"},
		{line: "add alice@example.org", name: "add", err: "add member"},
		{line: "add", name: "add", err: "needs one of"},
		{line: "update member alice@example.org email=NEW@example.org status=ACTIVE", name: "update member",
			target: "alice@example.org", opts: map[string]string{"email": "new@example.org", "status": "active"}},
		{line: "update member alice@example.org until=none", name: "update member", target: "alice@example.org",
			opts: map[string]string{"until": ""}},
		{line: "remove member bob@example.org.", name: "remove member", target: "bob@example.org"},
		{line: "remove member bob@example.org space=IndyHall", name: "remove member", target: "bob@example.org",
			opts: map[string]string{"space": "indyhall"}},
		{line: "verify bob@example.org", name: "verify", target: "bob@example.org"},
		{line: "Verify: bob@example.org", name: "verify", target: "bob@example.org"},
		{line: "verify bob@example.org<mailto:bob@example.org>", name: "verify", target: "bob@example.org"},
		{line: "verify <bob@example.org>", name: "verify", target: "bob@example.org"},
		{line: "verify mailto:bob@example.org", name: "verify", target: "bob@example.org"},
		{line: "verify bob@example.org please", name: "verify", target: "bob@example.org"},
		{line: "verify bob@example.org tomorrow", name: "verify", err: "unexpected"},
		{line: "verify Jonas Müller <jonas@betahaus.test>", name: "verify", target: "jonas@betahaus.test"},
		{line: "verify jonas@betahaus.test <jonas@betahaus.test>", name: "verify", err: "unexpected"},
		{line: "verify", name: "verify", err: "needs an address"},
		{line: "list members", name: "list members"},
		{line: "list members status=inactive", name: "list members", opts: map[string]string{"status": "inactive"}},
		{line: "list spaces", name: "list spaces"},
		{line: "list", name: "list", err: "needs one of"},
		{line: "import members replace", name: "import members", words: []string{"replace"}},
		{line: "history bob@example.org", name: "history", target: "bob@example.org"},
		{line: "confirm 3F9A-77QX", name: "confirm", target: "3F9A-77QX"},
		{line: "help", name: "help"},
		{line: "HELP me please", name: "help"},
		{line: `add space indyhall name="Indy Hall" city=Philadelphia country=US tz=America/New_York terms="Members of any Visa space, weekdays"`,
			name: "add space", target: "indyhall", opts: map[string]string{"name": "Indy Hall", "city": "Philadelphia",
				"country": "US", "tz": "America/New_York", "terms": "Members of any Visa space, weekdays"}},
		{line: "add space indyhall", name: "add space", err: "needs name="},
		{line: `add space indy/hall name=x`, name: "add space", err: "not a valid space id"},
		{line: `add space x name=X tz=Mars/Olympus`, name: "add space", err: "not a time zone"},
		{line: `update space indyhall tz=Europe/Paris`, name: "update space", target: "indyhall", opts: map[string]string{"tz": "Europe/Paris"}},
		{line: "remove space indyhall", name: "remove space", target: "indyhall"},
		{line: "update space indyhall digest_day=Wed digest_time=25:00", name: "update space", err: "not a time of day"},
		{line: "update space indyhall digest_day=Wed digest_time=09:30", name: "update space", target: "indyhall",
			opts: map[string]string{"digest_day": "wednesday", "digest_time": "09:30"}},
		{line: "update space indyhall digest_day=someday", name: "update space", err: "not a day of the week"},
		{line: "update space indyhall digest_day=default", name: "update space", target: "indyhall", opts: map[string]string{"digest_day": ""}},
		{line: "add manager mgr@indyhall.test space=indyhall", name: "add manager", target: "mgr@indyhall.test",
			opts: map[string]string{"space": "indyhall"}},
		{line: "add manager mgr@indyhall.test", name: "add manager", err: "needs space="},
		{line: "remove manager mgr@indyhall.test space=indyhall", name: "remove manager", target: "mgr@indyhall.test",
			opts: map[string]string{"space": "indyhall"}},
		{line: "add member " + strings.Repeat("a", 70) + "@example.org", name: "add member", err: "too long"},
		{line: `add member x@example.org name="` + strings.Repeat("n", 201) + `"`, name: "add member", err: "longer than"},
		{line: "add member x@example.org name=\"a\x00b\"", name: "add member", err: "control character"},
	} {
		t.Run(c.line, func(t *testing.T) {
			got := ParseLine(c.line)
			if got == nil {
				t.Fatalf("ParseLine(%q) = nil, want a command", c.line)
			}
			if got.Name != c.name {
				t.Errorf("Name = %q, want %q", got.Name, c.name)
			}
			if c.err != "" {
				if !strings.Contains(got.Err, c.err) {
					t.Errorf("Err = %q, want it to contain %q", got.Err, c.err)
				}
				return
			}
			if got.Err != "" {
				t.Fatalf("Err = %q, want none", got.Err)
			}
			if got.Target != c.target {
				t.Errorf("Target = %q, want %q", got.Target, c.target)
			}
			want := c.opts
			if want == nil {
				want = map[string]string{}
			}
			if !reflect.DeepEqual(got.Opts, want) {
				t.Errorf("Opts = %v, want %v", got.Opts, want)
			}
			if !reflect.DeepEqual(got.Words, c.words) {
				t.Errorf("Words = %v, want %v", got.Words, c.words)
			}
		})
	}
}

func TestParseLineNotACommand(t *testing.T) {
	for _, line := range []string{
		"Hi bot,", "Hello!", "Please add Alice for me", "Best regards", "Alex Hillman", "Indy Hall | Philadelphia",
		"Sent from my iPhone", "addmember alice@example.org", "name=Alice", "", "add foo",
	} {
		if c := ParseLine(line); c != nil {
			t.Errorf("ParseLine(%q) = %+v, want nil (not a command)", line, c)
		}
	}
}

func TestParseScript(t *testing.T) {
	lines := []string{
		"Hi there,",
		"",
		"add member alice@example.org name=\"Alice Smith\"",
		"  verify bob@example.org  ",
		"add member oops",
		"Thanks!",
		"remove member alice@example.org",
	}
	s := Parse("Re: AW: verify carol@example.org", lines, 100)
	var got []string
	for _, it := range s.Items {
		if it.Command == nil {
			got = append(got, "ignored: "+it.Line)
		} else {
			got = append(got, it.Command.Name+" "+it.Command.Target)
		}
	}
	want := []string{
		"verify carol@example.org",
		"ignored: Hi there,",
		"add member alice@example.org",
		"verify bob@example.org",
		"add member ",
		// "Thanks!" stops reading: the remove is not read.
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("items =\n%q\nwant\n%q", got, want)
	}
	if s.Commands != 4 {
		t.Errorf("Commands = %d, want 4", s.Commands)
	}
}

func TestParseSubjectOnlyWhenItParses(t *testing.T) {
	for _, c := range []struct {
		subject string
		want    int
	}{
		{"verify bob@example.org", 1},
		{"Re: Re: verify bob@example.org", 1},
		{"RE[2]: list members", 1},
		{"SV: list spaces", 1},
		{"Members update", 0},
		// Reply prefixes in the clients' languages are read through.
		{"AW: verify bob@example.org", 1},       // German
		{"Antw: verify bob@example.org", 1},     // Dutch
		{"R: verify bob@example.org", 1},        // Italian
		{"RIF: verify bob@example.org", 1},      // Italian
		{"RES: verify bob@example.org", 1},      // Portuguese (Brazil)
		{"Odp: verify bob@example.org", 1},      // Polish
		{"Re : verify bob@example.org", 1},      // French spacing
		{"Re(3): verify bob@example.org", 1},    // a counter
		{"回复：verify bob@example.org", 1},        // Chinese, full-width colon
		{"[EXT] Re: verify bob@example.org", 1}, // a gateway's tag
		{"Re: [indyhall] verify bob@example.org", 1},
		// A forward prefix anywhere in the chain: the subject is someone
		// else's words.
		{"Fwd: add member x@example.org", 0},
		{"Fw: remove member x@example.org", 0},
		{"FW: remove member x@example.org", 0},
		{"WG: remove member x@example.org", 0},      // German
		{"TR: remove member x@example.org", 0},      // French
		{"TR : remove member x@example.org", 0},     // French spacing
		{"RV: remove member x@example.org", 0},      // Spanish
		{"I: remove member x@example.org", 0},       // Italian
		{"Enc: remove member x@example.org", 0},     // Portuguese
		{"ENC: remove member x@example.org", 0},     // Portuguese
		{"Doorst: remove member x@example.org", 0},  // Dutch
		{"PD: remove member x@example.org", 0},      // Polish
		{"VB: remove member x@example.org", 0},      // Swedish
		{"VL: remove member x@example.org", 0},      // Finnish
		{"VS: remove member x@example.org", 0},      // Danish and Norwegian forward (a Finnish reply)
		{"转发：remove member x@example.org", 0},       // Chinese
		{"Re: Fwd: remove member x@example.org", 0}, // a reply to a forward
		{"AW: WG: remove member x@example.org", 0},
		{"Re: Re[2]: Fwd: remove member x@example.org", 0},
		{"[EXT] Fwd: remove member x@example.org", 0},
		{"Re: [EXT] FW: remove member x@example.org", 0},
		{"[Fwd: remove member x@example.org]", 0}, // Netscape's forward subject
		{"remove member x@example.org (fwd)", 0},  // Pine's
		{"Fwd:verify bob@example.org", 0},
		{"Fwd: Re: verify bob@example.org", 0},
		{"add some members please", 0}, // a keyword, but does not parse: not an ERROR from the subject
		{"", 0},
	} {
		s := Parse(c.subject, nil, 10)
		if s.Commands != c.want {
			t.Errorf("Parse(subject %q).Commands = %d, want %d", c.subject, s.Commands, c.want)
		}
	}
}

func TestStripReplyPrefixes(t *testing.T) {
	for in, want := range map[string]string{
		"Re: AW: Antw: verify a@x":   "verify a@x",
		"[EXT] Re:  verify a@x":      "verify a@x",
		"Re: Fwd: remove member a@x": "Fwd: remove member a@x", // the forward prefix stays
		"Remove member a@x":          "Remove member a@x",      // "Re" must be a word
		"Re:":                        "",
		"Réunion: lundi":             "Réunion: lundi",
	} {
		if got := StripReplyPrefixes(in); got != want {
			t.Errorf("StripReplyPrefixes(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStopLines(t *testing.T) {
	for _, l := range []string{"end", "END", "Thanks", "thanks!", "Thanks.", "quit", "Thank you!", "end."} {
		if !IsStopLine(l) {
			t.Errorf("IsStopLine(%q) = false", l)
		}
	}
	for _, l := range []string{"endless", "thanks for the help", "verify a@b.c"} {
		if IsStopLine(l) {
			t.Errorf("IsStopLine(%q) = true", l)
		}
	}
}

func TestParseCommandLimit(t *testing.T) {
	lines := make([]string, 0, 30)
	for i := 0; i < 30; i++ {
		lines = append(lines, "verify a@example.org")
	}
	s := Parse("", lines, 25)
	if s.Commands != 25 || !s.Cut {
		t.Errorf("Commands = %d, Cut = %v; want 25, true", s.Commands, s.Cut)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{`add member a@b.co name="x y" until=2027-01-01`, "add member A B <a@b.co>",
		"verify a@b.co", `update member a@b.co email=c@d.ef name="\"q\""`, "add space x name=y tz=Europe/Paris"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c := ParseLine(line)
		if c == nil || c.Err != "" {
			return
		}
		for k, v := range c.Opts {
			if strings.ContainsAny(v, "\r\n") {
				t.Errorf("option %s has a line break: %q", k, v)
			}
		}
	})
}

// Mail is greetings, prose and signatures as much as commands, in the
// languages of the network, and several command words open ordinary
// sentences. A line is a command only when what follows its keyword is the
// command's own; a keyword followed by prose is an ignored line (nil), and
// ERROR is for lines that clearly try to be a command.
func TestParseLineProseAndSignatures(t *testing.T) {
	const ignored = ""
	for _, c := range []struct {
		line string
		want string // the command's name; "ERROR:substring"; ignored
		weak string // the space the line names only if it exists
	}{
		// Greetings and sign-offs, in the four languages.
		{line: "Hi bot,", want: ignored},
		{line: "Hello team!", want: ignored},
		{line: "Bonjour,", want: ignored},
		{line: "Bonjour à tous,", want: ignored},
		{line: "Cordialement,", want: ignored},
		{line: "Bien à vous", want: ignored},
		{line: "Hallo zusammen,", want: ignored},
		{line: "Mit freundlichen Grüßen", want: ignored},
		{line: "Viele Grüße aus Berlin", want: ignored},
		{line: "Hola:", want: ignored},
		{line: "Buenos días,", want: ignored},
		{line: "Saludos cordiales,", want: ignored},
		{line: "Un saludo", want: ignored},
		{line: "Best regards, Alex", want: ignored},
		// Signature lines that start with a command word.
		{line: "Help us grow: https://indyhall.org/refer", want: ignored},
		{line: "Help desk: +49 30 1234567", want: ignored},
		{line: "HELP WANTED - community manager (m/w/d)", want: ignored},
		{line: "List of events: https://betahaus.de/events", want: ignored},
		{line: "List: coworking@lists.example.org", want: "ERROR:needs one of"}, // an address: an attempt
		// The word after visit or terms names a space only if there is one
		// (Execute checks): prose names none, and is an ignored line there.
		{line: "Visit us at 399 Market St, Philadelphia", want: "ERROR:not a valid date", weak: "us"},
		{line: "Visit our website www.lacantine.fr", want: "ERROR:not a valid date", weak: "our"},
		{line: "Visit https://betahaus.de", want: ignored},
		{line: "Visit us!", want: ignored},
		{line: "Terms and conditions apply.", want: "ERROR:unexpected", weak: "and"},
		{line: "Terms: https://indyhall.org/terms", want: ignored},
		{line: "Terms apply.", want: "terms", weak: "apply"},
		{line: "Terms & conditions", want: ignored},
		{line: "Confirm your attendance: https://meetup.com/x", want: ignored},
		{line: "Confirm attendance", want: ignored},
		{line: "Update your preferences: https://example.org/prefs", want: ignored},
		{line: "Update: we moved to Kreuzberg!", want: ignored},
		{line: "Remove me from this list: https://example.org/unsub", want: ignored},
		{line: "Add me on LinkedIn: https://linkedin.com/in/alex", want: ignored},
		{line: "Import & export, since 1998", want: ignored},
		{line: "History of La Cantine: https://lacantine.fr/histoire", want: ignored},
		{line: "Verify your account at https://example.org", want: ignored},
		{line: "Verify with alex@indyhall.test if unsure", want: ignored},
		{line: "Spaces are limited, book now", want: ignored},
		{line: "My data is safe with you?", want: ignored},
		{line: "Forget me not", want: ignored},
		{line: "Decline politely, please.", want: ignored},
		{line: "Visitez notre site : https://lacantine.fr", want: ignored},
		{line: "Besuchen Sie uns: betahaus, Rudi-Dutschke-Str. 23", want: ignored},
		{line: "Visítenos en www.example.es", want: ignored},
		// A keyword alone is an attempt.
		{line: "verify", want: "ERROR:needs an address"},
		{line: "History", want: "ERROR:needs an address"},
		{line: "add", want: "ERROR:needs one of"},
		{line: "confirm", want: "ERROR:needs the token"},
		// Keyword pairs are attempts: prose after them is an ERROR.
		{line: "List members of the board: Alice, Bob", want: "ERROR:unexpected"},
		{line: "add member please", want: "ERROR:needs an address"},
		{line: "decline visit nonsense", want: "decline visit"}, // the executor says no visit waits
		{line: "confirm roster now", want: "ERROR:unexpected"},
		// An address, a key=value or a token shows the attempt.
		{line: "add alice@example.org", want: "ERROR:add member"},
		{line: "verify bob@", want: "ERROR:not a valid email address"},
		{line: "verify space=indyhall", want: "ERROR:needs an address"},
		{line: "spaces in=Berlin", want: "ERROR:unknown option in="},
		{line: "confirm K7QX-4M2P-9R", want: "confirm"},
		{line: "confirm k7qx4m2p9r", want: "confirm"},
		{line: "Confirm K7QX-4M2P-9R now", want: "ERROR:unexpected"},
		{line: "visit indyhall tomorrow", want: "ERROR:not a valid date", weak: "indyhall"},
		{line: "visit indyhall 3/12", want: "ERROR:not a valid date"},
		// The commands, as people write them.
		{line: "help", want: "help"},
		{line: "Help!", want: "help"},
		{line: "help me please", want: "help"},
		{line: "help verify", want: "help"},
		{line: "Hilfe", want: ignored}, // only the English keywords are commands
		{line: "spaces", want: "spaces"},
		{line: "spaces country=DE", want: "spaces"},
		{line: "terms indyhall", want: "terms", weak: "indyhall"},
		{line: "visit indyhall 2026-12-03", want: "visit"},
		{line: "my data", want: "my data"},
		{line: "My data, please.", want: "my data"},
		{line: "forget me", want: "forget me"},
		{line: "Forget me, bitte", want: "forget me"},
		{line: "confirm roster", want: "confirm roster"},
		{line: "decline visit K7QX-4M2P-9R reason=\"we are full\"", want: "decline visit"},
		{line: "list members", want: "list members"},
		{line: "list spaces", want: "list spaces"},
		{line: "history bob@example.org", want: "history"},
		{line: "import members replace", want: "import members"},
		{line: "remove manager a@x.org space=indyhall", want: "remove manager"},
		// Bullets, numbers, "please" and colons.
		{line: "- verify bob@example.org", want: "verify"},
		{line: "* add member alice@example.org", want: "add member"},
		{line: "• remove member bob@example.org", want: "remove member"},
		{line: "·\tremove member bob@example.org", want: "remove member"},
		{line: "1. add member alice@example.org", want: "add member"},
		{line: "2) update member alice@example.org status=inactive", want: "update member"},
		{line: "a) list members", want: "list members"},
		{line: "please add member alice@example.org", want: "add member"},
		{line: "Please, verify bob@example.org", want: "verify"},
		{line: "- Please add member Alice Smith <alice@example.org>", want: "add member"},
		{line: "Bitte verify bob@example.org", want: "verify"},
		{line: "Por favor verify bob@example.org", want: "verify"},
		{line: "S'il vous plaît, verify bob@example.org", want: "verify"},
		{line: "verify bob@example.org, thanks!", want: "verify"},
		{line: "verify bob@example.org merci", want: "verify"},
		{line: "Add member: alice@example.org", want: "add member"},
		{line: "Add Member: Alice Smith <alice@example.org>", want: "add member"},
		{line: "verify: bob@example.org", want: "verify"},
		{line: "verify:bob@example.org", want: "verify"},
		{line: "verify - bob@example.org", want: "verify"},
		{line: "List members:", want: "list members"},
		{line: "- Hello", want: ignored},
		{line: "1. Introduction", want: ignored},
	} {
		got := ParseLine(c.line)
		switch {
		case c.want == ignored:
			if got != nil {
				t.Errorf("ParseLine(%q) = %s (err %q), want an ignored line", c.line, got.Name, got.Err)
			}
			continue
		case got == nil:
			t.Errorf("ParseLine(%q) = nil, want %s", c.line, c.want)
			continue
		case strings.HasPrefix(c.want, "ERROR:"):
			if !strings.Contains(got.Err, strings.TrimPrefix(c.want, "ERROR:")) {
				t.Errorf("ParseLine(%q).Err = %q, want %s", c.line, got.Err, c.want)
			}
		case got.Name != c.want || got.Err != "":
			t.Errorf("ParseLine(%q) = %s (err %q), want %s", c.line, got.Name, got.Err, c.want)
		}
		if got.weakSpace != c.weak {
			t.Errorf("ParseLine(%q) names a space only if it exists: %q, want %q", c.line, got.weakSpace, c.weak)
		}
	}
}

// A command in both the Subject and the body runs once: the Subject counts
// only when it is not the same command as one of the body's.
func TestParseSubjectRepeatedInBody(t *testing.T) {
	for _, c := range []struct {
		subject string
		body    []string
		want    []string // the commands, in order
	}{
		{"help", []string{"help"}, []string{"help "}},
		{"list members", []string{"Hi,", "list members", "Alex"}, []string{"list members "}},
		{"verify bob@example.org", []string{"verify Bob@Example.org"}, []string{"verify bob@example.org"}},
		{"Re: add member Alice <alice@example.org>", []string{`add member alice@example.org name="Alice"`},
			[]string{"add member alice@example.org"}},
		// Not the same command: both run, the Subject first.
		{"verify bob@example.org", []string{"verify carol@example.org"},
			[]string{"verify bob@example.org", "verify carol@example.org"}},
		{"list members", []string{"list members status=inactive"}, []string{"list members ", "list members "}},
		{"add member alice@example.org", []string{"add member alice@example.org status=inactive"},
			[]string{"add member alice@example.org", "add member alice@example.org"}},
		// The body holds none: the Subject is the command.
		{"verify bob@example.org", []string{"Hi, is Bob one of ours?"}, []string{"verify bob@example.org"}},
		// A Subject that does not parse is never a command, so never a repeat.
		{"verify", []string{"verify jonas@betahaus.test"}, []string{"verify jonas@betahaus.test"}},
	} {
		s := Parse(c.subject, c.body, 100)
		var got []string
		for _, it := range s.Items {
			if it.Command != nil {
				got = append(got, it.Command.Name+" "+it.Command.Target)
			}
		}
		if !reflect.DeepEqual(got, c.want) || s.Commands != len(c.want) {
			t.Errorf("Parse(%q, %q) = %q (%d commands), want %q", c.subject, c.body, got, s.Commands, c.want)
		}
	}
	// The Subject takes its place within the limit.
	s := Parse("verify z@example.org", []string{"verify a@example.org", "verify b@example.org", "hello", "verify c@example.org"}, 2)
	if s.Commands != 2 || !s.Cut || len(s.Items) != 2 || s.Items[0].Command.Target != "z@example.org" {
		t.Errorf("Parse past the limit = %+v", s)
	}
}
