package pubsub_test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/goangel/angel/pubsub"
)

// TestInstanceID: ids are readable and differ between processes (two
// copies of an app on one NATS server both have instance 2 in life 1).
func TestInstanceID(t *testing.T) {
	if os.Getenv("PUBSUB_TEST_PRINT_ID") == "1" {
		fmt.Print(pubsub.InstanceID("example", 2, 1))
		return
	}
	id := pubsub.InstanceID("example", 2, 1)
	if !regexp.MustCompile(fmt.Sprintf(`^example/2#1@[^\s:]+:%d$`, os.Getpid())).MatchString(id) {
		t.Errorf("id %q, want example/2#1@HOST:%d", id, os.Getpid())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInstanceID$")
	cmd.Env = append(os.Environ(), "PUBSUB_TEST_PRINT_ID=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(other, "example/2#1@") || other == id {
		t.Errorf("another process's id %q, want example/2#1@… and unlike ours %q", other, id)
	}
}
