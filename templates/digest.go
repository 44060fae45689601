package templates

// DigestMember is one line of a roster in a digest.
type DigestMember struct {
	Email  string
	Name   string
	Status string // active, inactive, or expired (active but past its end date), in the reader's words
	State  string // the same as the English value ("active", "inactive", "expired"), for the HTML's colours
	Until  string // YYYY-MM-DD, or "" for open-ended
	Ends   string // Until as the reader's language writes a date, or ""
}

// DigestTurnedAway is a check at another space that found no membership,
// of an address that was a member of this space: a membership that lapsed
// by mistake shows here first.
type DigestTurnedAway struct {
	When    string
	Visitor string
	Name    string // as this roster has it, if it still does
	Host    string // the space that checked
	Status  string // on this roster now ("inactive", "expired" in the reader's words), or "" when removed from it
}

// DigestVisitor is one person's visits in a digest's period, on one line:
// a visitor the space hosted, or one of its members visiting elsewhere.
type DigestVisitor struct {
	Visitor  string
	Name     string // the name a roster gives them, if one does
	Where    string // a visitor's home space(s); for a member, the spaces that verified them
	Visits   int    // verifications in the period
	Last     string // the last one, local time
	Verified bool   // some check found a membership (a member visiting elsewhere always)
}

// WeekBar is one week of a space's visits chart, in visitor days.
type WeekBar struct {
	Week         string // its first day, as the reader's language writes a date
	Hosted, Sent int
}

// DigestChange is one audit record in a digest.
type DigestChange struct {
	When   string // local time of the space (or of the network digest)
	Actor  string // who made the change
	Space  string // the space's label; set in the network digest only
	Text   string // what changed, e.g. "updated member a@b.example"
	Detail string // e.g. "status active → inactive; until none → 2026-12-31"
}

// DigestVisit is one verification in a digest.
type DigestVisit struct {
	When     string
	Visitor  string
	Home     string // the visitor's home space, or "" when not verified
	Host     string // the space (or, where unknown, the manager) that checked
	Verified bool
}

// DigestAdd is one of a space's active members added to another space's
// roster (or an address of that space's renamed to theirs).
type DigestAdd struct {
	When   string
	Member string // the address
	Space  string // the other space's label
	Actor  string // who added them
}

// DigestCounts are a roster's numbers.
type DigestCounts struct {
	Total      int
	Active     int
	Inactive   int // set inactive
	Expired    int // still marked active but past their end date
	EndingSoon int // active, ending within EndingDays
}

// Reciprocity is a space's visa balance in visitor days: days visitors from
// other spaces used there (hosted) and days its members used at other
// spaces (sent), this month and this year in the space's calendar.
type Reciprocity struct {
	Month, Year            string // "2026-11", "2026"
	HostedMonth, SentMonth int
	HostedYear, SentYear   int
}

// DigestData is what one space's weekly digest shows its managers: first
// what they act on (the roster's freshness, memberships ending, former
// members turned away elsewhere, members added elsewhere), then the visits,
// then the log of changes and the roster.
type DigestData struct {
	BotName, BotAddress string
	SpaceID, SpaceName  string
	Manager             string // the recipient
	Title               string // e.g. "week of 30 Nov 2026"
	OnRequest           bool   // sent with `mailbot digest --now`, not on schedule
	From, To            string // the window of changes and verifications, local time
	TimeZone            string
	Today               string // the space's local date, as the reader's language writes it
	EndingDays          int    // "ending within N days"
	Counts              DigestCounts
	Members             []DigestMember
	Changes             []DigestChange
	// Visitors: the people this space's managers checked, verified or
	// not, one line each. Visiting: this space's members verified at
	// other spaces, one line each. The counts are of checks.
	Visitors         []DigestVisitor
	Visiting         []DigestVisitor
	SentCount        int
	HostedCount      int // verified visitors from other spaces
	NotVerifiedCount int // checks at this space that found no membership
	EndingSoon       []DigestMember
	// TurnedAway: checks at other spaces that found no membership, of
	// addresses that were members of this space.
	TurnedAway []DigestTurnedAway
	// Weeks: visitor days hosted and sent in each of the last weeks, the
	// oldest first; WeeksMost is the largest of their numbers (the
	// chart's scale).
	Weeks     []WeekBar
	WeeksMost int
	// AddedElsewhere: this space's active members that another space added
	// to its roster in the period.
	AddedElsewhere []DigestAdd
	Attachment     string // the roster CSV's file name
	Reciprocity    Reciprocity
	// RosterStale: the roster was neither confirmed nor changed since
	// RosterFresh (a date as the reader's language writes it), more than
	// RosterConfirmDays ago;
	// RosterVeryStale: more than twice that, and hosts are told so.
	RosterStale, RosterVeryStale bool
	RosterFresh                  string
	RosterConfirmDays            int
}

// NetworkSpace is one space's line in the network digest.
type NetworkSpace struct {
	ID, Name      string
	City, Country string
	TimeZone      string
	Managers      int
	Members       int
	Active        int
	Changes       int // in the window
	Hosted        int // verified visitors from other spaces, in the window
	Sent          int // members verified at other spaces, in the window
	// The year's visitor days, hosted and sent, and their balance
	// (hosted minus sent): who gives more to the network than it takes.
	HostedYear, SentYear, Balance int
}

// StaleRoster is a space whose roster was neither confirmed nor changed
// for more than twice digest.roster_confirm_days.
type StaleRoster struct {
	ID, Name string
	Since    string // YYYY-MM-DD
}

// NetworkDigestData is what the network admins' weekly digest shows.
type NetworkDigestData struct {
	BotName, BotAddress  string
	Admin                string // the recipient
	Title                string
	OnRequest            bool
	From, To             string
	TimeZone             string
	Spaces               []NetworkSpace
	TotalMembers         int
	TotalActive          int
	Changes              []DigestChange
	ChangeCount          int // all changes in the window; Changes may hold fewer
	ChangesOmitted       int
	Verifications        []DigestVisit
	VerificationCount    int
	VerifiedCount        int
	NotVerifiedCount     int
	VerificationsOmitted int
	Year                 string // of the balances
	// Stale are the rosters unconfirmed for more than StaleDays.
	Stale     []StaleRoster
	StaleDays int
}

// Digest renders a space's weekly digest as text and HTML.
func (l *Lang) Digest(d DigestData) (text, html string, err error) {
	return l.render("digest", d)
}

// NetworkDigest renders the network admins' weekly digest as text and HTML.
func (l *Lang) NetworkDigest(d NetworkDigestData) (text, html string, err error) {
	return l.render("network-digest", d)
}

// Digest renders a space's weekly digest in English.
func (s *Set) Digest(d DigestData) (text, html string, err error) { return s.en.Digest(d) }

// NetworkDigest renders the network digest in English.
func (s *Set) NetworkDigest(d NetworkDigestData) (text, html string, err error) {
	return s.en.NetworkDigest(d)
}

// ToAct reports whether the digest has anything its managers act on.
func (d DigestData) ToAct() bool {
	return d.RosterStale || len(d.EndingSoon) > 0 || len(d.TurnedAway) > 0 || len(d.AddedElsewhere) > 0
}
