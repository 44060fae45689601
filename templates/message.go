package templates

import (
	"errors"
	"fmt"

	"golang.org/x/text/message"
)

// Message is a sentence not yet put into the words of a language: its
// message id (the English format, as in the catalogs) and its arguments.
// Code that does not know its reader's language (a value check, a file
// reader) returns Messages, and the code that answers renders them with
// the reader's printer. A Message is an error too: Error is its English
// text, for logs and for callers that show no one.
type Message struct {
	ID   string
	Args []any
}

// Msg makes a Message.
func Msg(id string, args ...any) Message { return Message{ID: id, Args: args} }

// Errorf makes a Message as an error. An error among args is what it
// wraps (errors.Is and errors.As see it).
func Errorf(id string, args ...any) error { return Message{ID: id, Args: args} }

// IsZero reports whether m is no message at all.
func (m Message) IsZero() bool { return m.ID == "" }

// Error is the message in English, without the catalogs.
func (m Message) Error() string { return m.In(nil) }

// String is the message in English, without the catalogs.
func (m Message) String() string { return m.In(nil) }

// Unwrap returns the first error among the arguments.
func (m Message) Unwrap() error {
	for _, a := range m.Args {
		if err, ok := a.(error); ok {
			return err
		}
	}
	return nil
}

// In renders the message with a language's printer (nil: English, as
// written in the code). Arguments that are Messages, or errors holding
// one, are rendered in the same language first.
func (m Message) In(p *message.Printer) string {
	args := localArgs(p, m.Args)
	if p == nil {
		return fmt.Sprintf(m.ID, args...)
	}
	return p.Sprintf(m.ID, args...)
}

// Localize renders an error for a reader: in the printer's language when
// it is (or wraps) a Message, else as it is.
func Localize(p *message.Printer, err error) string {
	var m Message
	if errors.As(err, &m) {
		return m.In(p)
	}
	return err.Error()
}

// Sprintf renders a message id and its arguments with a printer; argument
// Messages are rendered in the printer's language first.
func Sprintf(p *message.Printer, id string, args ...any) string {
	return Message{ID: id, Args: args}.In(p)
}

func localArgs(p *message.Printer, args []any) []any {
	var out []any
	for i, a := range args {
		var s string
		switch a := a.(type) {
		case Message:
			s = a.In(p)
		case error:
			s = Localize(p, a)
		default:
			if out != nil {
				out[i] = a
			}
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = s
	}
	if out == nil {
		return args
	}
	return out
}
