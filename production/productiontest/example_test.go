package productiontest_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// In a test, Start takes the test's t: a real Runner with four instances on
// 127.0.0.1 and a free port, serving by the time Start returns, stopped
// (every instance drained) when the test ends. Here, outside a test, exampleT
// stands in for t.
func ExampleStart() {
	t := &exampleT{}
	defer t.cleanup() // what the testing package does when the test ends

	configure := func(app *production.App) error {
		app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "Hello, production world!")
		})
		return nil
	}
	r := productiontest.Start(t, "hello", configure, []string{"-j", "4"})

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(r.URL + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))
	fmt.Println(len(r.Stats().Instances), "instances")
	fmt.Println("Stop:", r.Stop()) // what Run returned: nil for a clean stop
	// Output:
	// 200 OK Hello, production world!
	// 4 instances
	// Stop: <nil>
}

// With --no-respawn the runner ends by itself once every instance has ended;
// Wait returns what Run returned.
func ExampleRunner_Wait() {
	t := &exampleT{}
	defer t.cleanup()

	configure := func(app *production.App) error {
		app.Router.Get("/quit", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "bye")
			app.Crash(nil) // end this instance cleanly, once this answer is sent
		})
		return nil
	}
	r := productiontest.Start(t, "brief", configure, []string{"-j", "1", "--no-respawn"})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(r.URL + "/quit")
	if err != nil {
		t.Fatalf("GET /quit: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	fmt.Println("Wait:", r.Wait(productiontest.StartTimeout))
	// Output:
	// bye
	// Wait: <nil>
}

// exampleT is the part of testing.TB that productiontest uses, for the
// Examples, which get no *testing.T. Tests pass their own t instead.
type exampleT struct {
	testing.TB // left nil: only the methods below are called
	cleanups   []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) { fmt.Printf("error: "+format+"\n", args...) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
