package container_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goangel/angel/container"
)

type Greeter interface{ Greet() string }

type english struct{ name string }

func (e *english) Greet() string { return "hello " + e.name }

type Info struct{ N int }

type dbConn struct{ id int }

// recorder logs the order in which closers run.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

type res struct {
	name string
	rec  *recorder
	err  error
}

func (r *res) Close() error {
	r.rec.add(r.name)
	return r.err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// within runs f and fails the test if it has not returned by the deadline
// (a deadlock would otherwise hang the whole run).
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not finish within %v (deadlock?)", d)
	}
}

func TestResolve(t *testing.T) {
	g := &english{"go"}
	tests := []struct {
		name  string
		setup func(root, child *container.Container) error
		check func(t *testing.T, root, child *container.Container)
	}{
		{"pointer in own scope", func(r, c *container.Container) error {
			return container.Provide(c, g)
		}, func(t *testing.T, r, c *container.Container) {
			if v, err := container.Make[*english](c); err != nil || v != g {
				t.Fatalf("got %v, %v", v, err)
			}
			if container.Has[*english](r) {
				t.Fatal("parent sees the child's registration")
			}
		}},
		{"interface from parent", func(r, c *container.Container) error {
			return container.Provide[Greeter](r, g)
		}, func(t *testing.T, r, c *container.Container) {
			v, err := container.Make[Greeter](c)
			if err != nil || v.Greet() != "hello go" {
				t.Fatalf("got %v, %v", v, err)
			}
			if container.Has[*english](c) {
				t.Fatal("registered as Greeter, found as *english")
			}
		}},
		{"struct value", func(r, c *container.Container) error {
			return container.Provide(r, Info{N: 7})
		}, func(t *testing.T, r, c *container.Container) {
			if v := container.MustMake[Info](c); v.N != 7 {
				t.Fatalf("got %v", v)
			}
		}},
		{"child shadows parent", func(r, c *container.Container) error {
			return errors.Join(container.Provide(r, Info{N: 1}), container.Provide(c, Info{N: 2}))
		}, func(t *testing.T, r, c *container.Container) {
			if v := container.MustMake[Info](c); v.N != 2 {
				t.Fatalf("child got %v", v)
			}
			if v := container.MustMake[Info](r); v.N != 1 {
				t.Fatalf("root got %v", v)
			}
		}},
		{"named values are apart from unnamed", func(r, c *container.Container) error {
			return errors.Join(
				container.ProvideNamed(r, "greeting", "hi"),
				container.ProvideNamed(r, "farewell", "bye"),
				container.Provide(r, "plain"),
			)
		}, func(t *testing.T, r, c *container.Container) {
			if v := container.MustMakeNamed[string](c, "greeting"); v != "hi" {
				t.Fatalf("got %q", v)
			}
			if v := container.MustMakeNamed[string](c, "farewell"); v != "bye" {
				t.Fatalf("got %q", v)
			}
			if v := container.MustMake[string](c); v != "plain" {
				t.Fatalf("got %q", v)
			}
			if !container.HasNamed[string](c, "greeting") || container.HasNamed[string](c, "nope") || container.HasNamed[int](c, "greeting") {
				t.Fatal("HasNamed wrong")
			}
		}},
		{"registration after child creation is seen", func(r, c *container.Container) error { return nil },
			func(t *testing.T, r, c *container.Container) {
				must(t, container.Provide(r, 42))
				if v := container.MustMake[int](c); v != 42 {
					t.Fatalf("got %d", v)
				}
			}},
		{"nil interface value", func(r, c *container.Container) error {
			return container.Provide[Greeter](r, nil)
		}, func(t *testing.T, r, c *container.Container) {
			v, err := container.Make[Greeter](c)
			if err != nil || v != nil {
				t.Fatalf("got %v, %v", v, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := container.NewNamed("runner")
			child := root.ChildNamed("instance")
			must(t, tt.setup(root, child))
			tt.check(t, root, child)
		})
	}
}

func TestErrors(t *testing.T) {
	type missing struct{}
	tests := []struct {
		name     string
		run      func(r *container.Container) error
		sentinel error
		contains []string
	}{
		{"not found names type, chain, registered", func(r *container.Container) error {
			must(t, container.Provide(r, Info{}))
			must(t, container.ProvideNamed(r, "x", 1))
			_, err := container.Make[*missing](r.ChildNamed("instance").ChildNamed("request"))
			return err
		}, container.ErrNotFound, []string{"*container_test.missing", "[request → instance → runner]", "container_test.Info", `int "x"`, "container.Provide"}},
		{"not found on empty chain", func(r *container.Container) error {
			_, err := container.Make[int](r)
			return err
		}, container.ErrNotFound, []string{"registered: nothing"}},
		{"hint: concrete type registered, interface asked", func(r *container.Container) error {
			must(t, container.Provide(r, &english{}))
			_, err := container.Make[Greeter](r)
			return err
		}, container.ErrNotFound, []string{"*container_test.english implements container_test.Greeter", "Provide[container_test.Greeter]"}},
		{"hint: named asked, unnamed registered", func(r *container.Container) error {
			must(t, container.Provide(r, 3))
			_, err := container.MakeNamed[int](r, "port")
			return err
		}, container.ErrNotFound, []string{`named "port"`, "registered without a name"}},
		{"hint: unnamed asked, named registered", func(r *container.Container) error {
			must(t, container.ProvideNamed(r, "port", 3))
			_, err := container.Make[int](r)
			return err
		}, container.ErrNotFound, []string{`MakeNamed[int](c, "port")`}},
		{"hint: pointer vs value", func(r *container.Container) error {
			must(t, container.Provide(r, &Info{}))
			_, err := container.Make[Info](r)
			return err
		}, container.ErrNotFound, []string{"did you mean Make[*container_test.Info]"}},
		{"hint: value vs pointer", func(r *container.Container) error {
			must(t, container.Provide(r, Info{}))
			_, err := container.Make[*Info](r)
			return err
		}, container.ErrNotFound, []string{"did you mean Make[container_test.Info]"}},
		{"duplicate value", func(r *container.Container) error {
			must(t, container.Provide(r, 1))
			return container.Provide(r, 2)
		}, container.ErrDuplicate, []string{"int is already registered", `scope "runner"`}},
		{"duplicate across kinds", func(r *container.Container) error {
			must(t, container.ProvideLazy(r, func(*container.Container) (int, error) { return 1, nil }))
			return container.ProvideFactory(r, func(*container.Container) (int, error) { return 1, nil })
		}, container.ErrDuplicate, []string{"as a lazy"}},
		{"duplicate named", func(r *container.Container) error {
			must(t, container.ProvideNamed(r, "a", 1))
			return container.ProvideNamed(r, "a", 2)
		}, container.ErrDuplicate, []string{`int named "a"`}},
		{"empty name", func(r *container.Container) error {
			return container.ProvideNamed(r, "", 1)
		}, container.ErrInvalid, nil},
		{"nil factory", func(r *container.Container) error {
			return container.ProvideFactory[int](r, nil)
		}, container.ErrInvalid, nil},
		{"nil lazy", func(r *container.Container) error {
			return container.ProvideLazy[int](r, nil)
		}, container.ErrInvalid, nil},
		{"nil container", func(*container.Container) error {
			_, err := container.Make[int](nil)
			return err
		}, container.ErrNotFound, []string{"nil *Container"}},
		{"factory error is wrapped", func(r *container.Container) error {
			must(t, container.ProvideFactory(r, func(*container.Container) (*dbConn, error) { return nil, context.DeadlineExceeded }))
			_, err := container.Make[*dbConn](r)
			return err
		}, context.DeadlineExceeded, []string{"building *container_test.dbConn"}},
		{"factory panic names the type", func(r *container.Container) error {
			must(t, container.ProvideFactory(r, func(*container.Container) (*dbConn, error) { panic("boom") }))
			_, err := container.Make[*dbConn](r)
			return err
		}, container.ErrPanic, []string{"factory for *container_test.dbConn panicked: boom"}},
		{"panic with an error unwraps to it", func(r *container.Container) error {
			must(t, container.ProvideLazy(r, func(*container.Container) (*dbConn, error) { panic(context.Canceled) }))
			_, err := container.Make[*dbConn](r)
			if !errors.Is(err, container.ErrPanic) {
				t.Errorf("%v is not ErrPanic", err)
			}
			return err
		}, context.Canceled, nil},
		{"dependency's not found inside a factory", func(r *container.Container) error {
			must(t, container.ProvideFactory(r, func(c *container.Container) (*dbConn, error) {
				_, err := container.Make[Info](c)
				return nil, err
			}))
			_, err := container.Make[*dbConn](r)
			return err
		}, container.ErrNotFound, []string{"building *container_test.dbConn: container: no value of type container_test.Info"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(container.NewNamed("runner"))
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error %v is not %v", err, tt.sentinel)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestTypedErrors(t *testing.T) {
	r := container.NewNamed("runner")
	_, err := container.Make[Info](r.ChildNamed("request"))
	var nf *container.NotFoundError
	if !errors.As(err, &nf) || nf.Type.String() != "container_test.Info" || len(nf.Scopes) != 2 || nf.Scopes[0] != "request" {
		t.Fatalf("NotFoundError = %+v", nf)
	}

	must(t, container.Provide(r, 1))
	var de *container.DuplicateError
	if err := container.Provide(r, 2); !errors.As(err, &de) || de.Scope != "runner" || de.Kind != "value" {
		t.Fatalf("DuplicateError = %+v (%v)", de, err)
	}

	must(t, container.ProvideFactory(r, func(*container.Container) (Info, error) { panic(42) }))
	var pe *container.PanicError
	if _, err := container.Make[Info](r); !errors.As(err, &pe) || pe.Value != 42 || len(pe.Stack) == 0 {
		t.Fatalf("PanicError = %+v", pe)
	}

	must(t, container.ProvideFactory(r, func(*container.Container) (string, error) { return "", errors.New("no") }))
	var be *container.BuildError
	if _, err := container.Make[string](r); !errors.As(err, &be) || be.Err.Error() != "no" {
		t.Fatalf("BuildError = %+v", be)
	}

	// Long registration lists are cut short.
	big := container.New()
	must(t, container.Provide(big, 1))
	for i := range 30 {
		must(t, container.ProvideNamed(big, fmt.Sprint("n", i), i))
	}
	_, err = container.Make[Info](big)
	if !errors.As(err, &nf) || len(nf.Registered) != 12 || nf.More != 19 || !strings.Contains(err.Error(), "and 19 more") {
		t.Fatalf("NotFoundError = %+v", nf)
	}
}

func TestMustPanics(t *testing.T) {
	for name, f := range map[string]func(*container.Container){
		"MustMake":      func(c *container.Container) { container.MustMake[Info](c) },
		"MustMakeNamed": func(c *container.Container) { container.MustMakeNamed[Info](c, "x") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, container.ErrNotFound) {
					t.Fatalf("recovered %v, want ErrNotFound", err)
				}
			}()
			f(container.New())
		})
	}
}

func TestFactory(t *testing.T) {
	runner := container.NewNamed("runner")
	n := 0
	var mu sync.Mutex
	// Registered at runner level, it reads what the request scope holds.
	must(t, container.ProvideFactory(runner, func(c *container.Container) (*dbConn, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		info, err := container.Make[Info](c)
		if err != nil {
			return nil, err
		}
		if c.Name() != "request" {
			return nil, fmt.Errorf("factory got scope %q", c.Name())
		}
		return &dbConn{id: info.N*100 + n}, nil
	}))
	instance := runner.ChildNamed("instance")
	for i := 1; i <= 3; i++ {
		req := instance.ChildNamed("request")
		must(t, container.Provide(req, Info{N: i}))
		a := container.MustMake[*dbConn](req)
		b := container.MustMake[*dbConn](req)
		if a == b || a.id != i*100+2*i-1 || b.id != i*100+2*i {
			t.Fatalf("request %d: got %d and %d", i, a.id, b.id)
		}
	}
	if _, err := container.Make[*dbConn](instance); !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("factory without its dependency: %v", err)
	}
}

func TestLazy(t *testing.T) {
	runner := container.NewNamed("runner")
	calls := 0
	fail := true
	must(t, container.ProvideLazy(runner, func(c *container.Container) (*dbConn, error) {
		calls++
		if c.Name() != "runner" {
			return nil, fmt.Errorf("lazy got scope %q, want the declaring one", c.Name())
		}
		if fail {
			fail = false
			return nil, errors.New("first try fails")
		}
		return &dbConn{id: calls}, nil
	}))
	req := runner.ChildNamed("instance").ChildNamed("request")
	if _, err := container.Make[*dbConn](req); err == nil || err.Error() != "container: building *container_test.dbConn: first try fails" {
		t.Fatalf("first resolve: %v", err)
	}
	a := container.MustMake[*dbConn](req)
	b := container.MustMake[*dbConn](runner)
	if a != b || a.id != 2 || calls != 2 {
		t.Fatalf("a=%v b=%v calls=%d", a, b, calls)
	}

	// A panic is not cached either.
	panics := true
	must(t, container.ProvideLazy(runner, func(*container.Container) (Info, error) {
		if panics {
			panics = false
			panic("once")
		}
		return Info{N: 9}, nil
	}))
	if _, err := container.Make[Info](req); !errors.Is(err, container.ErrPanic) {
		t.Fatalf("got %v", err)
	}
	if v := container.MustMake[Info](req); v.N != 9 {
		t.Fatalf("got %v", v)
	}
}

func TestCycle(t *testing.T) {
	type A struct{}
	type B struct{}
	type C struct{}
	tests := []struct {
		name  string
		setup func(r *container.Container)
		path  string
	}{
		{"factory needs itself", func(r *container.Container) {
			must(t, container.ProvideFactory(r, func(c *container.Container) (*A, error) {
				_, err := container.Make[*A](c)
				return nil, err
			}))
		}, "*container_test.A → *container_test.A"},
		{"factories A → B → C → A", func(r *container.Container) {
			must(t, container.ProvideFactory(r, func(c *container.Container) (*A, error) {
				_, err := container.Make[*B](c)
				return &A{}, err
			}))
			must(t, container.ProvideFactory(r, func(c *container.Container) (*B, error) {
				_, err := container.Make[*C](c)
				return &B{}, err
			}))
			must(t, container.ProvideFactory(r, func(c *container.Container) (*C, error) {
				_, err := container.Make[*A](c)
				return &C{}, err
			}))
		}, "*container_test.A → *container_test.B → *container_test.C → *container_test.A"},
		{"lazies A → B → A", func(r *container.Container) {
			must(t, container.ProvideLazy(r, func(c *container.Container) (*A, error) {
				_, err := container.Make[*B](c)
				return &A{}, err
			}))
			must(t, container.ProvideLazy(r, func(c *container.Container) (*B, error) {
				_, err := container.Make[*A](c)
				return &B{}, err
			}))
		}, "*container_test.A → *container_test.B → *container_test.A"},
		{"lazy → factory → lazy across scopes", func(r *container.Container) {
			must(t, container.ProvideLazy(r, func(c *container.Container) (*A, error) {
				_, err := container.Make[*B](c.Child())
				return &A{}, err
			}))
			must(t, container.ProvideFactory(r, func(c *container.Container) (*B, error) {
				_, err := container.Make[*A](c)
				return &B{}, err
			}))
		}, "*container_test.A → *container_test.B → *container_test.A"},
		{"cycle through a Child made inside a factory", func(r *container.Container) {
			must(t, container.ProvideFactory(r, func(c *container.Container) (*A, error) {
				_, err := container.Make[*A](c.Child().Child())
				return &A{}, err
			}))
		}, "*container_test.A → *container_test.A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := container.New()
			tt.setup(r)
			within(t, 10*time.Second, func() {
				_, err := container.Make[*A](r.Child())
				var ce *container.CycleError
				if !errors.Is(err, container.ErrCycle) || !errors.As(err, &ce) {
					t.Errorf("got %v, want a cycle", err)
					return
				}
				if got := strings.Join(ce.Path, " → "); got != tt.path {
					t.Errorf("path %q, want %q", got, tt.path)
				}
			})
		})
	}
}

