// Package message turns one raw email into what the mailbot needs: the
// top-level header, the body as plain text, the lines the sender wrote in this
// message, and the attachments.
//
// Every message is hostile input. Parse bounds its work with Limits, never
// panics, and treats a damaged body part (bad base64 or quoted-printable, an
// unknown charset) as a problem to note rather than a reason to give up: the
// bot still answers what it could read. Only a message whose header cannot be
// read, or one larger than Limits.MaxBytes, is an error.
//
// MIME is RFC 2045 (encodings), RFC 2046 (multipart) and RFC 2183
// (Content-Disposition); header words are RFC 2047 and parameters RFC 2231;
// format=flowed text is RFC 3676.
package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// ErrTooLarge is returned by Parse for a message over Limits.MaxBytes, so that
// the caller can answer it with a clear refusal instead of reading it.
var ErrTooLarge = errors.New("message: too large")

// DefaultMaxBytes is Limits.MaxBytes when it is zero.
const DefaultMaxBytes = 10 << 20

// Limits bound the work done for one message, which may be hostile. A zero
// field takes its default.
type Limits struct {
	MaxBytes           int // whole raw message; larger is ErrTooLarge (default 10 MiB)
	MaxLines           int // lines kept in Message.Text; past it Truncated is set (default 500)
	MaxLineLength      int // longer lines of Message.Text are cut, in bytes (default 1000)
	MaxParts           int // MIME parts visited (default 100)
	MaxDepth           int // multipart nesting followed (default 10)
	MaxAttachmentBytes int // per attachment; bigger ones are kept with Data nil and TooLarge set (default 5 MiB)
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxBytes, DefaultMaxBytes)
	def(&l.MaxLines, 500)
	def(&l.MaxLineLength, 1000)
	def(&l.MaxParts, 100)
	def(&l.MaxDepth, 10)
	def(&l.MaxAttachmentBytes, 5<<20)
	return l
}

// Attachment is a part that is not the body: a roster to import, a forwarded
// message, an image. Its bytes are transfer-decoded but not converted from
// their charset, which the importer decides on.
type Attachment struct {
	Filename    string // decoded (RFC 2047, RFC 2231); "" if the sender gave none
	ContentType string // media type, lowercased, e.g. "text/csv"
	Charset     string // declared charset, lowercased; "" if none
	Data        []byte // transfer-decoded content; nil if TooLarge
	TooLarge    bool   // over Limits.MaxAttachmentBytes: seen, but not kept
}

// Message is what the bot reads from one email.
type Message struct {
	// Header is the raw top-level header, for the trust checks
	// (Authentication-Results, Auto-Submitted, List-Id...).
	Header     mail.Header
	MessageID  string   // without <>; "" if absent or unreadable
	Subject    string   // decoded (RFC 2047), quotes normalised, trimmed, on one line
	InReplyTo  []string // message ids without <>
	References []string // message ids without <>
	MediaType  string   // top-level media type, lowercased, e.g. "multipart/report"

	// Text is the body as plain text in UTF-8 with LF line ends: the first
	// text/plain part that is not an attachment, else the first text/html
	// part converted by HTMLToText. When the two are alternatives of each
	// other (multipart/alternative, RFC 2046 section 5.1.4), the plain one
	// is read only if every line the bot would read from it is shown by the
	// HTML one, which is what the sender saw; otherwise the HTML is read.
	// Word's smart quotes and no-break spaces are made ASCII, so a pasted
	// name="Alice Smith" reads as typed. Forwarded messages
	// (message/rfc822, text/rfc822-headers) are attachments, never Text.
	Text     string
	FromHTML bool // Text was converted from HTML

	Attachments []Attachment

	// Truncated says Text was cut at Limits.MaxLines, or that parts were
	// skipped because of Limits.MaxParts or Limits.MaxDepth.
	Truncated bool

	// Problems lists damage that did not stop the parse: a part that could
	// not be decoded completely, an unknown charset, a skipped part. For logs.
	Problems []string

	bodyAt   int  // where the body starts in the raw message, after any "From " line
	bodyRead bool // ReadBody has run
}

