package message

import "strings"

// OwnLines returns the lines the sender wrote in this message, trimmed of
// surrounding whitespace, so that a command quoted from an earlier message is
// not carried out twice. Blank lines are kept as "".
//
// The lines end before the first of: a signature separator ("-- ", or "--"
// as clients that strip trailing spaces send it); a quoted line (">"); a
// forwarded or original message marker ("-----Original Message-----",
// "---------- Forwarded message ---------", "Begin forwarded message:", a
// line of underscores); an Outlook reply header ("From:" then "Sent:" and
// "To:" or "Subject:", also in German, French, Spanish, Dutch and Italian).
// An attribution line ("On … wrote:", "Le … a écrit :", "Am … schrieb …:",
// possibly wrapped over two lines) just above where the lines end goes too.
//
// Words such as "end" or "thanks" are left to the command parser.
func OwnLines(text string) []string {
	raw := strings.Split(text, "\n")
	lines := make([]string, len(raw))
	for i, l := range raw {
		lines[i] = strings.TrimSpace(l)
	}
	end := len(lines)
	for i := range lines {
		if endsOwnText(lines, i) {
			end = i
			break
		}
	}
	// Drop an attribution line (or two, when wrapped) above the end, with the
	// blank lines between.
	last := end - 1
	for last >= 0 && lines[last] == "" {
		last--
	}
	switch {
	case last < 0:
	case isAttribution(lines[last]):
		end = last
	case last > 0 && lines[last-1] != "" && isAttribution(lines[last-1]+" "+lines[last]):
		end = last - 1
	}
	return lines[:end]
}

// endsOwnText tells whether lines[i] starts what the sender did not write.
func endsOwnText(lines []string, i int) bool {
	l := lines[i]
	switch {
	case l == "--", strings.HasPrefix(l, ">"):
		return true
	case len(l) >= 10 && strings.Trim(l, "_") == "":
		return true // Outlook's separator
	case strings.HasPrefix(l, "-----") && strings.HasSuffix(l, "-----"):
		return isForwardMarker(strings.Trim(l, "- "))
	case strings.HasSuffix(l, ":"):
		if isForwardMarker(strings.TrimSpace(strings.TrimSuffix(l, ":"))) {
			return true
		}
	}
	return isReplyHeader(lines, i)
}

// isForwardMarker tells the words of a line that introduces an original or
// forwarded message, as Outlook, Gmail, Thunderbird and Apple Mail write it.
func isForwardMarker(s string) bool {
	switch strings.ToLower(s) {
	case "original message", "forwarded message", "begin forwarded message",
		"ursprüngliche nachricht", "weitergeleitete nachricht", "anfang der weitergeleiteten nachricht",
		"message d'origine", "message transféré", "début du message réexpédié",
		"mensaje original", "mensaje reenviado", "mensaje reenviado original",
		"oorspronkelijk bericht", "doorgestuurd bericht",
		"messaggio originale", "messaggio inoltrato":
		return true
	}
	return false
}

// isReplyHeader tells the start of the header block Outlook puts above the
// message it replies to or forwards: "From:", then within a few lines a date
// ("Sent:", "Date:") and a recipient or subject ("To:", "Subject:").
func isReplyHeader(lines []string, i int) bool {
	if headerKey(lines[i]) != "from" {
		return false
	}
	var date, to bool
	for _, l := range lines[i+1 : min(len(lines), i+6)] {
		switch headerKey(l) {
		case "date":
			date = true
		case "to":
			to = true
		}
	}
	return date && to
}

// headerKey names a header line of a quoted message in English whatever its
// language: "from", "date" or "to" (which covers Cc and Subject too).
// "*From:*" is how Gmail writes Outlook's bold field names as text.
func headerKey(l string) string {
	k, _, ok := strings.Cut(l, ":")
	if !ok {
		return ""
	}
	switch strings.ToLower(strings.Trim(k, "* ")) {
	case "from", "von", "de", "van", "da":
		return "from"
	case "sent", "date", "gesendet", "datum", "envoyé", "date d'envoi", "enviado", "enviado el", "fecha",
		"verzonden", "inviato", "data":
		return "date"
	case "to", "cc", "subject", "an", "betreff", "à", "a", "objet", "para", "asunto", "aan", "onderwerp",
		"oggetto":
		return "to"
	}
	return ""
}

// isAttribution tells the line a client writes above a quote: "On Tue, 3
// Mar 2026 at 10:00, Alice <a@example.org> wrote:" and its translations.
func isAttribution(l string) bool {
	if !strings.HasSuffix(l, ":") {
		return false
	}
	first, _, _ := strings.Cut(l, " ")
	var verb string
	switch first {
	case "On":
		verb = " wrote"
	case "Le":
		verb = " a écrit"
	case "Am":
		verb = " schrieb"
	case "El":
		verb = " escribió"
	case "Op":
		verb = " schreef"
	case "Il":
		verb = " ha scritto"
	case "Em":
		verb = " escreveu"
	default:
		return false
	}
	return strings.Contains(l, verb)
}

// BelowQuote returns the sender's lines written below the first quoted
// block (">" lines), for replies written under the quote, as Thunderbird
// does by default. The quoted block itself is never returned, and reading
// stops again where OwnLines would. It returns nil when there is no quote.
//
// Callers use it only when OwnLines holds nothing to act on: a top-posted
// reply stops at the quote, as the command language says.
func BelowQuote(text string) []string {
	raw := strings.Split(text, "\n")
	i := 0
	for i < len(raw) && !strings.HasPrefix(strings.TrimSpace(raw[i]), ">") {
		i++
	}
	if i == len(raw) {
		return nil
	}
	for i < len(raw) && (strings.HasPrefix(strings.TrimSpace(raw[i]), ">") || strings.TrimSpace(raw[i]) == "") {
		i++
	}
	return OwnLines(strings.Join(raw[i:], "\n"))
}
