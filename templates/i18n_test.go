package templates

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"
)

// The catalogs must keep up with the code: every message id the code and
// the templates use has an entry in every language, each translation has
// the verbs of its id, and no entry is left over from a sentence that is
// gone. A new sentence without its translations fails here.

// sourceRoots are the directories, relative to this package, whose Go code
// writes sentences for people.
var sourceRoots = []string{"../commands", "../mailbot", "../templates"}

// markers are the functions whose first string constant among their first
// three arguments is a message id: commands' result helpers (ok, fail,
// denied, t), templates.Msg and templates.Errorf, Printer.Sprintf,
// Lang.Sprintf and templates.Sprintf, and Lang.FormatTime and
// templates.FormatTime (their layout).
// fmt's own Sprintf and Errorf are not markers.
var markers = map[string]bool{
	"ok": true, "fail": true, "denied": true, "t": true,
	"Msg": true, "Errorf": true, "Sprintf": true, "FormatTime": true,
}

// use is where a message id is used first.
type use struct {
	id, where string
}

// goMessageIDs finds the message ids of the Go code under the roots.
func goMessageIDs(t *testing.T) []use {
	t.Helper()
	var out []use
	fset := token.NewFileSet()
	for _, root := range sourceRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testkit" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			consts := stringConsts(f)
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				var name string
				switch fn := call.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
					if pkg, ok := fn.X.(*ast.Ident); ok && pkg.Name == "fmt" {
						return true
					}
				}
				if !markers[name] {
					return true
				}
				for _, arg := range call.Args[:min(3, len(call.Args))] {
					if id, ok := constString(arg, consts); ok {
						out = append(out, use{id, fset.Position(arg.Pos()).String()})
						break
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// stringConsts are a file's string constants by name.
func stringConsts(f *ast.File) map[string]string {
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		d, ok := n.(*ast.GenDecl)
		if !ok || d.Tok != token.CONST {
			return true
		}
		for _, s := range d.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if v, ok := constString(vs.Values[i], out); ok {
						out[name.Name] = v
					}
				}
			}
		}
		return true
	})
	return out
}

// constString evaluates a string constant expression: literals, their
// concatenation, and names of constants.
func constString(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok := constString(e.X, consts)
		b, ok2 := constString(e.Y, consts)
		return a + b, ok && ok2
	case *ast.ParenExpr:
		return constString(e.X, consts)
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	}
	return "", false
}

// templateMessageIDs finds the ids the templates pass to t.
func templateMessageIDs(t *testing.T) []use {
	t.Helper()
	var out []use
	names, err := fs.Glob(embedded, "files/*.*")
	if err != nil {
		t.Fatal(err)
	}
	stub := funcs(nil)
	for _, name := range names {
		body, err := fs.ReadFile(embedded, name)
		if err != nil {
			t.Fatal(err)
		}
		trees, err := parse.Parse(name, string(body), "", "", stub, builtins)
		if err != nil {
			t.Fatal(err)
		}
		for _, tree := range trees {
			walkTemplate(tree.Root, func(c *parse.CommandNode) {
				if len(c.Args) < 2 {
					return
				}
				if id, ok := c.Args[0].(*parse.IdentifierNode); !ok || id.Ident != "t" {
					return
				}
				if s, ok := c.Args[1].(*parse.StringNode); ok {
					out = append(out, use{s.Text, fmt.Sprintf("%s (%s)", name, tree.Name)})
				} else {
					t.Errorf("%s: t takes a message id written out, not %s", name, c.Args[1])
				}
			})
		}
	}
	return out
}

// builtins stands in for text/template's own functions when parsing.
var builtins = map[string]any{
	"and": fmt.Sprint, "or": fmt.Sprint, "not": fmt.Sprint, "len": fmt.Sprint, "index": fmt.Sprint,
	"printf": fmt.Sprint, "print": fmt.Sprint, "println": fmt.Sprint, "eq": fmt.Sprint, "ne": fmt.Sprint,
	"lt": fmt.Sprint, "le": fmt.Sprint, "gt": fmt.Sprint, "ge": fmt.Sprint, "html": fmt.Sprint,
	"js": fmt.Sprint, "urlquery": fmt.Sprint, "slice": fmt.Sprint, "call": fmt.Sprint,
}

func walkTemplate(n parse.Node, f func(*parse.CommandNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				walkTemplate(c, f)
			}
		}
	case *parse.ActionNode:
		walkTemplate(n.Pipe, f)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				walkTemplate(c, f)
			}
		}
	case *parse.CommandNode:
		f(n)
		for _, a := range n.Args {
			walkTemplate(a, f)
		}
	case *parse.IfNode:
		walkTemplate(n.Pipe, f)
		walkTemplate(n.List, f)
		walkTemplate(n.ElseList, f)
	case *parse.RangeNode:
		walkTemplate(n.Pipe, f)
		walkTemplate(n.List, f)
		walkTemplate(n.ElseList, f)
	case *parse.WithNode:
		walkTemplate(n.Pipe, f)
		walkTemplate(n.List, f)
		walkTemplate(n.ElseList, f)
	case *parse.TemplateNode:
		walkTemplate(n.Pipe, f)
	}
}

