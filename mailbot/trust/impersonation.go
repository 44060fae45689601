package trust

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/emersion/go-message/mail"
)

// addrLike finds address-shaped text in a display name.
var addrLike = regexp.MustCompile(`[^\s<>"'()@,;:]+@[^\s<>"'()@,;:]+\.[^\s<>"'()@,;:]+`)

// Impersonation reports a From that tries to pass for someone else even
// when its own address is authenticated, which mail clients show as the
// other: a display name holding another address ("mgr@indyhall.test"
// <mallory@evil.test>, also when encoded, RFC 2047), or a domain that mixes
// scripts inside one label, as look-alikes do (indyhаll.test with a
// Cyrillic а). Such mail is set aside unanswered, like a forgery.
func Impersonation(h mail.Header) (reason string, ok bool) {
	addr, err := FromAddress(h)
	if err != nil {
		return "", false // Authenticate refuses it anyway
	}
	if list, err := addressParser().ParseList(h.Get("From")); err == nil && len(list) == 1 {
		for _, other := range addrLike.FindAllString(list[0].Name, -1) {
			if canonical(strings.Trim(other, ".")) != addr {
				return fmt.Sprintf("the From display name shows another address (%s) than the sender's (%s)", other, addr), true
			}
		}
	}
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	for _, label := range strings.Split(domain, ".") {
		if mixedScripts(label) {
			return fmt.Sprintf("the From domain %s mixes scripts, as look-alike domains do", domain), true
		}
	}
	return "", false
}

// mixedScripts tells whether a domain label holds letters of more than one
// script (Latin with Cyrillic or Greek, say): no honest name needs that,
// and browsers refuse to show such labels as text for the same reason.
func mixedScripts(label string) bool {
	var seen *unicode.RangeTable
	for _, r := range label {
		if !unicode.IsLetter(r) {
			continue
		}
		var script *unicode.RangeTable
		for _, t := range []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek, unicode.Armenian, unicode.Han, unicode.Arabic, unicode.Hebrew} {
			if unicode.Is(t, r) {
				script = t
				break
			}
		}
		if script == nil {
			continue
		}
		if seen != nil && seen != script {
			return true
		}
		seen = script
	}
	return false
}
