package container_test

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/testutil"
)

type (
	resA struct{ *res }
	resB struct{ *res }
	resC struct{ *res }
)

func TestCloseOrder(t *testing.T) {
	rec := &recorder{}
	r := container.NewNamed("runner")
	// A needs B: B is built (and created) first, so it is closed last.
	must(t, container.ProvideLazy(r, func(c *container.Container) (resA, error) {
		container.MustMake[resB](c)
		return resA{&res{name: "A", rec: rec}}, nil
	}))
	must(t, container.ProvideLazy(r, func(c *container.Container) (resB, error) {
		return resB{&res{name: "B", rec: rec, err: errors.New("B failed")}}, nil
	}))
	must(t, container.ProvideLazy(r, func(c *container.Container) (resC, error) {
		return resC{&res{name: "C", rec: rec}}, nil
	}))
	r.OnClose(func() error { rec.add("hook1"); return nil })
	container.MustMake[resA](r)
	r.OnClose(func() error { rec.add("hook2"); return errors.New("hook2 failed") })
	container.MustMake[resC](r.Child()) // built for r, the declaring scope
	r.OnClose(func() error { panic("hook3 panics") })

	err := r.Close()
	want := []string{"C", "hook2", "A", "B", "hook1"}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Fatalf("close order %v, want %v", got, want)
	}
	for _, s := range []string{"B failed", "hook2 failed", "hook3 panics", `scope "runner"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Close error %v does not mention %q", err, s)
		}
	}
	if !errors.Is(err, container.ErrPanic) {
		t.Errorf("Close error %v is not ErrPanic", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := rec.get(); len(got) != len(want) {
		t.Fatalf("second Close ran closers again: %v", got)
	}
}

func TestCloseScopes(t *testing.T) {
	rec := &recorder{}
	runner := container.NewNamed("runner")
	given := &res{name: "given", rec: rec}
	must(t, container.Provide(runner, given)) // the caller's: never closed by the container
	must(t, container.ProvideLazy(runner, func(*container.Container) (resA, error) {
		return resA{&res{name: "runner-lazy", rec: rec}}, nil
	}))
	n := 0
	must(t, container.ProvideFactory(runner, func(c *container.Container) (resB, error) {
		n++
		return resB{&res{name: "per-request-" + string(rune('0'+n)), rec: rec}}, nil
	}))
	instance := runner.ChildNamed("instance")
	req := instance.ChildNamed("request")
	container.MustMake[resA](req)
	container.MustMake[resB](req)
	container.MustMake[resB](req)
	container.MustMake[*res](req)
	req.OnClose(func() error { rec.add("req-hook"); return nil })

	must(t, req.Close())
	if got, want := rec.get(), []string{"req-hook", "per-request-2", "per-request-1"}; !slices.Equal(got, want) {
		t.Fatalf("request close ran %v, want %v", got, want)
	}
	must(t, instance.Close())
	if got := rec.get(); len(got) != 3 {
		t.Fatalf("closing the instance closed a parent's value: %v", got)
	}
	// The runner is still usable after its children closed.
	if _, err := container.Make[resA](runner); err != nil {
		t.Fatal(err)
	}
	must(t, runner.Close())
	if got, want := rec.get(), []string{"req-hook", "per-request-2", "per-request-1", "runner-lazy"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestClosedScope(t *testing.T) {
	r := container.NewNamed("runner")
	must(t, container.Provide(r, 1))
	must(t, container.ProvideNamed(r, "n", 2))
	must(t, container.ProvideFactory(r, func(*container.Container) (Info, error) { return Info{}, nil }))
	inst := r.ChildNamed("instance")
	must(t, inst.Close())
	tests := []struct {
		name string
		err  func() error
	}{
		{"Make on closed scope", func() error { _, err := container.Make[int](inst); return err }},
		{"Make of missing type on closed scope", func() error { _, err := container.Make[string](inst); return err }},
		{"MakeNamed on closed scope", func() error { _, err := container.MakeNamed[int](inst, "n"); return err }},
		{"factory on closed scope", func() error { _, err := container.Make[Info](inst); return err }},
		{"Provide on closed scope", func() error { return container.Provide(inst, "x") }},
		{"ProvideLazy on closed scope", func() error {
			return container.ProvideLazy(inst, func(*container.Container) (string, error) { return "", nil })
		}},
		{"child of closed parent, value in parent", func() error {
			must(t, r.Close())
			_, err := container.Make[int](container.New().Child()) // unrelated scope still fine
			if err == nil {
				t.Fatal("expected not found")
			}
			c := r.Child()
			_, err = container.Make[int](c)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if !errors.Is(err, container.ErrClosed) {
				t.Fatalf("got %v, want ErrClosed", err)
			}
			if !strings.Contains(err.Error(), "is closed") {
				t.Fatalf("message %q", err)
			}
		})
	}

	// A hook registered on a closed scope runs at once.
	ran := false
	inst.OnClose(func() error { ran = true; return nil })
	if !ran {
		t.Fatal("OnClose on a closed scope did not run the hook")
	}
}

// A value built while its scope closes is closed at once, not leaked.
func TestBuiltAfterClose(t *testing.T) {
	rec := &recorder{}
	r := container.New()
	req := r.Child()
	must(t, container.ProvideFactory(r, func(c *container.Container) (*res, error) {
		must(t, req.Close()) // the request ends while its value is being built
		return &res{name: "late", rec: rec}, nil
	}))
	if _, err := container.Make[*res](req); !errors.Is(err, container.ErrClosed) {
		t.Fatalf("got %v", err)
	}
	if got := rec.get(); !slices.Equal(got, []string{"late"}) {
		t.Fatalf("late value not closed: %v", got)
	}
}

// The parent keeps no reference to its children: a finished request scope,
// with the values and hooks registered in it, is collected.
func TestChildIsCollected(t *testing.T) {
	r := container.New()
	must(t, container.Provide(r, Info{N: 1}))
	must(t, container.ProvideFactory(r, func(*container.Container) (*res, error) { return &res{rec: &recorder{}}, nil }))
	var refs []weak.Pointer[container.Container]
	for i := range 100 {
		c := r.Child()
		must(t, container.Provide(c, &dbConn{id: i}))
		container.MustMake[Info](c)
		container.MustMake[*res](c)
		c.OnClose(func() error { return nil })
		if i%2 == 0 {
			must(t, c.Close())
		}
		refs = append(refs, weak.Make(c))
	}
	testutil.WaitFor(t, 10*time.Second, "every finished child scope collected", func() bool {
		runtime.GC()
		alive := 0
		for _, p := range refs {
			if p.Value() != nil {
				alive++
			}
		}
		return alive == 0
	})
	runtime.KeepAlive(r)
}

// Siblings of one name share nothing but the name: closing or registering
// in one leaves the other alone.
func TestSiblings(t *testing.T) {
	inst := container.NewNamed("instance")
	must(t, container.Provide(inst, Info{N: 1}))
	a, b := inst.ChildNamed("request"), inst.ChildNamed("request")
	must(t, container.Provide(a, &dbConn{id: 1}))
	if container.Has[*dbConn](b) {
		t.Fatal("a sibling sees the other's registration")
	}
	must(t, a.Close())
	if _, err := container.Make[Info](b); err != nil {
		t.Fatalf("closing a sibling closed the other: %v", err)
	}
	c := inst.ChildNamed("request")
	if _, err := container.Make[Info](c); err != nil || c.Name() != "request" {
		t.Fatalf("a new sibling after a close: %v", err)
	}
	must(t, c.Close())
	if _, err := container.Make[Info](b); err != nil {
		t.Fatal(err)
	}
	d, e := inst.Child(), inst.Child()
	must(t, d.Close())
	if _, err := container.Make[Info](e); err != nil || e.Name() != "child" {
		t.Fatalf("unnamed siblings: %v", err)
	}
	if _, err := container.Make[Info](d); !errors.Is(err, container.ErrClosed) {
		t.Fatalf("closed child: %v", err)
	}
}
