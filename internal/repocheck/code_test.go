package repocheck

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// block is one piece of Go code found in the documentation.
type block struct {
	origin string // file:line, for messages
	slug   string // a package name made from origin
	code   string
}

// TestDocCodeCompiles extracts every ```go block of README.md and every code
// block of the doc comments (of non-test files) that looks like Go, makes
// each a package main (a whole program as is; declarations or statements
// wrapped, with the imports they use and the few names they assume, such as
// configure), and builds them all with one `go build`, from an overlay so
// that nothing is written into the tree.
func TestDocCodeCompiles(t *testing.T) {
	dir := root(t)
	readme := append(mdBlocks(t, dir, "README.md"), mdBlocks(t, dir, "docs/STATE.md")...)
	docs := commentBlocks(t, dir)
	if len(readme) < 1 || len(docs) < 3 {
		t.Fatalf("found %d Go blocks in README.md and %d in doc comments; the extraction is broken", len(readme), len(docs))
	}
	tmp := t.TempDir()
	overlay := map[string]string{}
	var pkgs []string
	sources := map[string]string{}
	for _, b := range append(readme, docs...) {
		src, err := program(b.code)
		if err != nil {
			t.Errorf("%s: %v:\n%s", b.origin, err, b.code)
			continue
		}
		rel := "internal/repocheck/zz/" + b.slug
		file := filepath.Join(tmp, b.slug+".go")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		overlay[filepath.Join(dir, rel, "main.go")] = file
		pkgs = append(pkgs, "./"+rel)
		sources[rel] = b.origin + "\n" + numbered(src)
	}
	if t.Failed() {
		return
	}
	ov, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	ovFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "bin") + string(filepath.Separator)
	args := append([]string{"build", "-overlay", ovFile, "-o", out}, pkgs...)
	res, err := runGo(dir, args...)
	if err != nil {
		var failed []string
		for rel, src := range sources {
			if strings.Contains(res, rel+"/") || strings.Contains(res, strings.TrimPrefix(rel, "internal/repocheck/")) {
				failed = append(failed, src)
			}
		}
		slices.Sort(failed)
		t.Fatalf("documentation code does not compile: %v\n%s\nas built:\n%s", err, res, strings.Join(failed, "\n"))
	}
	t.Logf("compiled %d blocks of README.md and docs/STATE.md and %d of doc comments", len(readme), len(docs))
}

var fence = regexp.MustCompile("(?ms)^```go\n(.*?)^```")

// mdBlocks returns the ```go blocks of the Markdown file name (a path
// from the module's root).
func mdBlocks(t *testing.T, dir, name string) []block {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	base := strings.ToLower(strings.TrimSuffix(filepath.Base(name), ".md"))
	var out []block
	for _, m := range fence.FindAllSubmatchIndex(b, -1) {
		line := 1 + strings.Count(string(b[:m[0]]), "\n")
		out = append(out, block{
			origin: fmt.Sprintf("%s:%d", name, line),
			slug:   fmt.Sprintf("%s_l%d", base, line),
			code:   string(b[m[2]:m[3]]),
		})
	}
	return out
}

// looksLikeGo tells Go from the other code blocks of doc comments (command
// lines, log lines, route tables).
var looksLikeGo = regexp.MustCompile(`:=|\bfunc\b|(?m)^package |\breturn\b|(?m)^import `)

func commentBlocks(t *testing.T, dir string) []block {
	t.Helper()
	var out []block
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || rel == "bench") {
				return filepath.SkipDir // hidden, ignored, or benchmarks (not API; bench/peers is another module)
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, g := range f.Comments {
			var p comment.Parser
			for _, c := range p.Parse(g.Text()).Content {
				code, ok := c.(*comment.Code)
				if !ok || !looksLikeGo.MatchString(code.Text) {
					continue
				}
				line := fset.Position(g.Pos()).Line
				out = append(out, block{
					origin: fmt.Sprintf("%s (the comment at line %d)", rel, line),
					slug:   fmt.Sprintf("%s_l%d", strings.NewReplacer("/", "_", ".", "_").Replace(rel), line),
					code:   code.Text,
				})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assumed are the names documentation code may use without declaring them,
// as its prose does: each is declared when a block uses it and does not
// declare it itself.
var assumed = []struct{ name, decl string }{
	{"configure", "func configure(app *production.App) error { return nil }"},
	{"client", "var client pubsub.Client"},
	{"app", "var app *production.App"},
}

// packages the documentation code may use without importing them.
var known = map[string]string{
	"container":      "github.com/goangel/angel/container",
	"logrotate":      "github.com/goangel/angel/logrotate",
	"production":     "github.com/goangel/angel/production",
	"productiontest": "github.com/goangel/angel/production/productiontest",
	"pubsub":         "github.com/goangel/angel/pubsub",
	"chi":            "github.com/go-chi/chi/v5",
	"logrus":         "github.com/sirupsen/logrus",
	"context":        "context",
	"errors":         "errors",
	"fmt":            "fmt",
	"http":           "net/http",
	"io":             "io",
	"os":             "os",
	"slog":           "log/slog",
	"strings":        "strings",
	"testing":        "testing",
	"time":           "time",
}

// program makes a package main of code: as is when it is a whole file;
// otherwise as declarations, or else as the statements of main, with the
// imports and assumed names it uses. Variables the statements define are
// used once more at the end, as a snippet's continuation would.
func program(code string) (string, error) {
	if strings.HasPrefix(strings.TrimSpace(code), "package ") {
		return code, nil
	}
	fset := token.NewFileSet()
	var body, declared strings.Builder
	if f, err := parser.ParseFile(fset, "", "package p\n"+code, 0); err == nil {
		body.WriteString(code)
		hasMain := false
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				declared.WriteString(" " + fd.Name.Name)
				hasMain = hasMain || fd.Name.Name == "main"
			}
			if gd, ok := d.(*ast.GenDecl); ok {
				for _, s := range gd.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							declared.WriteString(" " + n.Name)
						}
					case *ast.TypeSpec:
						declared.WriteString(" " + s.Name.Name)
					}
				}
			}
		}
		if !hasMain {
			body.WriteString("\nfunc main() {}\n")
		}
	} else {
		f, err := parser.ParseFile(fset, "", "package p\nfunc main() {\n"+code+"\n}\n", 0)
		if err != nil {
			return "", fmt.Errorf("neither a file, declarations nor statements: %v", err)
		}
		fn := f.Decls[0].(*ast.FuncDecl)
		var defined []string
		for _, s := range fn.Body.List {
			if a, ok := s.(*ast.AssignStmt); ok && a.Tok == token.DEFINE {
				for _, l := range a.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name != "_" && !slices.Contains(defined, id.Name) {
						defined = append(defined, id.Name)
					}
				}
			}
		}
		body.WriteString("func main() {\n" + code + "\n")
		for _, n := range defined {
			body.WriteString("\t_ = " + n + "\n")
		}
		body.WriteString("}\n")
	}
	src := body.String()
	var prelude strings.Builder
	for _, a := range assumed {
		if regexp.MustCompile(`\b`+a.name+`\b`).MatchString(code) && !slices.Contains(strings.Fields(declared.String()), a.name) {
			prelude.WriteString(a.decl + "\n")
		}
	}
	all := prelude.String() + src
	var imports []string
	for name, path := range known {
		if regexp.MustCompile(`(^|[^\w.])` + name + `\.`).MatchString(all) {
			imports = append(imports, fmt.Sprintf("\t%q\n", path))
		}
	}
	slices.Sort(imports)
	return "package main\n\nimport (\n" + strings.Join(imports, "") + ")\n\n" + all, nil
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}
