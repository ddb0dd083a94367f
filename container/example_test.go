package container_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/goangel/angel/container"
)

// Client stands for an interface such as pubsub.Client.
type Client interface{ ID() string }

type broker struct{ id string }

func (b *broker) ID() string { return b.id }

// InstanceInfo stands for production.InstanceInfo.
type InstanceInfo struct{ ID int }

// Conn is something a scope builds and must close.
type Conn struct{ name string }

func (c *Conn) Close() error {
	fmt.Println("closing", c.name)
	return nil
}

func ExampleNew() {
	runner := container.New()
	fmt.Println(runner.Name())
	// Output: root
}

func ExampleNewNamed() {
	runner := container.NewNamed("runner")
	_, err := container.Make[InstanceInfo](runner)
	fmt.Println(err)
	// Output: container: no value of type container_test.InstanceInfo in scope chain [runner]; registered: nothing (register it with container.Provide[container_test.InstanceInfo], ProvideFactory or ProvideLazy before resolving)
}

// The three levels the runner uses.
func ExampleContainer_ChildNamed() {
	runner := container.NewNamed("runner")
	_ = container.Provide[Client](runner, &broker{id: "shared"})

	instance := runner.ChildNamed("instance")
	_ = container.Provide(instance, InstanceInfo{ID: 2})

	request := instance.ChildNamed("request")
	fmt.Println(container.MustMake[Client](request).ID(), container.MustMake[InstanceInfo](request).ID)
	fmt.Println(container.Has[InstanceInfo](runner)) // a parent never sees its children
	// Output:
	// shared 2
	// false
}

func ExampleContainer_Child() {
	parent := container.New()
	_ = container.Provide(parent, "from parent")
	child := parent.Child()
	_ = container.Provide(child, "from child") // shadows the parent's
	fmt.Println(container.MustMake[string](child))
	fmt.Println(container.MustMake[string](parent))
	fmt.Println(child.Name())
	// Output:
	// from child
	// from parent
	// child
}

func ExampleContainer_Name() {
	fmt.Println(container.NewNamed("runner").ChildNamed("instance").Name())
	// Output: instance
}

// Register a concrete value as the interface callers will ask for.
func ExampleProvide() {
	c := container.New()
	if err := container.Provide[Client](c, &broker{id: "example/0#1"}); err != nil {
		fmt.Println(err)
	}
	// A second registration of the same type in the same scope is refused.
	err := container.Provide[Client](c, &broker{id: "other"})
	fmt.Println(errors.Is(err, container.ErrDuplicate))
	// Output: true
}

func ExampleMake() {
	c := container.New()
	_ = container.Provide[Client](c, &broker{id: "example/0#1"})
	client, err := container.Make[Client](c)
	fmt.Println(client.ID(), err)

	_, err = container.Make[*broker](c) // registered as Client, not *broker
	fmt.Println(errors.Is(err, container.ErrNotFound))
	// Output:
	// example/0#1 <nil>
	// true
}

func ExampleMustMake() {
	c := container.New()
	_ = container.Provide(c, InstanceInfo{ID: 3})
	fmt.Println(container.MustMake[InstanceInfo](c).ID)
	// Output: 3
}

func ExampleProvideNamed() {
	c := container.New()
	_ = container.ProvideNamed(c, "greeting", "Hello, production world!")
	_ = container.ProvideNamed(c, "farewell", "Bye!")
	fmt.Println(container.MustMakeNamed[string](c, "greeting"))
	// Output: Hello, production world!
}

func ExampleMakeNamed() {
	c := container.New()
	_ = container.ProvideNamed(c, "port", 3000)
	port, err := container.MakeNamed[int](c, "port")
	fmt.Println(port, err)
	_, err = container.MakeNamed[int](c, "admin-port")
	fmt.Println(err)
	// Output:
	// 3000 <nil>
	// container: no value of type int named "admin-port" in scope chain [root]; registered: int "port" (int is registered under the name "port", not "admin-port")
}

func ExampleMustMakeNamed() {
	c := container.New()
	_ = container.ProvideNamed(c, "address", "127.0.0.1")
	fmt.Println(container.MustMakeNamed[string](c.Child(), "address"))
	// Output: 127.0.0.1
}

// A factory registered once for the instance builds a value per request,
// from what the request scope holds, and the request scope closes it.
func ExampleProvideFactory() {
	instance := container.NewNamed("instance")
	_ = container.ProvideFactory(instance, func(c *container.Container) (*Conn, error) {
		user, err := container.MakeNamed[string](c, "user")
		if err != nil {
			return nil, err
		}
		return &Conn{name: "conn for " + user}, nil
	})

	request := instance.ChildNamed("request")
	_ = container.ProvideNamed(request, "user", "ada")
	conn := container.MustMake[*Conn](request)
	fmt.Println(conn.name)
	_ = request.Close()
	// Output:
	// conn for ada
	// closing conn for ada
}

