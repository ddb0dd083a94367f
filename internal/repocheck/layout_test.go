package repocheck

import (
	"slices"
	"strings"
	"testing"
)

// The module's public packages are these; everything else is internal, a
// command, or test files only (bench). `go doc` of each lists what users need.
var publicPackages = []string{
	"github.com/goangel/angel/container",
	"github.com/goangel/angel/logrotate",
	"github.com/goangel/angel/production",
	"github.com/goangel/angel/production/productiontest",
	"github.com/goangel/angel/pubsub",
}

func TestPublicPackages(t *testing.T) {
	var public []string
	for _, line := range strings.Split(strings.TrimSpace(goCmd(t, root(t), "list", "-f", "{{.ImportPath}} {{.Name}} {{len .GoFiles}}", "./...")), "\n") {
		f := strings.Fields(line)
		path, name, files := f[0], f[1], f[2]
		if files == "0" || name == "main" || slices.Contains(strings.Split(path, "/"), "internal") {
			continue // test files only, a command, or internal
		}
		public = append(public, path)
	}
	slices.Sort(public)
	if !slices.Equal(public, publicPackages) {
		t.Errorf("the module's importable, non-internal packages are\n\t%s\nwant\n\t%s\n(move what is not API under internal/ or into test files)",
			strings.Join(public, "\n\t"), strings.Join(publicPackages, "\n\t"))
	}
}

// The library's build (tests aside) needs no NATS server: it is a test
// dependency only. internal/testutil/natstest, which starts one for tests, is
// imported by test files only, and left out of the build checked here.
func TestNoNATSServerInBuild(t *testing.T) {
	const natstest = "github.com/goangel/angel/internal/testutil/natstest"
	var pkgs []string
	for _, line := range strings.Split(strings.TrimSpace(goCmd(t, root(t), "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")), "\n") {
		f := strings.Fields(line)
		if f[0] == natstest {
			continue
		}
		if slices.Contains(f[1:], natstest) {
			t.Errorf("%s imports %s: start NATS servers from test files only", f[0], natstest)
		}
		pkgs = append(pkgs, f[0])
	}
	for _, dep := range strings.Fields(goCmd(t, root(t), append([]string{"list", "-deps"}, pkgs...)...)) {
		if strings.HasPrefix(dep, "github.com/nats-io/nats-server") {
			t.Fatalf("go build ./... compiles %s: start NATS servers in test files only", dep)
		}
	}
}

// The container does without package unsafe (issue 13.3).
func TestContainerWithoutUnsafe(t *testing.T) {
	imports := strings.Fields(goCmd(t, root(t), "list", "-f", `{{join .Imports " "}}`, "./container"))
	if slices.Contains(imports, "unsafe") {
		t.Fatal("package container imports unsafe")
	}
}
