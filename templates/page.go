package templates

import (
	"fmt"
	"io"
)

// Page renders one of the HTML templates the bot serves on the web (the
// public directory: directory.html, space.html, or a template they
// define) into w, in the language. html/template escapes every value for
// its place in the page.
func (l *Lang) Page(w io.Writer, name string, data any) error {
	if err := l.html.ExecuteTemplate(w, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return nil
}
