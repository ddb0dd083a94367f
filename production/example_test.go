package production_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/production"
)

// A Runner used as a library: run it on a free port, wait until every
// instance serves, talk to it, stop it by canceling the context.
func Example() {
	configure := func(app *production.App) error {
		app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "Hello, production world!")
		})
		return nil
	}
	r := production.New("example", configure, production.WithOutput(io.Discard, io.Discard))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, []string{"-a", "127.0.0.1", "-p", "0", "-j", "4"}) }()
	select {
	case <-r.Ready(): // every instance serves
	case err := <-done: // Run failed first (the port in use, say): Ready never comes
		fmt.Println("Run:", err)
		cancel()
		return
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + r.Addr().String() + "/")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	fmt.Println(len(r.Stats().Instances), "instances")

	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// Hello, production world!
	// 4 instances
	// Run: <nil>
}

// A panic in a supervised goroutine ends the life; the instance is respawned
// with a fresh configure.
func ExampleApp_Go() {
	lives := make(chan int, 2)
	configure := func(app *production.App) error {
		life := app.Info().Life
		lives <- life
		if life == 1 {
			app.Go(func(ctx context.Context) error { panic("lost the database") })
		}
		return nil
	}
	r := production.New("example", configure, production.WithOutput(io.Discard, io.Discard))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, []string{"-p", "0", "-j", "1"}) }()
	for range 2 {
		select {
		case life := <-lives:
			fmt.Println("life", life)
		case err := <-done: // Run failed before the second life
			fmt.Println("Run:", err)
			cancel()
			return
		}
	}
	cancel()
	<-done
	fmt.Println("crashes:", r.Stats().Instances[0].Crashes)
	// Output:
	// life 1
	// life 2
	// crashes: 1
}

// The app's own flags: merged into the command line, filled before configure
// runs, and found in the container.
func ExampleWithFlags() {
	type Flags struct {
		Greeting string `default:"Hello" help:"What to say."`
	}
	configure := func(app *production.App) error {
		f := container.MustMake[*Flags](app.Container)
		fmt.Println(f.Greeting, "from instance", app.Info().Number)
		app.Crash(nil) // end this life cleanly: with --no-respawn, Run returns
		return nil
	}
	r := production.New("greeter", configure, production.WithFlags(&Flags{}), production.WithOutput(io.Discard, io.Discard))
	err := r.Run(context.Background(), []string{"-p", "0", "-j", "1", "--no-respawn", "--greeting", "Howdy"})
	fmt.Println("Run:", err)
	// Output:
	// Howdy from instance 0
	// Run: <nil>
}

// Run never exits the process: its error carries the exit code.
func ExampleExitCode() {
	r := production.New("example", func(*production.App) error { return nil }, production.WithOutput(io.Discard, io.Discard))
	err := r.Run(context.Background(), []string{"-j", "0"})
	fmt.Println(production.ExitCode(err), errors.Is(err, production.ErrUsage))
	fmt.Println(err)
	// Output:
	// 64 true
	// production: usage error: -j/--concurrency must be at least 1, got 0
}

// Operating a running app: a rolling reload gives every instance a new life
// (a fresh configure) before its old one drains; Scale sets the number of
// instances. SIGHUP, SIGTTIN and SIGTTOU do the same from outside.
func ExampleRunner_Reload() {
	configure := func(app *production.App) error { return nil }
	r := production.New("example", configure, production.WithOutput(io.Discard, io.Discard))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, []string{"-a", "127.0.0.1", "-p", "0", "-j", "2"}) }()
	select {
	case <-r.Ready():
	case err := <-done: // Run failed before serving
		fmt.Println("Run:", err)
		cancel()
		return
	}

	fmt.Println("Reload:", r.Reload(ctx))
	for _, s := range r.Stats().Instances {
		fmt.Printf("instance #%d on life %d, %s\n", s.Number, s.Life, s.State)
	}
	fmt.Println("Scale:", r.Scale(ctx, 3), r.Stats().Wanted, "instances")
	fmt.Println("Drain:", r.Drain(ctx, 0), r.Stats().Wanted, "instances")

	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// Reload: <nil>
	// instance #0 on life 2, serving
	// instance #1 on life 2, serving
	// Scale: <nil> 3 instances
	// Drain: <nil> 2 instances
	// Run: <nil>
}