// A lazy singleton is built on first use, once, for the scope that declared
// it, and closed with it.
func ExampleProvideLazy() {
	runner := container.NewNamed("runner")
	_ = container.ProvideLazy(runner, func(c *container.Container) (*Conn, error) {
		fmt.Println("building in", c.Name())
		return &Conn{name: "pool"}, nil
	})
	a := container.MustMake[*Conn](runner.ChildNamed("instance"))
	b := container.MustMake[*Conn](runner.ChildNamed("instance"))
	fmt.Println(a == b)
	_ = runner.Close()
	// Output:
	// building in runner
	// true
	// closing pool
}

func ExampleHas() {
	c := container.New()
	_ = container.ProvideLazy(c, func(*container.Container) (*Conn, error) { return &Conn{}, nil })
	fmt.Println(container.Has[*Conn](c), container.Has[Client](c)) // Has builds nothing
	// Output: true false
}

func ExampleHasNamed() {
	c := container.New()
	_ = container.ProvideNamed(c, "greeting", "hi")
	fmt.Println(container.HasNamed[string](c, "greeting"), container.HasNamed[string](c, "other"))
	// Output: true false
}

func ExampleContainer_Close() {
	c := container.New()
	_ = container.ProvideLazy(c, func(*container.Container) (*Conn, error) { return &Conn{name: "first"}, nil })
	c.OnClose(func() error { fmt.Println("hook"); return nil }) // closes after what is built later
	_ = container.MustMake[*Conn](c)
	fmt.Println(c.Close())
	_, err := container.Make[*Conn](c)
	fmt.Println(errors.Is(err, container.ErrClosed))
	// Output:
	// closing first
	// hook
	// <nil>
	// true
}

func ExampleContainer_OnClose() {
	c := container.New()
	c.OnClose(func() error { fmt.Println("flush logs"); return nil })
	c.OnClose(func() error { return errors.New("disk full") })
	fmt.Println(c.Close())
	// Output:
	// flush logs
	// container: closing OnClose hook in scope "root": disk full
}

// The request scope travels in the request's context.
func ExampleWithContext() {
	instance := container.NewNamed("instance")
	_ = container.ProvideNamed(instance, "greeting", "Hello")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := container.FromContext(r.Context())
		fmt.Fprintln(w, container.MustMakeNamed[string](c, "greeting"), container.MustMake[*http.Request](c).URL.Path)
	})
	withScope := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req := instance.ChildNamed("request")
			defer req.Close()
			_ = container.Provide(req, r)
			next.ServeHTTP(w, r.WithContext(container.WithContext(r.Context(), req)))
		})
	}
	rec := httptest.NewRecorder()
	withScope(handler).ServeHTTP(rec, httptest.NewRequest("GET", "/greeting", nil))
	fmt.Print(rec.Body.String())
	// Output: Hello /greeting
}

func ExampleFromContext() {
	_, ok := container.FromContext(context.Background())
	fmt.Println(ok)
	ctx := container.WithContext(context.Background(), container.NewNamed("request"))
	c, ok := container.FromContext(ctx)
	fmt.Println(c.Name(), ok)
	// Output:
	// false
	// request true
}

func ExampleNotFoundError() {
	runner := container.NewNamed("runner")
	_ = container.Provide(runner, &broker{id: "b"})
	_, err := container.Make[Client](runner.ChildNamed("instance"))
	var nf *container.NotFoundError
	if errors.As(err, &nf) {
		fmt.Println(nf.Type, nf.Scopes, nf.Registered)
	}
	fmt.Println(err)
	// Output:
	// container_test.Client [instance runner] [*container_test.broker]
	// container: no value of type container_test.Client in scope chain [instance → runner]; registered: *container_test.broker (*container_test.broker implements container_test.Client but is registered as itself: register it with container.Provide[container_test.Client](c, v))
}

type (
	ServiceA struct{}
	ServiceB struct{}
)

func ExampleCycleError() {
	c := container.New()
	_ = container.ProvideLazy(c, func(c *container.Container) (*ServiceA, error) {
		_, err := container.Make[*ServiceB](c)
		return &ServiceA{}, err
	})
	_ = container.ProvideFactory(c, func(c *container.Container) (*ServiceB, error) {
		_, err := container.Make[*ServiceA](c)
		return &ServiceB{}, err
	})
	_, err := container.Make[*ServiceA](c)
	fmt.Println(errors.Is(err, container.ErrCycle))
	fmt.Println(err)
	// Output:
	// true
	// container: dependency cycle: *container_test.ServiceA → *container_test.ServiceB → *container_test.ServiceA (a factory must not need, directly or through others, the value it builds)
}

func ExampleDuplicateError() {
	c := container.NewNamed("instance")
	_ = container.Provide(c, InstanceInfo{ID: 1})
	err := container.Provide(c, InstanceInfo{ID: 2})
	fmt.Println(err)
	// Output: container: container_test.InstanceInfo is already registered (as a value) in scope "instance"; register each type once per scope, or register the new one in a Child scope to shadow it
}

func ExamplePanicError() {
	c := container.New()
	_ = container.ProvideFactory(c, func(*container.Container) (*Conn, error) { panic("no config") })
	_, err := container.Make[*Conn](c)
	fmt.Println(errors.Is(err, container.ErrPanic), err)
	// Output: true container: factory for *container_test.Conn panicked: no config
}