// A factory that keeps its *Container and resolves its own type later, once
// it has returned, is not a cycle.
func TestStaleViewIsNoCycle(t *testing.T) {
	r := container.New()
	var kept *container.Container
	must(t, container.ProvideFactory(r, func(c *container.Container) (*dbConn, error) {
		if kept == nil {
			kept = c
		}
		return &dbConn{}, nil
	}))
	container.MustMake[*dbConn](r)
	if _, err := container.Make[*dbConn](kept); err != nil {
		t.Fatal(err)
	}
	if _, err := container.Make[*dbConn](kept.Child()); err != nil {
		t.Fatal(err)
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if c, ok := container.FromContext(ctx); ok || c != nil {
		t.Fatal("empty context has a scope")
	}
	req := container.New().ChildNamed("request")
	ctx = container.WithContext(ctx, req)
	c, ok := container.FromContext(context.WithValue(ctx, otherKey{}, 1))
	if !ok || c != req {
		t.Fatalf("got %v, %v", c, ok)
	}
	if _, ok := container.FromContext(container.WithContext(ctx, nil)); ok {
		t.Fatal("nil scope reported as present")
	}
}

func TestHas(t *testing.T) {
	r := container.New()
	must(t, container.ProvideFactory(r, func(*container.Container) (*dbConn, error) { panic("never built by Has") }))
	must(t, container.ProvideLazy(r, func(*container.Container) (Info, error) { panic("never built by Has") }))
	must(t, container.ProvideNamed(r, "x", 1))
	c := r.Child()
	if !container.Has[*dbConn](c) || !container.Has[Info](c) || container.Has[int](c) {
		t.Fatal("Has wrong")
	}
	if !container.HasNamed[int](c, "x") || container.HasNamed[int](c, "") {
		t.Fatal("HasNamed wrong")
	}
	must(t, c.Close())
	if container.Has[*dbConn](c) || container.HasNamed[int](c, "x") {
		t.Fatal("Has true on a closed scope")
	}
	if container.Has[int](nil) || container.HasNamed[int](nil, "") {
		t.Fatal("Has true on nil")
	}
}

// otherKey is a context key of another package's.
type otherKey struct{}
