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
		{line: "add foo", name: "add", err: "add member"},
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
		{line: "verify bob@example.org please", name: "verify", err: "unexpected"},
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
		"Sent from my iPhone", "addmember alice@example.org", "name=Alice", "",
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
