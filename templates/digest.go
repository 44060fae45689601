package templates

// DigestMember is one line of a roster in a digest.
type DigestMember struct {
	Email  string
	Name   string
	Status string // active, inactive, or expired (active but past its end date)
	Until  string // YYYY-MM-DD, or "" for open-ended
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
	Inactive   int // not active today: inactive status or past the end date
	Expired    int // of Inactive, those still marked active but past their end date
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

// DigestData is what one space's weekly digest shows its managers.
type DigestData struct {
	BotName, BotAddress string
	SpaceID, SpaceName  string
	Manager             string // the recipient
	Title               string // e.g. "week of 30 Nov 2026"
	OnRequest           bool   // sent with `mailbot digest --now`, not on schedule
	From, To            string // the window of changes and verifications, local time
	TimeZone            string
	Today               string // YYYY-MM-DD, the space's local date
	EndingDays          int    // "ending within N days"
	Counts              DigestCounts
	Members             []DigestMember
	Changes             []DigestChange
	// Sent: this space's members verified at other spaces. Hosted: the
	// visitors this space's managers checked, verified or not.
	Sent             []DigestVisit
	Hosted           []DigestVisit
	SentCount        int
	HostedCount      int // verified visitors from other spaces
	NotVerifiedCount int // checks at this space that found no membership
	EndingSoon       []DigestMember
	// AddedElsewhere: this space's active members that another space added
	// to its roster in the period.
	AddedElsewhere []DigestAdd
	Attachment     string // the roster CSV's file name
	Reciprocity    Reciprocity
	// RosterStale: the roster was neither confirmed nor changed since
	// RosterFresh (YYYY-MM-DD), more than RosterConfirmDays ago;
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
