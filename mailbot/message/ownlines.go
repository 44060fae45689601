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
// line of underscores), in English, German, French, Spanish, Dutch, Italian
// and Portuguese; an Outlook reply header ("From:" then "Sent:" and "To:"
// or "Subject:", in the same languages).
// An attribution line ("On … wrote:", "Le … a écrit :", "Am … schrieb …:",
// possibly wrapped over two lines) just above where the lines end goes too.
//
// Words such as "end" or "thanks" are left to the command parser.
func OwnLines(text string) []string {
	lines := trimmedLines(text)
	end := ownEnd(lines)
	if start, ok := attributionAbove(lines, end); ok {
		end = start
	}
	return lines[:end]
}

// trimmedLines splits text into lines trimmed of surrounding whitespace.
func trimmedLines(text string) []string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return lines
}

// ownEnd is the index of the first line the sender did not write, or
// len(lines).
func ownEnd(lines []string) int {
	for i := range lines {
		if endsOwnText(lines, i) {
			return i
		}
	}
	return len(lines)
}

// attributionAbove finds an attribution line ("On … wrote:"), or one
// wrapped over two lines, directly above lines[end] but for blank lines,
// and returns where it starts.
func attributionAbove(lines []string, end int) (start int, ok bool) {
	last := end - 1
	for last >= 0 && lines[last] == "" {
		last--
	}
	switch {
	case last < 0:
	case opensAttribution(lines[last]):
		return last, true
	case last > 0 && lines[last-1] != "" && opensAttribution(lines[last-1]+" "+lines[last]):
		return last - 1, true
	case authorWrote(lines[last]):
		return last, true
	}
	return end, false
}

// endsOwnText tells whether lines[i] starts what the sender did not write.
func endsOwnText(lines []string, i int) bool {
	l := lines[i]
	switch {
	case l == "--", strings.HasPrefix(l, ">"):
		return true
	case len(l) >= 10 && strings.Trim(l, "_") == "":
		return true // Outlook's separator
	case isForwardMarker(l):
		return true
	}
	return isReplyHeader(lines, i)
}

// isForwardMarker tells a line that introduces a forwarded or original
// message: its words between dashes, as Outlook ("-----Original
// Message-----"), Gmail ("---------- Forwarded message ---------"),
// Thunderbird ("-------- Forwarded Message --------") and Yahoo ("-----
// Forwarded Message -----") write it, or Zoho between "=" signs, or before
// a colon, as Apple Mail does ("Begin forwarded message:").
func isForwardMarker(l string) bool {
	switch {
	case strings.HasPrefix(l, "-----") && strings.HasSuffix(l, "-----"),
		strings.HasPrefix(l, "=====") && strings.HasSuffix(l, "====="):
		return markerWords[strings.ToLower(strings.Trim(l, "-= "))]
	case strings.HasSuffix(l, ":"):
		return markerWords[strings.ToLower(strings.TrimSpace(strings.TrimSuffix(l, ":")))]
	}
	return false
}

// markerWords are the words of forward and original-message markers in
// the languages of the clients above: English, German, French, Spanish,
// Dutch, Italian and Portuguese (Thunderbird's composeMsgs.properties,
// Gmail, Outlook, Apple Mail, Yahoo), and a few more.
var markerWords = setOf(
	"original message", "forwarded message", "begin forwarded message",
	"ursprüngliche nachricht", "original-nachricht", "weitergeleitete nachricht",
	"anfang der weitergeleiteten nachricht", "anfang der weitergeleiteten e-mail",
	"message d'origine", "message original", "message transféré", "début du message réexpédié",
	"début du message transféré",
	"mensaje original", "mensaje reenviado", "mensaje reenviado original", "inicio del mensaje reenviado",
	"oorspronkelijk bericht", "origineel bericht", "doorgestuurd bericht", "begin doorgestuurd bericht",
	"messaggio originale", "messaggio inoltrato", "inizio messaggio inoltrato",
	"mensagem original", "mensagem encaminhada", "mensagem reencaminhada",
	"início da mensagem encaminhada", "início da mensagem reencaminhada",
	"videresendt meddelelse", "videresendt melding", "vidarebefordrat meddelande", "välitetty viesti",
	"treść przekazanej wiadomości", "przekazana wiadomość", "přeposlaná zpráva",
	"пересылаемое сообщение", "перенаправленное сообщение",
)

// setOf makes a set of words.
func setOf(words ...string) map[string]bool {
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
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
// language: "from", "date" or "to" (which covers Cc and Subject too). The
// names are Outlook's, Apple Mail's and Thunderbird's forward header table's
// in English, German, French, Spanish, Dutch, Italian and Portuguese.
// "*From:*" is how Gmail writes Outlook's bold field names as text.
func headerKey(l string) string {
	k, _, ok := strings.Cut(l, ":")
	if !ok {
		return ""
	}
	switch strings.ToLower(strings.Trim(k, "* ")) {
	case "from", "von", "de", "van", "da", "mittente":
		return "from"
	case "sent", "date", "gesendet", "datum", "envoyé", "envoyé le", "date d'envoi", "enviado", "enviado el",
		"enviado em", "enviada em", "fecha", "verzonden", "inviato", "data":
		return "date"
	case "to", "cc", "subject", "an", "betreff", "à", "a", "objet", "sujet", "pour", "para", "asunto", "aan",
		"onderwerp", "oggetto", "assunto":
		return "to"
	}
	return ""
}

// opensAttribution tells the line a client writes above a quote: "On Tue,
// 3 Mar 2026 at 10:00, Alice <a@example.org> wrote:" and its translations.
func opensAttribution(l string) bool {
	if !strings.HasSuffix(l, ":") {
		return false
	}
	first, _, _ := strings.Cut(l, " ")
	verb, ok := attributionVerbs[first]
	return ok && strings.Contains(l, verb)
}

// authorWrote tells Thunderbird's shorter attribution, "Alice
// <a@example.org> wrote:", and its translations.
func authorWrote(l string) bool {
	body, ok := strings.CutSuffix(l, ":")
	if !ok {
		return false
	}
	body = strings.TrimSpace(body)
	for _, verb := range attributionVerbs {
		if strings.HasSuffix(body, verb) {
			return true
		}
	}
	return false
}

// attributionVerbs maps the first word of an attribution line to its verb,
// in the languages of the forward markers.
var attributionVerbs = map[string]string{
	"On": " wrote", "Le": " a écrit", "Am": " schrieb", "El": " escribió", "Op": " schreef",
	"Il": " ha scritto", "Em": " escreveu",
}

// BelowQuote returns the sender's lines written below a reply quote, as
// Thunderbird places a reply by default. It reads there only when the
// sender's own text ends at a reply quote: ">" lines with an attribution
// ("On … wrote:", possibly wrapped over two lines) directly above them. It
// returns nil otherwise, so that nothing is read below a forward marker or
// an Outlook header, where a ">" line belongs to the forwarded message.
// The quoted block itself is never returned, and reading stops again where
// OwnLines would.
//
// Callers use it only when OwnLines holds nothing to act on: a top-posted
// reply stops at the quote, as the command language says.
func BelowQuote(text string) []string {
	lines := trimmedLines(text)
	i := ownEnd(lines)
	if i == len(lines) || !strings.HasPrefix(lines[i], ">") {
		return nil
	}
	if _, ok := attributionAbove(lines, i); !ok {
		return nil
	}
	for i < len(lines) && (lines[i] == "" || strings.HasPrefix(lines[i], ">")) {
		i++
	}
	return OwnLines(strings.Join(lines[i:], "\n"))
}
