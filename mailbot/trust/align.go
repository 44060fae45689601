package trust

import "golang.org/x/net/publicsuffix"

// aligned reports whether an authenticated domain (a DKIM d=) is aligned with
// the From domain under relaxed alignment (RFC 7489 §3.1.1): both have the
// same organizational domain.
func aligned(authDomain, fromDomain string) bool {
	a, f := domainPart(authDomain), domainPart(fromDomain)
	if a == "" || f == "" {
		return false
	}
	return a == f || orgDomain(a) == orgDomain(f)
}

// orgDomain returns the organizational domain (RFC 7489 §3.2): the public
// suffix plus one label. It uses the Public Suffix List compiled into
// golang.org/x/net/publicsuffix, private section included, rather than "the
// last two labels": with the full list, a.github.io and b.github.io, or two
// sites under a free subdomain registry such as eu.org, are different
// organizations, which is the safe answer. A name that is itself a public
// suffix (or malformed) is its own organizational domain. The list is a
// snapshot, refreshed when x/net is updated.
func orgDomain(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}
