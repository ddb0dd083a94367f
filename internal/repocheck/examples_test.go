package repocheck

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entryPoints are, per public package, the functions and methods a user
// starts from; each must be called by a runnable Example whose output is
// checked (an "// Output:" comment), so that `go doc` shows code that works.
var entryPoints = map[string][]string{
	"container":                 {"New", "NewNamed", "Child", "ChildNamed", "Provide", "ProvideNamed", "ProvideFactory", "ProvideLazy", "Make", "MustMake", "MakeNamed", "Close", "WithContext", "FromContext"},
	"logrotate":                 {"Open", "NewHook"},
	"production":                {"New", "Run", "Ready", "Addr", "Stats", "WithFlags", "WithOutput", "ExitCode", "Go"},
	"production/productiontest": {"Start", "Stop", "Wait"},
	"pubsub":                    {"NewMemory", "NewNATS", "Register", "Publish", "Subscribe", "SubscribeAs", "Match"},
}

func TestEntryPointsHaveExamples(t *testing.T) {
	dir := root(t)
	for pkg, names := range entryPoints {
		called := map[string]bool{}
		n := 0
		for _, ex := range examples(t, filepath.Join(dir, pkg)) {
			if ex.Output == "" && !ex.EmptyOutput {
				continue // not run by go test
			}
			n++
			ast.Inspect(ex.Code, func(node ast.Node) bool {
				switch x := node.(type) {
				case *ast.SelectorExpr:
					called[x.Sel.Name] = true
				case *ast.Ident:
					called[x.Name] = true
				}
				return true
			})
		}
		if n == 0 {
			t.Errorf("%s: no Example with a checked // Output:", pkg)
			continue
		}
		for _, name := range names {
			if !called[name] {
				t.Errorf("%s: no Example with a checked // Output: uses %s", pkg, name)
			}
		}
	}
}

// examples returns the Examples of the test files in dir.
func examples(t *testing.T, dir string) []*doc.Example {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return doc.Examples(files...)
}