// Parse reads one raw message (RFC 5322 with MIME). It fails only when the
// message is over lim.MaxBytes (ErrTooLarge) or its header cannot be read.
func Parse(raw []byte, lim Limits) (*Message, error) {
	m, err := ParseHeader(raw, lim)
	if err != nil {
		return nil, err
	}
	if err := m.ReadBody(raw, lim); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseHeader reads only the top-level header of raw: what the checks of
// a sender need, at a small part of the cost of the body, which ReadBody
// reads later into the same Message if the sender is to be answered. raw
// may be the whole message or any start of it that holds the whole header.
// It fails as Parse does.
func ParseHeader(raw []byte, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	if len(raw) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), lim.MaxBytes)
	}
	raw = withoutFromLine(raw)
	rd := bytes.NewReader(raw)
	br := bufio.NewReader(rd)
	h, err := textproto.ReadHeader(br)
	bodyAt := len(raw) - rd.Len() - br.Buffered()
	if errors.Is(err, io.EOF) {
		// A header-only message whose last line has no line end.
		br = bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n")))
		h, err = textproto.ReadHeader(br)
		bodyAt = len(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("message: reading header: %w", err)
	}
	if h.Len() == 0 {
		return nil, errors.New("message: reading header: no header fields")
	}
	m := &Message{Header: mail.Header{Header: gomessage.Header{Header: h}}, bodyAt: bodyAt}
	m.readHeader()
	m.MediaType, _ = contentType(m.Header.Header)
	return m, nil
}

// withoutFromLine drops an mbox "From " line, as an MTA writes it for pipe
// delivery: it is not part of the message.
func withoutFromLine(raw []byte) []byte {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			return raw[i+1:]
		}
	}
	return raw
}

// ReadBody reads the body of raw, the whole message whose header m was
// read from by ParseHeader: the text, the attachments, the problems. A
// second call does nothing. It fails only when raw is over lim.MaxBytes
// (ErrTooLarge); m keeps its header then.
func (m *Message) ReadBody(raw []byte, lim Limits) error {
	if m.bodyRead {
		return nil
	}
	lim = lim.withDefaults()
	if len(raw) > lim.MaxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), lim.MaxBytes)
	}
	m.bodyRead = true
	raw = withoutFromLine(raw)
	w := walker{lim: lim, msg: m}
	w.walk(m.Header.Header.Header, bytes.NewReader(raw[min(m.bodyAt, len(raw)):]), nil, false)

	switch {
	case w.plain != nil && (strings.TrimSpace(*w.plain) != "" || w.html == nil):
		m.Text = *w.plain
		if w.html != nil && w.alternatives() {
			if line, shown := shownBy(*w.plain, w.htmlVisible()); !shown {
				w.problem(w.plainPath, "the plain text shows a line its HTML alternative does not (%q): the HTML was read", cutUTF8(line, 80))
				m.Text, m.FromHTML = *w.html, true
			}
		}
	case w.html != nil:
		m.Text, m.FromHTML = *w.html, true
	}
	m.Text = w.limitLines(strings.TrimRight(m.Text, " \t\n"))
	return nil
}

// walker visits the MIME tree of one message, depth first, in order.
type walker struct {
	lim         Limits
	msg         *Message
	parts       int
	stopped     bool          // MaxParts reached: visit nothing more
	plain       *string       // first text/plain body, cleaned
	html        *string       // first text/html body, converted to text
	htmlVisible func() string // all the text of that HTML body its reader sees
	plainPath   []int
	htmlPath    []int
	altPaths    []string // multipart/alternative entities, by partName
}

// alternatives reports whether the plain and the HTML body are
// alternatives of each other: their nearest common ancestor is a
// multipart/alternative.
func (w *walker) alternatives() bool {
	n := 0
	for n < len(w.plainPath) && n < len(w.htmlPath) && w.plainPath[n] == w.htmlPath[n] {
		n++
	}
	return slices.Contains(w.altPaths, partName(w.plainPath[:n]))
}

func (w *walker) problem(path []int, format string, args ...any) {
	w.msg.Problems = append(w.msg.Problems, partName(path)+": "+fmt.Sprintf(format, args...))
}

// partName names a part as IMAP does (RFC 3501 section 6.4.5): "1.2".
func partName(path []int) string {
	if len(path) == 0 {
		return "body"
	}
	s := make([]string, len(path))
	for i, n := range path {
		s[i] = strconv.Itoa(n)
	}
	return "part " + strings.Join(s, ".")
}

