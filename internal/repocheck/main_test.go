package repocheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// root returns the module's root directory (two levels up), checked.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !bytes.HasPrefix(b, []byte("module github.com/goangel/angel\n")) {
		t.Fatalf("%s is not the goangel module's root (go.mod: %v)", dir, err)
	}
	return dir
}

// goCmd runs the go command in dir and returns its standard output; a
// failure fails the test with what it printed.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd, err := goCommand(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// runGo runs the go command in dir and returns everything it printed.
func runGo(dir string, args ...string) (string, error) {
	cmd, err := goCommand(dir, args...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func goCommand(dir string, args ...string) (*exec.Cmd, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("these tests run the go command, which is not in PATH: %w", err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	return cmd, nil
}