// usedMessageIDs are every message id in use, the first use of each.
func usedMessageIDs(t *testing.T) []use {
	t.Helper()
	all := append(goMessageIDs(t), templateMessageIDs(t)...)
	for _, id := range append(weekdayIDs[:], monthIDs[:]...) {
		all = append(all, use{id, "templates/funcs.go (day and month names)"})
	}
	seen := map[string]bool{}
	var out []use
	for _, u := range all {
		if !seen[u.id] {
			seen[u.id] = true
			out = append(out, u)
		}
	}
	return out
}

// embeddedCatalogs are the embedded catalogs by language code.
func embeddedCatalogs(t *testing.T) map[string][]entry {
	t.Helper()
	names, err := fs.Glob(embedded, "files/i18n/*.po")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]entry{}
	for _, name := range names {
		body, err := fs.ReadFile(embedded, name)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := parsePO(name, body)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(name), ".po")] = entries
	}
	return out
}

func TestCatalogsCoverEveryMessage(t *testing.T) {
	used := usedMessageIDs(t)
	if len(used) < 100 {
		t.Fatalf("found only %d message ids: the extraction is broken", len(used))
	}
	cats := embeddedCatalogs(t)
	for _, lang := range []string{"en", "fr", "de", "es"} {
		entries, ok := cats[lang]
		if !ok {
			t.Errorf("no catalog %s.po", lang)
			continue
		}
		have := map[string]bool{}
		for _, e := range entries {
			have[e.id] = true
		}
		var missing []string
		for _, u := range used {
			if !have[u.id] {
				missing = append(missing, fmt.Sprintf("# %s\nmsgid %s\nmsgstr %s\n", u.where, strconv.Quote(u.id), strconv.Quote(u.id)))
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s.po lacks %d message ids:\n\n%s", lang, len(missing), strings.Join(missing, "\n"))
		}
	}
	usedIDs := map[string]bool{}
	for _, u := range used {
		usedIDs[u.id] = true
	}
	for lang, entries := range cats {
		for _, e := range entries {
			if !usedIDs[e.id] {
				t.Errorf("%s.po:%d: msgid %q is used nowhere: remove it", lang, e.line, e.id)
			}
		}
	}
}

// verbKey is a translation's verbs, in an order that ignores reordering.
func verbKey(s string) string {
	var vs []string
	for _, v := range verbs(s) {
		vs = append(vs, fmt.Sprintf("%d%c", v.arg, v.kind))
	}
	sort.Strings(vs)
	return strings.Join(vs, " ")
}

func TestTranslationsKeepTheVerbs(t *testing.T) {
	for lang, entries := range embeddedCatalogs(t) {
		for _, e := range entries {
			want := verbKey(e.id)
			forms := map[string]string{"": e.str}
			if e.plural != nil {
				forms = e.plural
			}
			for form, s := range forms {
				if strings.TrimSpace(s) == "" {
					t.Errorf("%s.po:%d: msgid %q has an empty msgstr%s", lang, e.line, e.id, form)
					continue
				}
				if got := verbKey(s); got != want {
					t.Errorf("%s.po:%d: msgstr%s %q formats [%s], its msgid %q formats [%s]", lang, e.line, form, s, got, e.id, want)
				}
				if strings.Contains(s, "${") {
					t.Errorf("%s.po:%d: %q holds ${, which x/text reads as a variable", lang, e.line, s)
				}
			}
		}
	}
}

// The English catalog is the source: its singular entries say what the
// code says, so an English reader reads the code's words.
func TestEnglishIsTheSource(t *testing.T) {
	for _, e := range embeddedCatalogs(t)["en"] {
		if e.plural == nil && e.str != e.id {
			t.Errorf("en.po:%d: msgstr %q differs from its msgid %q: change the code's words instead", e.line, e.str, e.id)
		}
	}
}

// The extraction sees what it must: a sentence in each kind of place.
func TestExtractionFindsMessages(t *testing.T) {
	ids := map[string]bool{}
	for _, u := range usedMessageIDs(t) {
		ids[u.id] = true
	}
	for _, id := range []string{
		"added %s to %s.",                                      // commands: x.ok
		"the list of commands is below.",                       // commands: x.ok
		"%q is not a valid email address: %s",                  // norm: templates.Errorf
		"the row has no email address",                         // csvroster: templates.Msg
		"Not commands (ignored):",                              // reply.txt: t
		"How to use the Coworking Visa bot",                    // help.txt: t
		"%d commands",                                          // phrases.txt: t in a define
		"Mon 2 Jan 15:04",                                      // digest: a layout constant
		"added member %s",                                      // digest: l.Sprintf
		"%s is not an active member of a participating space.", // commands: x.t
	} {
		if !ids[id] {
			t.Errorf("the extraction misses %q", id)
		}
	}
}
