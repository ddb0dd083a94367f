package repocheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTableflipPublicAPIOnly: the module uses cloudflare/tableflip through
// its public API only (issue 25.5). No Go file, tests included, holds the
// value of an unexported constant of tableflip, such as the environment
// variable that marks a process started by an upgrade (HasParent says it),
// nor matches the text of one of its errors, which are unexported (as a
// retry of an Upgrade refused as "not ready" did: the documented pattern,
// the Upgrader made at start and Ready called once serving, makes it
// needless). The strings are read from the tableflip source the module
// builds with, so that a new version is checked against its own internals.
func TestTableflipPublicAPIOnly(t *testing.T) {
	dir := root(t)
	src := strings.TrimSpace(goCmd(t, dir, "list", "-f", "{{.Dir}}", "github.com/cloudflare/tableflip"))
	consts, errs := privateStrings(t, src)
	if len(consts) < 1 || len(errs) < 5 {
		t.Fatalf("found %d constants and %d error texts in tableflip's source at %s; the extraction is broken", len(consts), len(errs), src)
	}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != dir && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		for _, lit := range stringLiterals(t, path) {
			for c, origin := range consts {
				if strings.Contains(lit.value, c) {
					t.Errorf("%s:%d: %q holds tableflip's unexported constant %q (%s): use its public API (Upgrader.HasParent, ...)", rel, lit.pos.Line, lit.value, c, origin)
				}
			}
			if !lit.matched {
				continue
			}
			// A part of an error's text is one of two words or more (a
			// single word, such as the verb "upgrade", is no one's own).
			part := len(lit.value) >= 8 && strings.Contains(strings.TrimSpace(lit.value), " ")
			for e, origin := range errs {
				if part && strings.Contains(e, lit.value) || strings.Contains(lit.value, e) {
					t.Errorf("%s:%d: %q is matched against a text, and that text is one of tableflip's unexported errors, %q (%s): do not tell its errors apart by their text", rel, lit.pos.Line, lit.value, e, origin)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// privateStrings returns, from the Go files (tests aside) in dir, the
// values of unexported string constants and the texts of errors made with
// errors.New or fmt.Errorf (each piece between verbs), of 12 characters or
// more (shorter ones, such as "listener", are no one's own), each with
// where it was found.
func privateStrings(t *testing.T, dir string) (consts, errs map[string]string) {
	t.Helper()
	consts, errs = map[string]string{}, map[string]string{}
	add := func(to map[string]string, s string, pos token.Position) {
		for i, piece := range strings.Split(s, "%") {
			if i > 0 && piece != "" {
				piece = piece[1:] // the verb
			}
			piece = strings.Trim(piece, " :()")
			if len(piece) >= 12 {
				to[piece] = filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line)
			}
		}
	}
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.GenDecl:
				if x.Tok != token.CONST {
					break
				}
				for _, spec := range x.Specs {
					v := spec.(*ast.ValueSpec)
					for i, id := range v.Names {
						if !id.IsExported() && i < len(v.Values) {
							if s, ok := stringLit(v.Values[i]); ok {
								add(consts, s, fset.Position(v.Pos()))
							}
						}
					}
				}
			case *ast.CallExpr:
				if isCall(x, "errors", "New") || isCall(x, "fmt", "Errorf") {
					if s, ok := stringLit(x.Args[0]); ok {
						add(errs, s, fset.Position(x.Pos()))
					}
				}
			}
			return true
		})
	}
	return consts, errs
}

// isCall reports whether call calls pkg.name with an argument.
func isCall(call *ast.CallExpr, pkg, name string) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name || len(call.Args) == 0 {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

// literal is a string literal of a Go file; matched: something is compared
// with it or searched for it (==, !=, a switch case, a function of strings
// or regexp).
type literal struct {
	value   string
	pos     token.Position
	matched bool
}

// stringLiterals returns the string literals of the Go file at path.
func stringLiterals(t *testing.T, path string) []literal {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	matched := map[ast.Node]bool{}
	mark := func(exprs ...ast.Expr) {
		for _, e := range exprs {
			matched[e] = true
		}
	}
	var out []literal
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if x.Op == token.EQL || x.Op == token.NEQ {
				mark(x.X, x.Y)
			}
		case *ast.CaseClause:
			mark(x.List...)
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && (id.Name == "strings" || id.Name == "regexp") {
					mark(x.Args...)
				}
			}
		}
		if s, ok := stringLit(n); ok {
			out = append(out, literal{s, fset.Position(n.Pos()), matched[n]})
		}
		return true
	})
	return out
}

// stringLit returns the value of n when it is a string literal.
func stringLit(n ast.Node) (string, bool) {
	lit, ok := n.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}