// walk visits one entity. inDigest says its parent is a multipart/digest,
// where a part without a Content-Type is a message/rfc822 (RFC 2046
// section 5.1.5): a forwarded message, an attachment.
func (w *walker) walk(h textproto.Header, body io.Reader, path []int, inDigest bool) {
	if w.stopped {
		return
	}
	w.parts++
	if w.parts > w.lim.MaxParts {
		w.problem(path, "more than %d MIME parts: the rest is skipped", w.lim.MaxParts)
		w.msg.Truncated, w.stopped = true, true
		return
	}
	mh := gomessage.Header{Header: h}
	mediaType, params := contentType(mh)
	if inDigest && !mh.Has("Content-Type") {
		mediaType = "message/rfc822"
	}

	if strings.HasPrefix(mediaType, "multipart/") {
		if mediaType == "multipart/alternative" {
			w.altPaths = append(w.altPaths, partName(path))
		}
		w.walkMultipart(mediaType, params["boundary"], body, path)
		return
	}

	disp, dparams := parseParams(mh.Get("Content-Disposition"))
	name := filename(dparams, params)
	dec := w.transferDecoder(mh, body, path)
	if disp == "attachment" || name != "" || (mediaType != "text/plain" && mediaType != "text/html") {
		w.attachment(mediaType, name, params["charset"], dec, path)
		return
	}

	// A body candidate. Read it only if it can still be chosen.
	if mediaType == "text/plain" && w.plain != nil || mediaType == "text/html" && w.html != nil {
		return
	}
	b, err := io.ReadAll(io.LimitReader(dec, int64(w.lim.MaxBytes)))
	if err != nil {
		w.problem(path, "reading %s: %v (keeping what was read)", mediaType, err)
	}
	if mediaType == "text/html" {
		s, visible, err := htmlPartText(b, params["charset"])
		if err != nil {
			w.problem(path, "%v", err)
		}
		if errors.Is(err, errHTMLTooDeep) {
			w.msg.Truncated = true
		}
		w.html, w.htmlVisible, w.htmlPath = &s, visible, path
		return
	}
	s, err := decodeCharset(b, params["charset"])
	if err != nil {
		w.problem(path, "%v", err)
	}
	s = cleanText(s)
	if strings.EqualFold(params["format"], "flowed") {
		s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
	}
	s = normaliseQuotes(s)
	w.plain, w.plainPath = &s, path
}

// walkMultipart visits the parts of a multipart entity (RFC 2046 section 5.1).
func (w *walker) walkMultipart(mediaType, boundary string, body io.Reader, path []int) {
	if len(path) >= w.lim.MaxDepth {
		w.problem(path, "%s nested more than %d deep: skipped", mediaType, w.lim.MaxDepth)
		w.msg.Truncated = true
		return
	}
	if boundary == "" {
		w.problem(path, "%s without a boundary: skipped", mediaType)
		return
	}
	mr := textproto.NewMultipartReader(body, boundary)
	n := 0
	for !w.stopped {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			w.problem(path, "reading %s: %v", mediaType, err)
			break
		}
		n++
		w.walk(p.Header, p, append(path[:len(path):len(path)], n), mediaType == "multipart/digest")
	}
	if n == 0 {
		w.problem(path, "%s has no parts", mediaType)
	}
}

// transferDecoder undoes the Content-Transfer-Encoding (RFC 2045 section 6).
// An unknown encoding is read as it is.
func (w *walker) transferDecoder(h gomessage.Header, body io.Reader, path []int) io.Reader {
	enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	switch enc {
	case "quoted-printable":
		return newQPReader(body)
	case "base64":
		return newBase64Reader(body)
	case "", "7bit", "8bit", "binary":
		return body
	default:
		w.problem(path, "unknown transfer encoding %q: read as is", enc)
		return body
	}
}

// attachment keeps one attachment, reading at most MaxAttachmentBytes+1 bytes
// of it.
func (w *walker) attachment(mediaType, name, charset string, body io.Reader, path []int) {
	a := Attachment{Filename: name, ContentType: mediaType, Charset: strings.ToLower(charset)}
	b, err := io.ReadAll(io.LimitReader(body, int64(w.lim.MaxAttachmentBytes)+1))
	if err != nil {
		w.problem(path, "reading attachment %q: %v (keeping what was read)", name, err)
	}
	if len(b) > w.lim.MaxAttachmentBytes {
		a.TooLarge = true
		w.problem(path, "attachment %q over %d bytes: not kept", name, w.lim.MaxAttachmentBytes)
	} else {
		a.Data = b
	}
	w.msg.Attachments = append(w.msg.Attachments, a)
}

// limitLines cuts text to MaxLines lines of at most MaxLineLength bytes.
func (w *walker) limitLines(text string) string {
	lines := strings.Split(text, "\n")
	if len(lines) > w.lim.MaxLines {
		lines = lines[:w.lim.MaxLines]
		w.msg.Truncated = true
	}
	for i, l := range lines {
		lines[i] = cutUTF8(l, w.lim.MaxLineLength)
	}
	return strings.Join(lines, "\n")
}
